"""The append script's count check: only an exact retry of the last append is a duplicate.

An append names the item count it was built on (``base_len``). Equal to the stored count: it is
applied. Stored count = base + the batch's size: it is the retry of an append whose reply was lost,
acknowledged without applying it twice. Anything else is a writer that lost track, refused with
a mismatch, so the writer resynchronises instead of dropping its items silently.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from frontdesk.errors import StaleOwnerError, StateError
from frontdesk.state import RedisSessionStore, SessionState

Item = dict[str, Any]


async def _stored(
    store: RedisSessionStore, new_state: Callable[..., SessionState], items: list[Item]
) -> Any:
    lease = await store.claim("call-1", owner="worker-a")
    await store.create(new_state("call-1", items=items), lease=lease, caller_identity=None)
    return lease


@pytest.mark.parametrize(("base_len", "batch"), [(1, 1), (0, 1), (1, 3), (2, 2)])
async def test_an_append_on_a_stale_count_that_is_not_an_exact_retry_is_refused(
    store: RedisSessionStore,
    new_state: Callable[..., SessionState],
    chat_item: Callable[..., Item],
    base_len: int,
    batch: int,
) -> None:
    """3 items stored; an append built on fewer, whose batch does not end at 3, is refused."""
    stored = [chat_item(0), chat_item(1), chat_item(2)]
    lease = await _stored(store, new_state, stored)
    items = [chat_item(10 + i) for i in range(batch)]
    assert base_len < 3 and base_len + batch != 3

    with pytest.raises(StateError, match=r"call-1.*holds 3 items") as caught:
        await store.append(lease, items=items, meta_update={"turns": 9}, base_len=base_len)
    assert not isinstance(caught.value, StaleOwnerError)
    state = await store.load("call-1")
    assert state.items == stored
    assert state.turns != 9  # the meta of a refused append is not applied either


async def test_an_exact_retry_of_the_last_append_is_acknowledged_once(
    store: RedisSessionStore, new_state: Callable[..., SessionState], chat_item: Callable[..., Item]
) -> None:
    lease = await _stored(store, new_state, [chat_item(0)])
    batch = [chat_item(1), chat_item(2)]
    assert await store.append(lease, items=batch, meta_update={}, base_len=1) == 3
    assert await store.append(lease, items=batch, meta_update={}, base_len=1) == 3  # the retry
    assert (await store.load("call-1")).items == [chat_item(0), *batch]


async def test_an_empty_append_on_a_stale_count_is_refused(
    store: RedisSessionStore, new_state: Callable[..., SessionState], chat_item: Callable[..., Item]
) -> None:
    lease = await _stored(store, new_state, [chat_item(0), chat_item(1)])
    with pytest.raises(StateError, match="holds 2 items"):
        await store.append(lease, items=[], meta_update={"turns": 4}, base_len=1)
    assert (await store.load("call-1")).turns != 4
