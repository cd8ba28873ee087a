"""What survives a crash of Redis itself, and how an unreachable Redis is reported."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from frontdesk.errors import StateUnavailableError
from frontdesk.state import EmbeddedRedis, RedisSessionStore, SessionState


async def test_redis_crash_and_aof_restart_lose_nothing_acknowledged(
    fault_redis: EmbeddedRedis,
    fault_store: RedisSessionStore,
    new_state: Callable[..., SessionState],
    chat_item: Callable[..., dict[str, Any]],
) -> None:
    store = fault_store
    lease = await store.claim("call-1", owner="worker-a")
    await store.create(new_state("call-1"), lease=lease, caller_identity="+15551230001")
    count = 0
    for index in range(300):
        count = await store.append(
            lease, items=[chat_item(index)], meta_update={"turns": index}, base_len=count
        )

    fault_redis.kill()  # SIGKILL right after the last acknowledged write
    fault_redis.restart()

    loaded = await store.load("call-1")
    assert loaded.items == [chat_item(i) for i in range(300)]
    assert loaded.turns == 299
    assert await store.find_by_caller("+15551230001") == "call-1"
    # The fencing token survived too: the same lease keeps writing.
    assert await store.append(lease, items=[chat_item(300)], meta_update={}, base_len=300) == 301


async def test_unreachable_redis_raises_state_unavailable_naming_the_session(
    fault_redis: EmbeddedRedis, fault_store: RedisSessionStore
) -> None:
    store = fault_store
    await store.ping()
    fault_redis.kill()

    with pytest.raises(StateUnavailableError, match="call-1"):
        await store.load("call-1")
    with pytest.raises(StateUnavailableError):
        await store.claim("call-1", owner="worker-a")
    with pytest.raises(StateUnavailableError, match="call-1"):
        await store.quarantine("call-1", "items are not LiveKit chat items")
    with pytest.raises(StateUnavailableError):
        await store.ping()
