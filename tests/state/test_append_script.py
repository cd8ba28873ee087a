"""The append script at its edges: a deleted session, the first compaction, big batches, and the
caller index's cap — each checked through the real store on a real redis-server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from frontdesk.errors import CorruptStateError, SessionNotFoundError
from frontdesk.state import RedisSessionStore, SessionState
from frontdesk.state.caller_index import KEEP

Item = dict[str, Any]


async def test_an_append_to_a_session_deleted_under_its_lease_is_refused_and_writes_nothing(
    store: RedisSessionStore,
    redis_client: Redis,
    new_state: Callable[..., SessionState],
    chat_item: Callable[..., Item],
) -> None:
    lease = await store.claim("gone-1", owner="worker-a")
    await store.create(new_state("gone-1", items=[chat_item(0)]), lease=lease, caller_identity=None)
    meta, items, snap, fence, _ = store.session_keys("gone-1")
    await redis_client.delete(meta, items, snap)  # deleted (or expired) while the lease is held

    with pytest.raises(SessionNotFoundError, match="gone-1"):
        await store.append(lease, items=[chat_item(1)], meta_update={"turns": 1}, base_len=1)

    assert await redis_client.exists(meta, items, snap) == 0  # no half a session left behind
    assert await redis_client.exists(fence) == 1


async def test_the_first_compaction_of_a_session_created_empty_stores_exactly_its_items(
    redis_client: Redis,
    make_store: Callable[..., RedisSessionStore],
    new_state: Callable[..., SessionState],
    chat_item: Callable[..., Item],
) -> None:
    store = make_store(redis_client, snapshot_every=3)
    lease = await store.claim("snap-1", owner="worker-a")
    await store.create(new_state("snap-1"), lease=lease, caller_identity=None)
    count = 0
    for index in range(3):  # the third append folds the list into the (empty) snapshot
        count = await store.append(lease, items=[chat_item(index)], meta_update={}, base_len=count)
    snap_key = store.session_keys("snap-1")[2]

    snapshot = await redis_client.get(snap_key)
    assert snapshot is not None and snapshot.startswith(b"{")  # no separator before item 0
    assert await redis_client.pttl(snap_key) > 0  # the new snapshot expires with the session
    loaded = await store.load("snap-1")
    assert loaded.items == [chat_item(i) for i in range(3)]
    await store.append(lease, items=[chat_item(3)], meta_update={}, base_len=3)
    assert (await store.load("snap-1")).items == [chat_item(i) for i in range(4)]


@pytest.mark.parametrize("batch", [1000, 1001, 2500])
async def test_an_append_of_more_items_than_one_push_takes_stores_every_item_in_order(
    redis_client: Redis,
    make_store: Callable[..., RedisSessionStore],
    new_state: Callable[..., SessionState],
    chat_item: Callable[..., Item],
    batch: int,
) -> None:
    """The script pushes 1,000 arguments at a time (Lua's unpack limit): none skipped or repeated."""
    store = make_store(redis_client, snapshot_every=10_000, max_items=10_000)
    lease = await store.claim("big-1", owner="worker-a")
    await store.create(new_state("big-1", items=[chat_item(0)]), lease=lease, caller_identity=None)
    items = [chat_item(i) for i in range(1, batch + 1)]

    count = await store.append(lease, items=items, meta_update={}, base_len=1)

    assert count == batch + 1
    loaded = await store.load("big-1")
    assert [item["id"] for item in loaded.items] == [chat_item(i)["id"] for i in range(batch + 1)]


async def test_a_callers_index_keeps_only_the_newest_sessions_up_to_its_limit(
    store: RedisSessionStore,
    redis_client: Redis,
    new_state: Callable[..., SessionState],
) -> None:
    caller = "+15551239999"
    for number in range(KEEP + 2):
        sid = f"many-{number}"
        lease = await store.claim(sid, owner="worker-a")
        state = new_state(sid, created_at=1_000_000.0 + number)
        await store.create(state, lease=lease, caller_identity=caller)

    kept = await redis_client.zrange(store.caller_key(caller), 0, -1)

    assert len(kept) == KEEP
    assert [sid.decode() for sid in kept] == [f"many-{n}" for n in range(2, KEEP + 2)]


async def test_an_append_refused_because_meta_is_not_a_hash_leaves_the_item_list_as_it_was(
    store: RedisSessionStore,
    redis_client: Redis,
    new_state: Callable[..., SessionState],
    chat_item: Callable[..., Item],
) -> None:
    """The script pushes the items before it writes meta; when meta cannot take them, the push
    is undone, so nothing of a refused write stays behind."""
    lease = await store.claim("wrong-1", owner="worker-a")
    await store.create(
        new_state("wrong-1", items=[chat_item(0)]), lease=lease, caller_identity=None
    )
    await store.append(lease, items=[chat_item(1)], meta_update={}, base_len=1)
    meta, items, _, _, _ = store.session_keys("wrong-1")
    before = await redis_client.lrange(items, 0, -1)
    await redis_client.delete(meta)
    await redis_client.set(meta, b"damaged: not a hash")

    with pytest.raises(CorruptStateError, match="wrong-1"):
        await store.append(lease, items=[chat_item(2), chat_item(3)], meta_update={}, base_len=2)

    assert await redis_client.lrange(items, 0, -1) == before


@pytest.mark.parametrize("write", ["rewrite", "mark_ended"])
async def test_a_full_rewrite_and_ending_a_call_refresh_every_keys_ttl(
    redis_client: Redis,
    make_store: Callable[..., RedisSessionStore],
    new_state: Callable[..., SessionState],
    chat_item: Callable[..., Item],
    write: str,
) -> None:
    store = make_store(redis_client, ttl=100.0, lease_ttl=7.0)
    lease = await store.claim("ttl-1", owner="worker-a")
    state = new_state("ttl-1", items=[chat_item(0)])
    await store.create(state, lease=lease, caller_identity=None)
    await store.append(lease, items=[chat_item(1)], meta_update={}, base_len=1)
    meta, items, snap, fence, lease_key = store.session_keys("ttl-1")
    for key in (meta, items, snap, fence, lease_key):
        await redis_client.pexpire(key, 2_000)

    if write == "rewrite":
        await store.rewrite(lease, new_state("ttl-1", items=[chat_item(0), chat_item(1)]))
    else:
        await store.mark_ended(lease)

    for key in (meta, snap, fence):
        assert await redis_client.pttl(key) > 95_000, key
    assert await redis_client.pttl(lease_key) > 5_000


async def test_an_append_never_extends_a_lease_that_names_another_token(
    redis_client: Redis,
    make_store: Callable[..., RedisSessionStore],
    new_state: Callable[..., SessionState],
    chat_item: Callable[..., Item],
) -> None:
    store = make_store(redis_client, lease_ttl=7.0)
    lease = await store.claim("lease-1", owner="worker-a")
    await store.create(new_state("lease-1"), lease=lease, caller_identity=None)
    lease_key = store.session_keys("lease-1")[4]
    await redis_client.set(lease_key, f"{lease.fence + 1}:worker-b".encode(), px=2_000)

    await store.append(lease, items=[chat_item(0)], meta_update={}, base_len=0)

    assert await redis_client.pttl(lease_key) <= 2_000  # not worker-a's to extend
    assert await redis_client.get(lease_key) == f"{lease.fence + 1}:worker-b".encode()
