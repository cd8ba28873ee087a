"""A session whose fence or lease key is damaged is quarantined, and never blocks ownership.

The store only ever writes a positive integer to ``fence`` and a string to ``lease``; anything
else means the data's fencing history is unknown. Loads and claims quarantine such a session and
raise ``CorruptStateError`` (never ``StateUnavailableError``: the caller must start fresh, not
retry as if Redis were down), the next claim of the id succeeds, and writes refuse it without
writing anything.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from frontdesk.errors import CorruptStateError, SessionNotFoundError, StateUnavailableError
from frontdesk.state import Lease, RedisSessionStore, SessionState

Damage = Callable[[Redis, RedisSessionStore, str], Awaitable[object]]
StoredSession = Callable[[str], Awaitable[Lease]]
Item = dict[str, Any]


async def _fence_is_a_hash(client: Redis, store: RedisSessionStore, sid: str) -> None:
    fence = store.session_keys(sid)[3]
    await client.delete(fence)
    await client.hset(fence, "token", b"1")


async def _fence_is_not_a_number(client: Redis, store: RedisSessionStore, sid: str) -> None:
    await client.set(store.session_keys(sid)[3], b"not-a-number")


async def _fence_is_negative(client: Redis, store: RedisSessionStore, sid: str) -> None:
    await client.set(store.session_keys(sid)[3], b"-5")


async def _fence_overflows_incr(client: Redis, store: RedisSessionStore, sid: str) -> None:
    await client.set(store.session_keys(sid)[3], b"9" * 19)


async def _fence_has_a_trailing_newline(client: Redis, store: RedisSessionStore, sid: str) -> None:
    fence = store.session_keys(sid)[3]
    await client.set(fence, b"12345\n")


async def _lease_is_a_list(client: Redis, store: RedisSessionStore, sid: str) -> None:
    lease = store.session_keys(sid)[4]
    await client.delete(lease)
    await client.rpush(lease, b"1:worker")


DAMAGES = [
    _fence_is_a_hash,
    _fence_is_not_a_number,
    _fence_is_negative,
    _fence_overflows_incr,
    _fence_has_a_trailing_newline,
    _lease_is_a_list,
]


async def _assert_quarantined_and_claimable_again(
    store: RedisSessionStore,
    redis_client: Redis,
    new_state: Callable[..., SessionState],
    old: Lease,
) -> None:
    sid = old.session_id
    assert await redis_client.exists(store.quarantine_keys(sid)[0])
    assert await redis_client.pttl(store.quarantine_keys(sid)[0]) > 0
    for key in store.session_keys(sid)[:3]:
        assert not await redis_client.exists(key)
    with pytest.raises(SessionNotFoundError):
        await store.load(sid)
    lease = await store.claim(sid, owner="worker-b")
    assert lease.fence > old.fence, "a token after the reset must not reuse an old one"
    await store.create(new_state(sid), lease=lease, caller_identity=None)
    assert (await store.load(sid)).items == []


@pytest.mark.parametrize("damage", DAMAGES)
async def test_load_quarantines_a_session_with_damaged_bookkeeping_and_the_id_can_be_claimed_again(
    damage: Damage,
    store: RedisSessionStore,
    stored_session: StoredSession,
    redis_client: Redis,
    new_state: Callable[..., SessionState],
    caplog: pytest.LogCaptureFixture,
) -> None:
    lease = await stored_session("damaged")
    await damage(redis_client, store, "damaged")

    with (
        caplog.at_level(logging.WARNING, logger="frontdesk.state"),
        pytest.raises(CorruptStateError, match=r"'damaged'.*(fence|lease).*quarantined"),
    ):
        await store.load("damaged")

    assert any(
        "damaged" in r.getMessage() and "quarantined" in r.getMessage() for r in caplog.records
    )
    await _assert_quarantined_and_claimable_again(store, redis_client, new_state, lease)


@pytest.mark.parametrize("damage", DAMAGES)
async def test_claim_quarantines_a_session_with_damaged_bookkeeping_and_raises_corrupt_not_unavailable(
    damage: Damage,
    store: RedisSessionStore,
    stored_session: StoredSession,
    redis_client: Redis,
    new_state: Callable[..., SessionState],
    caplog: pytest.LogCaptureFixture,
) -> None:
    lease = await stored_session("damaged")
    await damage(redis_client, store, "damaged")

    with (
        caplog.at_level(logging.WARNING, logger="frontdesk.state"),
        pytest.raises(CorruptStateError, match=r"'damaged'.*(fence|lease).*claim it again") as e,
    ):
        await store.claim("damaged", owner="worker-b")

    assert not isinstance(e.value, StateUnavailableError)
    assert any(
        "damaged" in r.getMessage() and "quarantined" in r.getMessage() for r in caplog.records
    )
    await _assert_quarantined_and_claimable_again(store, redis_client, new_state, lease)


async def test_claim_of_damaged_bookkeeping_without_stored_data_resets_it(
    store: RedisSessionStore, redis_client: Redis
) -> None:
    await _fence_is_a_hash(redis_client, store, "never-created")

    with pytest.raises(CorruptStateError, match="never-created"):
        await store.claim("never-created", owner="worker-a")

    assert (await store.claim("never-created", owner="worker-a")).fence > 0


@pytest.mark.parametrize("damage", [_fence_is_a_hash, _fence_is_not_a_number, _lease_is_a_list])
async def test_writes_under_damaged_bookkeeping_raise_corrupt_and_write_nothing(
    damage: Damage,
    store: RedisSessionStore,
    stored_session: StoredSession,
    redis_client: Redis,
    new_state: Callable[..., SessionState],
    chat_item: Callable[..., Item],
) -> None:
    lease = await stored_session("damaged")
    meta_key, items_key, snap_key, _, _ = store.session_keys("damaged")
    before = (
        await redis_client.hgetall(meta_key),
        await redis_client.lrange(items_key, 0, -1),
        await redis_client.get(snap_key),
    )
    await damage(redis_client, store, "damaged")

    with pytest.raises(CorruptStateError, match=r"'damaged'.*refused and nothing written"):
        await store.append(lease, items=[chat_item(26)], meta_update={"turns": 9}, base_len=26)
    with pytest.raises(CorruptStateError, match="'damaged'"):
        await store.rewrite(lease, new_state("damaged"))
    with pytest.raises(CorruptStateError, match="'damaged'"):
        await store.mark_ended(lease)
    with pytest.raises(CorruptStateError, match="'damaged'"):
        await store.renew(lease)
    await store.release(lease)  # the end of a call never fails on it

    after = (
        await redis_client.hgetall(meta_key),
        await redis_client.lrange(items_key, 0, -1),
        await redis_client.get(snap_key),
    )
    assert after == before


async def test_quarantine_moves_the_session_aside_and_logs_the_session_and_reason(
    store: RedisSessionStore,
    stored_session: StoredSession,
    redis_client: Redis,
    new_state: Callable[..., SessionState],
    chat_item: Callable[..., Item],
    caplog: pytest.LogCaptureFixture,
) -> None:
    lease = await store.claim("odd-items", owner="worker-a")
    await store.create(
        new_state("odd-items", items=[chat_item(0)]), lease=lease, caller_identity="+15551230001"
    )
    await stored_session("bystander")

    with caplog.at_level(logging.WARNING, logger="frontdesk.state"):
        await store.quarantine("odd-items", "items are not LiveKit chat items")

    message = next(r.getMessage() for r in caplog.records if "odd-items" in r.getMessage())
    assert "quarantined" in message and "items are not LiveKit chat items" in message
    with pytest.raises(SessionNotFoundError):
        await store.load("odd-items")
    assert await store.find_by_caller("+15551230001") is None
    assert await redis_client.pttl(store.quarantine_keys("odd-items")[0]) > 0
    assert len((await store.load("bystander")).items) == 26
    # The fence is intact: the live owner's writes are still fenced, and can recreate it.
    await store.rewrite(lease, new_state("odd-items"))
    assert (await store.load("odd-items")).items == []


async def test_quarantining_again_keeps_the_first_quarantined_copy(
    store: RedisSessionStore,
    stored_session: StoredSession,
    redis_client: Redis,
) -> None:
    await stored_session("twice")
    await store.quarantine("twice", "first look")
    quarantined = await redis_client.hgetall(store.quarantine_keys("twice")[0])

    await store.quarantine("twice", "second look")

    assert await redis_client.hgetall(store.quarantine_keys("twice")[0]) == quarantined
    assert await redis_client.get(store.quarantine_keys("twice")[2])


async def test_quarantine_of_an_id_with_nothing_stored_is_a_logged_no_op(
    store: RedisSessionStore, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="frontdesk.state"):
        await store.quarantine("nothing-here", "a stale reference")

    assert any("nothing-here" in r.getMessage() for r in caplog.records)
