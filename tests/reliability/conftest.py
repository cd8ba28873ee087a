"""Fixtures of the reliability suite: the default workflow and Redis servers of a test's own.

The servers are real ``redis-server`` processes (:class:`EmbeddedRedis`), private to the test
that asks for them, because these tests kill, restart and damage them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from frontdesk.state import EmbeddedRedis, connect_redis
from frontdesk.workflows.definition import Workflow

from .support import StateRig, TlsAclRedis, quiet_livekit, state_secret_env, workflow

__all__ = ["quiet_livekit", "state_secret_env", "workflow"]  # fixtures shared with tests/scale


@pytest.fixture
def start_redis() -> Iterator[Callable[..., EmbeddedRedis]]:
    """``start_redis(appendfsync=..., extra_args=...)``: a server of this test's own."""
    servers: list[EmbeddedRedis] = []

    def start(**options: Any) -> EmbeddedRedis:
        server = EmbeddedRedis(**options).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
async def rig(
    start_redis: Callable[..., EmbeddedRedis], workflow: Workflow
) -> AsyncIterator[StateRig]:
    """A Redis server of this test's own, a client of it, and the calls the test opens.

    Afterwards every call in ``rig.calls`` is closed (closing twice is harmless), then the client.
    """
    server = start_redis()
    state = StateRig(workflow=workflow, server=server, client=connect_redis(server.url))
    try:
        yield state
    finally:
        await state.aclose()


REDIS_PASSWORD = "redis-Passw0rd-9f8e7d6c5b4a"
ADMIN_PASSWORD = "admin-Passw0rd-1a2b3c4d5e6f"


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[TlsAclRedis]:
    """A TLS-only redis-server whose ``frontdesk`` user may only touch ``frontdesk:*`` keys."""
    server = TlsAclRedis(tmp_path, password=REDIS_PASSWORD, admin_password=ADMIN_PASSWORD).start()
    yield server
    server.stop()
