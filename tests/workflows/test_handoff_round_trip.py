"""A caller turn that hands off is persisted in ONE Redis round trip, like any other turn.

LiveKit ends two agent turns in a handoff turn (the old agent's, then the new agent's reply);
the recorder waits for the new agent's reply before it writes, so the whole caller turn is one
``EVALSHA``. Checked with MONITOR on a real redis-server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from frontdesk.state import EmbeddedRedis, RedisSessionStore, connect_redis
from frontdesk.workflows.definition import Workflow, load_workflow
from frontdesk.workflows.runtime import Persistence, start_call
from tests.conftest import TEST_CALLER_SECRET

ROOT = Path(__file__).resolve().parents[2]
CALLER = "+15551230077"


@pytest.fixture(scope="module")
def workflow() -> Workflow:
    return load_workflow(ROOT / "config.toml")


async def test_a_handoff_turn_is_persisted_in_one_round_trip(
    workflow: Workflow,
    redis_client: Any,
    make_store: Callable[..., RedisSessionStore],
    redis_server: EmbeddedRedis,
) -> None:
    persistence = Persistence(
        store=make_store(redis_client, key_prefix="frontdesk"),
        settings=workflow.config.state,
        caller_secret=TEST_CALLER_SECRET,
    )
    call = await start_call(workflow=workflow, caller_identity=CALLER, persistence=persistence)
    assert await call.flush(5.0)
    watcher = connect_redis(redis_server.url)
    marker = connect_redis(redis_server.url)
    await marker.ping()  # its connection handshake happens before MONITOR starts
    sent: list[str] = []
    try:
        async with watcher.monitor() as monitor:
            await call.session.run(user_input="hi, my internet is down")
            assert await call.flush(5.0)
            await marker.echo("end-of-turn")
            while True:
                command = await asyncio.wait_for(monitor.next_command(), 5)
                if "end-of-turn" in command["command"]:
                    break
                if command["client_type"] != "lua":
                    sent.append(command["command"].split(" ")[0].upper())
        stored = await persistence.store.load(call.session_id)
    finally:
        await watcher.aclose()
        await marker.aclose()
        await call.aclose()
    # the turn did hand off, and everything it added is stored by that one write
    assert [(h.from_agent, h.to_agent) for h in stored.handoff_trail] == [
        ("receptionist", "support")
    ]
    assert stored.current_agent == "support"
    assert [item["id"] for item in stored.items] == [item.id for item in call.session.history.items]
    assert sent == ["EVALSHA"]
