"""The tools suite opens sessions as the agents suite does (real ``AgentSession``s in text mode,
driven by the offline brain): the same fixture, not a copy."""

from __future__ import annotations

from tests.agents.conftest import OpenSession, open_session

__all__ = ["OpenSession", "open_session"]
