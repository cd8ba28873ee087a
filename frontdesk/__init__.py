"""Frontdesk: multi-agent handoff orchestration for LiveKit voice calls.

The code lives in three packages: ``frontdesk.workflows`` (the workflow definition, the call
runtime, the worker, providers, the CLI), ``frontdesk.agents`` (agent behaviour, handoffs, the
offline brain) and ``frontdesk.state`` (persistence and resume). This root package only holds what all three share.
"""

from __future__ import annotations

__version__ = "0.1.0"
