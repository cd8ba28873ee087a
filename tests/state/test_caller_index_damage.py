"""A damaged caller index never hides a caller's sessions or stops new ones being indexed.

The index only holds session ids derivable from the sessions' meta, so the store repairs it
instead of failing: a key of the wrong type reads as empty and is replaced by the next indexing,
members that are not session ids are dropped on lookup.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from redis.asyncio import Redis

from frontdesk.state import RedisSessionStore, SessionState

CALLER = "+15551230001"


async def _create(
    store: RedisSessionStore,
    new_state: Callable[..., SessionState],
    sid: str,
    *,
    created_at: float,
    caller: str = CALLER,
) -> None:
    lease = await store.claim(sid, owner="worker-a")
    await store.create(new_state(sid, created_at=created_at), lease=lease, caller_identity=caller)


@pytest.mark.parametrize(
    "wrong",
    [
        pytest.param(lambda c, k: c.set(k, b"I am not a sorted set"), id="string"),
        pytest.param(lambda c, k: c.rpush(k, b"s1"), id="list"),
        pytest.param(lambda c, k: c.hset(k, "s1", b"1"), id="hash"),
    ],
)
async def test_a_caller_index_of_the_wrong_type_reads_as_empty_and_is_replaced_by_the_next_create(
    wrong: Callable[[Redis, str], object],
    store: RedisSessionStore,
    redis_client: Redis,
    new_state: Callable[..., SessionState],
    caplog: pytest.LogCaptureFixture,
) -> None:
    index = store.caller_key(CALLER)
    await wrong(redis_client, index)  # type: ignore[misc]

    with caplog.at_level(logging.WARNING, logger="frontdesk.state"):
        assert await store.find_by_caller(CALLER) is None
        await _create(store, new_state, "fresh", created_at=100.0)

    assert await store.find_by_caller(CALLER) == "fresh"
    assert await redis_client.type(index) == b"zset"
    assert await redis_client.pttl(index) > 0
    assert any("not a sorted set" in r.getMessage() for r in caplog.records)


async def test_delete_and_forget_caller_go_through_a_caller_index_of_the_wrong_type(
    store: RedisSessionStore, redis_client: Redis, new_state: Callable[..., SessionState]
) -> None:
    await _create(store, new_state, "first", created_at=100.0)
    await _create(store, new_state, "second", created_at=200.0)
    await redis_client.delete(store.caller_key(CALLER))
    await redis_client.set(store.caller_key(CALLER), b"garbage")

    await store.delete("first")
    assert await store.forget_caller(CALLER) == 1  # "second", found by scanning

    assert not await redis_client.exists(store.caller_key(CALLER))
    assert [key async for key in redis_client.scan_iter(count=1000)] == []


async def test_find_by_caller_skips_and_drops_members_that_are_not_session_ids(
    store: RedisSessionStore,
    redis_client: Redis,
    new_state: Callable[..., SessionState],
    caplog: pytest.LogCaptureFixture,
) -> None:
    await _create(store, new_state, "older", created_at=100.0)
    await _create(store, new_state, "real", created_at=200.0)
    index = store.caller_key(CALLER)
    hostile = [b"* {bad} id", b"\xff\xfe", b"trailing-newline\n", b"x" * 300]
    await redis_client.zadd(index, {member: 1000.0 + n for n, member in enumerate(hostile)})

    with caplog.at_level(logging.WARNING, logger="frontdesk.state"):
        assert await store.find_by_caller(CALLER) == "real"

    assert await redis_client.zrange(index, 0, -1) == [b"older", b"real"]
    assert any("not valid session ids" in r.getMessage() for r in caplog.records)


async def test_an_index_of_only_invalid_members_finds_nothing_and_is_emptied(
    store: RedisSessionStore, redis_client: Redis
) -> None:
    index = store.caller_key(CALLER)
    await redis_client.zadd(index, {b"a{b}": 1.0, b"": 2.0})

    assert await store.find_by_caller(CALLER) is None
    assert not await redis_client.exists(index)


async def test_forget_caller_ignores_index_members_that_are_not_session_ids(
    store: RedisSessionStore, redis_client: Redis, new_state: Callable[..., SessionState]
) -> None:
    await _create(store, new_state, "mine", created_at=100.0)
    await redis_client.zadd(store.caller_key(CALLER), {b"* {bad} id": 500.0})

    assert await store.forget_caller(CALLER) == 1
    assert [key async for key in redis_client.scan_iter(count=1000)] == []
