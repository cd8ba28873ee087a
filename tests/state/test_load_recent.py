"""``load_recent``: the latest items decoded, the older ones kept as stored and checked by structure.

A resume decodes only a window of the latest items (``[state.resume] context_items``); the
items before it come back as the stored bytes. Decoded, they are exactly what ``load`` returns.
Damage the byte scan can see (framing, too few items for the stored counts) quarantines the
session at load, as ``load`` would; damage inside an older item is found when it is decoded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from frontdesk.errors import CorruptStateError, SessionNotFoundError
from frontdesk.state import RedisSessionStore, SessionState
from frontdesk.state.recent import BOUNDARY, split_snapshot


async def stored_session(
    store: RedisSessionStore,
    new_state: Callable[..., SessionState],
    items: list[dict[str, Any]],
    *,
    in_snapshot: int,
) -> None:
    """``items`` stored with the first ``in_snapshot`` of them in the snapshot, the rest listed."""
    lease = await store.claim("s1", owner="worker-a")
    await store.create(
        new_state("s1", items=items[:in_snapshot]), lease=lease, caller_identity=None
    )
    count = in_snapshot
    for item in items[in_snapshot:]:
        count = await store.append(lease, items=[item], meta_update={}, base_len=count)


@pytest.mark.parametrize(
    ("in_snapshot", "window"),
    [(0, 5), (40, 5), (40, 25), (40, 60), (60, 5), (60, 30), (60, 0)],
)
async def test_the_window_and_the_earlier_items_together_are_what_load_returns(
    store: RedisSessionStore,
    new_state: Callable[..., SessionState],
    chat_item: Callable[..., dict[str, Any]],
    in_snapshot: int,
    window: int,
) -> None:
    # snapshot_every is 20 in tests: appends after the create compact into the snapshot too
    items = [chat_item(i, size=300) for i in range(60)]
    await stored_session(store, new_state, items, in_snapshot=in_snapshot)

    whole = await store.load("s1")
    recent = await store.load_recent("s1", window=window)

    decoded = len(items) if window == 0 else window
    assert len(recent.state.items) == decoded
    assert recent.state.items == items[len(items) - decoded :]
    assert recent.earlier.count == len(items) - decoded
    assert [*recent.earlier.decode(), *recent.state.items] == whole.items == items
    assert recent.state.model_dump(exclude={"items"}) == whole.model_dump(exclude={"items"})
    assert recent.item_count == len(items)


async def test_an_object_nested_in_an_item_is_not_taken_for_an_item_boundary(
    store: RedisSessionStore,
    new_state: Callable[..., SessionState],
    chat_item: Callable[..., dict[str, Any]],
) -> None:
    items = [chat_item(i) for i in range(30)]
    # `,{"id":` inside an item: in a list of objects under extra, and inside a string
    items[25]["extra"] = {"parts": [{"id": "a"}, {"id": "b"}, {"id": "c"}]}
    items[26]["content"] = ['quoted: ,{"id": "fake", "type": "message"}']
    await stored_session(store, new_state, items, in_snapshot=30)
    snap = await store._client.get(store.session_keys("s1")[2])
    assert snap.count(BOUNDARY) > 29  # the nested ones are candidates too

    recent = await store.load_recent("s1", window=6)

    assert recent.state.items == items[24:]
    assert recent.earlier.decode() == items[:24]


def test_a_snapshot_without_item_boundaries_is_not_split() -> None:
    assert split_snapshot(b'{"type":"message","id":"a"},{"type":"message","id":"b"}', 1) is None


async def test_a_window_that_does_not_decode_quarantines_the_session(
    store: RedisSessionStore,
    redis_client: Redis,
    new_state: Callable[..., SessionState],
    chat_item: Callable[..., dict[str, Any]],
) -> None:
    await stored_session(store, new_state, [chat_item(i) for i in range(40)], in_snapshot=40)
    await redis_client.rpush(store.session_keys("s1")[1], b'{"id": "half')

    with pytest.raises(CorruptStateError, match="quarantined"):
        await store.load_recent("s1", window=5)
    with pytest.raises(SessionNotFoundError):
        await store.load("s1")


async def _truncated_at_an_item_boundary(client: Redis, store: RedisSessionStore) -> None:
    snap_key = store.session_keys("s1")[2]
    body = await client.get(snap_key)
    await client.set(snap_key, body[: body.index(BOUNDARY)])  # one item left of 40


async def _cut_inside_an_early_item(client: Redis, store: RedisSessionStore) -> None:
    snap_key = store.session_keys("s1")[2]
    body = await client.get(snap_key)
    await client.set(snap_key, body[30:])  # starts mid-object


async def _more_items_than_the_snapshot_holds(client: Redis, store: RedisSessionStore) -> None:
    await client.hset(store.session_keys("s1")[0], "_snap_n", b"90")


@pytest.mark.parametrize(
    "damage",
    [
        _truncated_at_an_item_boundary,
        _cut_inside_an_early_item,
        _more_items_than_the_snapshot_holds,
    ],
)
async def test_structural_damage_before_the_window_quarantines_the_session_at_load(
    store: RedisSessionStore,
    redis_client: Redis,
    new_state: Callable[..., SessionState],
    chat_item: Callable[..., dict[str, Any]],
    damage: Callable[[Redis, RedisSessionStore], Any],
) -> None:
    await stored_session(store, new_state, [chat_item(i) for i in range(45)], in_snapshot=40)
    await damage(redis_client, store)

    with pytest.raises(CorruptStateError, match="quarantined"):
        await store.load_recent("s1", window=10)
    assert await redis_client.exists(store.quarantine_keys("s1")[0])


async def test_damage_inside_an_older_item_is_found_when_the_older_items_are_decoded(
    store: RedisSessionStore,
    redis_client: Redis,
    new_state: Callable[..., SessionState],
    chat_item: Callable[..., dict[str, Any]],
) -> None:
    items = [chat_item(i) for i in range(45)]
    await stored_session(store, new_state, items, in_snapshot=40)
    snap_key = store.session_keys("s1")[2]
    body = await redis_client.get(snap_key)
    # item 3's content is no longer JSON; framing and item count are untouched
    damaged = body.replace(b'"content":["message 3 ', b'"content":[message 3 ', 1)
    assert damaged != body
    await redis_client.set(snap_key, damaged)

    recent = await store.load_recent("s1", window=10)  # the window is fine: no quarantine

    assert recent.state.items == items[35:]
    with pytest.raises(ValueError, match="not JSON"):
        recent.earlier.decode()
    with pytest.raises(CorruptStateError):  # and load, which decodes everything, refuses it
        await store.load("s1")
