"""Where the embedded ``redis-server`` keeps its data between commands on one machine.

``frontdesk demo`` stores its call there and ``frontdesk inspect`` (and ``sessions … --state-dir``)
reads it back, so a demo can be looked at afterwards without any Redis set up. The folder is
``$FRONTDESK_STATE_DIR`` when set, else ``$XDG_STATE_HOME/frontdesk/redis``, else
``~/.local/state/frontdesk/redis``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

from .embedded import EmbeddedRedis

logger = logging.getLogger(__name__)

STATE_DIR_ENV = "FRONTDESK_STATE_DIR"


def default_state_dir() -> Path:
    """The embedded Redis data folder shared by ``demo`` and ``inspect`` (not created here)."""
    explicit = os.environ.get(STATE_DIR_ENV, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_STATE_HOME", "").strip()
    root = Path(base).expanduser() if base else Path.home() / ".local" / "state"
    return root / "frontdesk" / "redis"


PORT_FILE = "frontdesk-redis.port"
"""Written in a data folder while an embedded server serves it: other commands join that server."""


@contextlib.asynccontextmanager
async def local_redis(data_dir: Path | None) -> AsyncIterator[str]:
    """The URL of an embedded ``redis-server`` for ``data_dir`` (None: a throwaway folder).

    One folder, one server: when a live server of another Frontdesk command already serves
    ``data_dir`` (its port is in :data:`PORT_FILE` and it answers PING), this joins it instead
    of starting a second server on the same append-only file. So ``frontdesk inspect`` left
    running shows a ``demo`` or ``chat --state-dir`` call as it happens.
    """
    if data_dir is not None:
        port = _serving_port(data_dir)
        if port is not None:
            logger.info("joining the embedded redis-server of %s on port %d", data_dir, port)
            yield f"redis://127.0.0.1:{port}/0"
            return
    server = EmbeddedRedis(data_dir=data_dir)
    async with server:
        marker = data_dir / PORT_FILE if data_dir is not None else None
        if marker is not None:
            marker.write_text(f"{server.port}\n")
        try:
            yield server.url
        finally:
            if marker is not None and _read_port(marker) == server.port:
                marker.unlink(missing_ok=True)


def _read_port(marker: Path) -> int | None:
    try:
        return int(marker.read_text().strip())
    except (OSError, ValueError):
        return None


def _serving_port(data_dir: Path) -> int | None:
    port = _read_port(data_dir / PORT_FILE)
    if port is None or not 0 < port < 65536:
        return None
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return port if conn.recv(64).startswith(b"+PONG") else None
    except OSError:
        return None
