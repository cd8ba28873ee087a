"""A stored session is bounded: past ``max_items`` or ``max_bytes`` a load quarantines it.

Decoding is what a load costs, and a voice worker serves many calls on one event loop, so a
flooded session must cost one bounded read and a quarantine, not a stalled loop. Appends keep
working up to the bound (and are not refused past it: a live call never loses a turn to it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from frontdesk.errors import CorruptStateError, SessionNotFoundError, StateError
from frontdesk.state import EmbeddedRedis, RedisSessionStore, SessionState, connect_redis

Item = dict[str, Any]


async def _append_one_by_one(
    store: RedisSessionStore, sid: str, chat_item: Callable[..., Item], count: int, **size: int
) -> None:
    lease = await store.claim(sid, owner="worker-a")
    stored = len((await store.load(sid)).items)
    for index in range(stored, count):
        stored = await store.append(
            lease, items=[chat_item(index, **size)], meta_update={}, base_len=stored
        )


async def test_appends_up_to_max_items_load_and_one_more_item_is_quarantined_on_load(
    make_store: Callable[..., RedisSessionStore],
    redis_client: Redis,
    new_state: Callable[..., SessionState],
    chat_item: Callable[..., Item],
) -> None:
    store = make_store(redis_client, max_items=30, snapshot_every=20)  # crosses a compaction
    lease = await store.claim("long-call", owner="worker-a")
    await store.create(new_state("long-call"), lease=lease, caller_identity=None)

    await _append_one_by_one(store, "long-call", chat_item, 30)
    assert (await store.load("long-call")).items == [chat_item(i) for i in range(30)]

    await _append_one_by_one(store, "long-call", chat_item, 31)
    with pytest.raises(CorruptStateError, match=r"'long-call'.*31 items.*30 items.*quarantined"):
        await store.load("long-call")
    assert await redis_client.exists(store.quarantine_keys("long-call")[0])
    with pytest.raises(SessionNotFoundError):
        await store.load("long-call")


async def test_a_session_over_max_bytes_is_quarantined_on_load_naming_its_size(
    make_store: Callable[..., RedisSessionStore],
    redis_client: Redis,
    new_state: Callable[..., SessionState],
    chat_item: Callable[..., Item],
) -> None:
    store = make_store(redis_client, max_bytes=40_000, snapshot_every=20)
    lease = await store.claim("wordy", owner="worker-a")
    await store.create(new_state("wordy"), lease=lease, caller_identity=None)

    await _append_one_by_one(store, "wordy", chat_item, 30, size=1000)  # ~30 kB
    assert len((await store.load("wordy")).items) == 30

    await _append_one_by_one(store, "wordy", chat_item, 45, size=1000)  # ~45 kB
    with pytest.raises(CorruptStateError, match=r"'wordy'.*\d+ bytes.*40000 bytes"):
        await store.load("wordy")
    assert await redis_client.exists(store.quarantine_keys("wordy")[0])


async def _output_bytes(client: Redis) -> int:
    return int((await client.info("stats"))["total_net_output_bytes"])


async def test_a_flooded_list_is_quarantined_without_being_read_whole(
    make_store: Callable[..., RedisSessionStore],
    redis_client: Redis,
    redis_server: EmbeddedRedis,
    new_state: Callable[..., SessionState],
    chat_item: Callable[..., Item],
) -> None:
    store = make_store(redis_client, max_items=100)
    lease = await store.claim("flooded", owner="worker-a")
    await store.create(new_state("flooded"), lease=lease, caller_identity=None)
    flood = [orjson.dumps(chat_item(i, size=200)) for i in range(5000)]  # ~1 MB
    await redis_client.rpush(store.session_keys("flooded")[1], *flood)
    observer = connect_redis(redis_server.url)
    try:
        before = await _output_bytes(observer)
        with pytest.raises(CorruptStateError, match=r"'flooded'.*5000 items"):
            await store.load("flooded")
        sent = await _output_bytes(observer) - before
    finally:
        await observer.aclose()

    assert sent < 100 * 250 + 20_000, f"the load read {sent} bytes of a ~1 MB session"
    assert await redis_client.llen(store.quarantine_keys("flooded")[1]) == 5000


@pytest.mark.parametrize("bound", ["max_items", "max_bytes"])
def test_bounds_below_one_are_refused(
    bound: str, make_store: Callable[..., RedisSessionStore], redis_client: Redis
) -> None:
    with pytest.raises(StateError, match=bound):
        make_store(redis_client, **{bound: 0})
