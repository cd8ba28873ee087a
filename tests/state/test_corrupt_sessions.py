"""A session that does not decode is quarantined, reported, and harms no other session."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from frontdesk.errors import CorruptStateError, SessionNotFoundError
from frontdesk.state import RedisSessionStore, SessionState

Damage = Callable[[Redis, RedisSessionStore], Awaitable[object]]


async def _truncate_meta_json(client: Redis, store: RedisSessionStore) -> None:
    await client.hset(store.session_keys("broken")[0], "caller_data", b'{"account_number": "12')


async def _wrong_field_type(client: Redis, store: RedisSessionStore) -> None:
    await client.hset(store.session_keys("broken")[0], "turns", b'"three"')


async def _unknown_schema_version(client: Redis, store: RedisSessionStore) -> None:
    await client.hset(store.session_keys("broken")[0], "schema_version", b"99")


async def _missing_required_field(client: Redis, store: RedisSessionStore) -> None:
    await client.hdel(store.session_keys("broken")[0], "current_agent")


async def _meta_replaced_by_a_list(client: Redis, store: RedisSessionStore) -> None:
    meta = store.session_keys("broken")[0]
    await client.delete(meta)
    await client.rpush(meta, b"not", b"a", b"hash")


async def _items_replaced_by_a_string(client: Redis, store: RedisSessionStore) -> None:
    await client.set(store.session_keys("broken")[1], b"[]")


async def _item_that_is_not_json(client: Redis, store: RedisSessionStore) -> None:
    await client.rpush(store.session_keys("broken")[1], b'{"id": "half')


async def _item_that_is_not_an_object(client: Redis, store: RedisSessionStore) -> None:
    await client.rpush(store.session_keys("broken")[1], b"[1, 2, 3]")


async def _truncated_snapshot(client: Redis, store: RedisSessionStore) -> None:
    snap = store.session_keys("broken")[2]
    body = await client.get(snap)
    assert isinstance(body, bytes) and body
    await client.set(snap, body[: len(body) // 2])


async def _snapshot_count_disagrees(client: Redis, store: RedisSessionStore) -> None:
    await client.hset(store.session_keys("broken")[0], "_snap_n", b"7")


@pytest.mark.parametrize(
    "damage",
    [
        _truncate_meta_json,
        _wrong_field_type,
        _unknown_schema_version,
        _missing_required_field,
        _meta_replaced_by_a_list,
        _items_replaced_by_a_string,
        _item_that_is_not_json,
        _item_that_is_not_an_object,
        _truncated_snapshot,
        _snapshot_count_disagrees,
    ],
)
async def test_corrupt_session_is_quarantined_reported_and_isolated(
    damage: Damage,
    store: RedisSessionStore,
    redis_client: Redis,
    new_state: Callable[..., SessionState],
    chat_item: Callable[..., dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    for session_id in ("broken", "healthy"):
        lease = await store.claim(session_id, owner="worker-a")
        await store.create(
            new_state(session_id, items=[chat_item(i) for i in range(25)]),
            lease=lease,
            caller_identity=None,
        )
        await store.append(lease, items=[chat_item(25)], meta_update={"turns": 3}, base_len=25)
    healthy_before = await store.load("healthy")
    await damage(redis_client, store)

    with (
        caplog.at_level(logging.WARNING, logger="frontdesk.state"),
        pytest.raises(CorruptStateError, match="broken") as caught,
    ):
        await store.load("broken")

    assert "quarantined" in str(caught.value)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("broken" in r.getMessage() and "corrupt" in r.getMessage() for r in warnings)
    for live_key, quarantined in zip(
        store.session_keys("broken")[:3], store.quarantine_keys("broken"), strict=True
    ):
        assert not await redis_client.exists(live_key)
        if quarantined.endswith(":meta"):
            assert await redis_client.exists(quarantined)
            assert await redis_client.pttl(quarantined) > 0
    # Gone from the live keyspace: the next caller starts fresh instead of failing again.
    with pytest.raises(SessionNotFoundError):
        await store.load("broken")
    assert await store.load("healthy") == healthy_before
    assert [s.session_id for s in await store.list_sessions()] == ["healthy"]


async def test_schema_version_error_names_the_version(
    store: RedisSessionStore, redis_client: Redis, new_state: Callable[..., SessionState]
) -> None:
    lease = await store.claim("broken", owner="worker-a")
    await store.create(new_state("broken"), lease=lease, caller_identity=None)
    await _unknown_schema_version(redis_client, store)

    with pytest.raises(CorruptStateError, match="schema_version 99"):
        await store.load("broken")


async def test_listing_skips_a_session_whose_summary_is_unreadable(
    store: RedisSessionStore, redis_client: Redis, new_state: Callable[..., SessionState]
) -> None:
    for session_id in ("broken", "healthy"):
        lease = await store.claim(session_id, owner="worker-a")
        await store.create(new_state(session_id), lease=lease, caller_identity=None)
    await _wrong_field_type(redis_client, store)

    assert [s.session_id for s in await store.list_sessions()] == ["healthy"]


async def test_a_writer_whose_session_was_quarantined_recreates_it_with_a_rewrite(
    store: RedisSessionStore,
    redis_client: Redis,
    new_state: Callable[..., SessionState],
    chat_item: Callable[..., dict[str, Any]],
) -> None:
    lease = await store.claim("broken", owner="worker-a")
    state = new_state("broken", items=[chat_item(0)])
    await store.create(state, lease=lease, caller_identity=None)
    await _meta_replaced_by_a_list(redis_client, store)
    with pytest.raises(CorruptStateError):
        await store.load("broken")

    await store.rewrite(lease, state)

    assert await store.load("broken") == state
