"""Where the embedded ``redis-server`` keeps its data between commands on one machine.

``frontdesk demo`` stores its call there and ``frontdesk inspect`` (and ``sessions … --state-dir``)
reads it back, so a demo can be looked at afterwards without any Redis set up. The folder is
``$FRONTDESK_STATE_DIR`` when set, else ``$XDG_STATE_HOME/frontdesk/redis``, else
``~/.local/state/frontdesk/redis``.
"""

from __future__ import annotations

import os
from pathlib import Path

STATE_DIR_ENV = "FRONTDESK_STATE_DIR"


def default_state_dir() -> Path:
    """The embedded Redis data folder shared by ``demo`` and ``inspect`` (not created here)."""
    explicit = os.environ.get(STATE_DIR_ENV, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_STATE_HOME", "").strip()
    root = Path(base).expanduser() if base else Path.home() / ".local" / "state"
    return root / "frontdesk" / "redis"
