"""SessionWriter: batching, outages, bounded memory, lost ownership — on a real redis-server."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from redis.asyncio import Redis

from frontdesk.errors import StaleOwnerError, StateUnavailableError
from frontdesk.state import (
    EmbeddedRedis,
    Lease,
    RedisSessionStore,
    SessionState,
    SessionWriter,
    connect_redis,
)

Item = dict[str, Any]


@dataclass
class Call:
    """A live call as the agents layer would hold it: in-memory state plus its writer."""

    state: SessionState
    lease: Lease
    writer: SessionWriter

    def say(self, item: Item, **meta: Any) -> None:
        self.state.items.append(item)
        for name, value in meta.items():
            setattr(self.state, name, value)
        self.writer.submit([item], meta)


async def start_call(
    store: Any, state: SessionState, *, owner: str = "worker-a", **writer_options: Any
) -> Call:
    lease = await store.claim(state.session_id, owner=owner)
    await store.create(state, lease=lease, caller_identity=None)
    holder: list[SessionState] = [state]
    options: dict[str, Any] = {"retry_initial": 0.01, "retry_max": 0.05}
    options.update(writer_options)
    writer = SessionWriter(
        store=store,
        lease=lease,
        base_len=len(state.items),
        full_state=lambda: holder[0],
        **options,
    )
    return Call(state=state, lease=lease, writer=writer)


async def test_submits_are_batched_into_one_append_in_order(
    store: RedisSessionStore,
    redis_server: EmbeddedRedis,
    new_state: Callable[..., SessionState],
    chat_item: Callable[..., Item],
) -> None:
    call = await start_call(store, new_state("call-1"))
    call.say(chat_item(0), turns=1)
    assert await call.writer.flush(2)  # script loaded, connection warm
    observer = connect_redis(redis_server.url)
    await observer.config_resetstat()

    for index in range(1, 6):
        call.say(chat_item(index), turns=index + 1)
    assert call.writer.pending_items == 5
    assert await call.writer.flush(2)

    stats = await observer.info("commandstats")
    await observer.aclose()
    assert stats["cmdstat_evalsha"]["calls"] == 1
    assert call.writer.acked_items == 6
    assert call.writer.pending_items == 0
    loaded = await store.load("call-1")
    assert loaded.items == [chat_item(i) for i in range(6)]
    assert loaded.turns == 6
    await call.writer.aclose()


async def test_writer_keeps_writes_through_an_outage_and_stores_each_once_in_order(
    fault_redis: EmbeddedRedis,
    fault_store: RedisSessionStore,
    new_state: Callable[..., SessionState],
    chat_item: Callable[..., Item],
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = fault_store
    call = await start_call(store, new_state("call-1", items=[chat_item(0)]))
    call.say(chat_item(1), turns=1)
    assert await call.writer.flush(2)

    with caplog.at_level(logging.INFO, logger="frontdesk.state"):
        fault_redis.kill()
        for index in range(2, 12):
            call.say(chat_item(index), turns=index)
            await asyncio.sleep(0.005)
        assert not await call.writer.flush(0.3)
        assert not call.writer.connected
        assert call.writer.pending_items == 10

        fault_redis.restart()
        assert await call.writer.flush(5)

    assert call.writer.connected
    loaded = await store.load("call-1")
    assert loaded.items == [chat_item(i) for i in range(12)]
    assert loaded.turns == 11
    outage_logs = [r for r in caplog.records if "Redis unavailable" in r.getMessage()]
    assert len(outage_logs) == 1
    assert "call-1" in outage_logs[0].getMessage()
    assert any("Redis is back" in r.getMessage() for r in caplog.records)
    await call.writer.aclose()


class LosesFirstReply:
    """Fault injection around the real store: the first append lands, its reply is 'lost'."""

    def __init__(self, store: RedisSessionStore) -> None:
        self._store = store
        self.lost = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def append(self, lease: Lease, **kwargs: Any) -> int:
        count = await self._store.append(lease, **kwargs)
        if not self.lost:
            self.lost += 1
            raise StateUnavailableError("connection reset after the write was applied")
        return count


async def test_retry_after_a_lost_reply_does_not_duplicate_items(
    store: RedisSessionStore,
    new_state: Callable[..., SessionState],
    chat_item: Callable[..., Item],
) -> None:
    flaky = LosesFirstReply(store)
    call = await start_call(flaky, new_state("call-1", items=[chat_item(0)]))

    call.say(chat_item(1))
    call.say(chat_item(2))
    assert await call.writer.flush(2)
    call.say(chat_item(3))
    assert await call.writer.flush(2)

    assert flaky.lost == 1
    assert (await store.load("call-1")).items == [chat_item(i) for i in range(4)]
    await call.writer.aclose()


async def test_queue_overflow_warns_then_rewrites_the_full_state_with_nothing_lost(
    fault_redis: EmbeddedRedis,
    fault_store: RedisSessionStore,
    new_state: Callable[..., SessionState],
    chat_item: Callable[..., Item],
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = fault_store
    call = await start_call(store, new_state("call-1", items=[chat_item(0)]), queue_limit=5)
    call.say(chat_item(1), turns=1)
    assert await call.writer.flush(2)

    with caplog.at_level(logging.INFO, logger="frontdesk.state"):
        fault_redis.kill()
        for index in range(2, 20):
            call.say(chat_item(index), turns=index)
        assert call.writer.pending_items == 18
        fault_redis.restart()
        assert await call.writer.flush(5)

    overflow = [r for r in caplog.records if "queue_limit" in r.getMessage()]
    assert len(overflow) == 1
    assert overflow[0].levelno == logging.WARNING
    assert "call-1" in overflow[0].getMessage() and " 5 " in overflow[0].getMessage()
    assert any("rewrote" in r.getMessage() for r in caplog.records)
    loaded = await store.load("call-1")
    assert loaded.items == [chat_item(i) for i in range(20)]
    assert loaded.turns == 19
    # After the rewrite, incremental appends continue on top of it.
    call.say(chat_item(20))
    assert await call.writer.flush(2)
    assert (await store.load("call-1")).items == [chat_item(i) for i in range(21)]
    await call.writer.aclose()


async def test_lost_ownership_stops_the_writer_for_good(
    store: RedisSessionStore,
    new_state: Callable[..., SessionState],
    chat_item: Callable[..., Item],
    caplog: pytest.LogCaptureFixture,
) -> None:
    call = await start_call(store, new_state("call-1", items=[chat_item(0)]))
    newcomer = await store.claim("call-1", owner="worker-b")
    await store.append(newcomer, items=[chat_item(100)], meta_update={}, base_len=1)

    with caplog.at_level(logging.WARNING, logger="frontdesk.state"):
        call.say(chat_item(1), current_agent="sales")
        assert not await call.writer.flush(2)
    call.say(chat_item(2))  # ignored, never raises
    assert not await call.writer.flush(0.1)

    assert isinstance(call.writer.lost_ownership, StaleOwnerError)
    assert any("another worker owns session call-1 now" in r.getMessage() for r in caplog.records)
    loaded = await store.load("call-1")
    assert loaded.items == [chat_item(0), chat_item(100)]
    assert loaded.current_agent == "receptionist"
    await call.writer.aclose()


async def test_session_data_that_vanished_under_its_owner_is_rewritten_from_memory(
    store: RedisSessionStore,
    redis_client: Redis,
    new_state: Callable[..., SessionState],
    chat_item: Callable[..., Item],
    caplog: pytest.LogCaptureFixture,
) -> None:
    call = await start_call(store, new_state("call-1", items=[chat_item(0)]))
    meta, items, snap, _, _ = store.session_keys("call-1")
    await redis_client.delete(meta, items, snap)  # e.g. quarantined by a load elsewhere

    with caplog.at_level(logging.WARNING, logger="frontdesk.state"):
        call.say(chat_item(1), turns=1)
        assert await call.writer.flush(2)

    assert any("rewriting it in full" in r.getMessage() for r in caplog.records)
    loaded = await store.load("call-1")
    assert loaded.items == [chat_item(0), chat_item(1)]
    assert loaded.turns == 1
    await call.writer.aclose()


async def test_an_unwritable_item_stops_the_writer_without_raising_into_the_call(
    store: RedisSessionStore,
    new_state: Callable[..., SessionState],
    chat_item: Callable[..., Item],
) -> None:
    call = await start_call(store, new_state("call-1", items=[chat_item(0)]))

    call.say({"id": "bad", "payload": object()})

    assert not await call.writer.flush(2)
    assert call.writer.failure is not None
    assert call.writer.lost_ownership is None
    call.say(chat_item(2))  # still no exception
    await call.writer.aclose()


async def test_aclose_flushes_everything_submitted(
    store: RedisSessionStore,
    new_state: Callable[..., SessionState],
    chat_item: Callable[..., Item],
) -> None:
    call = await start_call(store, new_state("call-1"))
    for index in range(3):
        call.say(chat_item(index), turns=index + 1)

    await call.writer.aclose()

    loaded = await store.load("call-1")
    assert loaded.items == [chat_item(i) for i in range(3)]
    assert loaded.turns == 3
    call.say(chat_item(3))  # after close: ignored, no exception


class GatedRewrites:
    """Fault injection around the real store: appends fail while ``down``; rewrites wait."""

    def __init__(self, store: RedisSessionStore) -> None:
        self._store = store
        self.down = False
        self.rewrite_started = asyncio.Event()
        self.rewrite_gate = asyncio.Event()
        self.rewrites = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def append(self, lease: Lease, **kwargs: Any) -> int:
        if self.down:
            raise StateUnavailableError("redis is down (injected)")
        return await self._store.append(lease, **kwargs)

    async def rewrite(self, lease: Lease, state: SessionState) -> None:
        self.rewrites += 1
        self.rewrite_started.set()
        await self.rewrite_gate.wait()
        await self._store.rewrite(lease, state)


async def test_an_overflow_during_a_rewrite_triggers_another_rewrite(
    store: RedisSessionStore,
    new_state: Callable[..., SessionState],
    chat_item: Callable[..., Item],
) -> None:
    gated = GatedRewrites(store)
    call = await start_call(gated, new_state("call-1"), queue_limit=3)
    gated.down = True
    for index in range(5):
        call.say(chat_item(index))
    gated.down = False
    await asyncio.wait_for(gated.rewrite_started.wait(), 2)

    for index in range(5, 10):  # overflows again while the first rewrite is in flight
        call.say(chat_item(index))
    gated.rewrite_gate.set()

    assert await call.writer.flush(2)
    assert gated.rewrites == 2
    assert (await store.load("call-1")).items == [chat_item(i) for i in range(10)]
    await call.writer.aclose()


async def test_an_invalid_meta_update_is_dropped_at_submit_and_the_items_still_stored(
    store: RedisSessionStore,
    new_state: Callable[..., SessionState],
    chat_item: Callable[..., Item],
    caplog: pytest.LogCaptureFixture,
) -> None:
    call = await start_call(store, new_state("call-1"))

    with caplog.at_level(logging.ERROR, logger="frontdesk.state"):
        call.writer.submit([chat_item(0)], {"turns": "many"})
    call.writer.submit([chat_item(1)], {"turns": 2})

    assert await call.writer.flush(2)
    assert any("call-1" in r.getMessage() and "turns" in r.getMessage() for r in caplog.records)
    loaded = await store.load("call-1")
    assert loaded.items == [chat_item(0), chat_item(1)]
    assert loaded.turns == 2
    assert call.writer.failure is None
    await call.writer.aclose()


async def test_items_submitted_during_a_full_rewrite_count_as_pending_until_appended(
    store: RedisSessionStore,
    new_state: Callable[..., SessionState],
    chat_item: Callable[..., Item],
) -> None:
    gated = GatedRewrites(store)
    state = new_state("call-1")
    lease = await gated.claim("call-1", owner="worker-a")
    await gated.create(state, lease=lease, caller_identity=None)
    writer = SessionWriter(
        store=gated,
        lease=lease,
        base_len=0,
        full_state=lambda: state.model_copy(deep=True),  # what the call holds at that moment
        queue_limit=3,
        retry_initial=0.01,
        retry_max=0.05,
    )
    call = Call(state=state, lease=lease, writer=writer)
    gated.down = True
    for index in range(5):  # over the queue limit: the session will be rewritten in full
        call.say(chat_item(index))
    gated.down = False
    await asyncio.wait_for(gated.rewrite_started.wait(), 2)

    call.say(chat_item(5))  # while the rewrite of items 0-4 is in flight
    call.say(chat_item(6))
    gated.down = True  # the appends after the rewrite cannot land yet
    gated.rewrite_gate.set()
    for _ in range(200):
        if writer.acked_items == 5:
            break
        await asyncio.sleep(0.01)

    assert writer.acked_items == 5  # the rewrite landed
    assert writer.pending_items == 2  # items 5 and 6, submitted during it, are still owed
    call.say(chat_item(7))
    assert writer.pending_items == 3
    gated.down = False
    assert await writer.flush(2)
    assert writer.pending_items == 0
    assert (await store.load("call-1")).items == [chat_item(i) for i in range(8)]
    await writer.aclose()


@pytest.mark.parametrize(
    ("change", "warned"),
    [("one more, not submitted yet", False), ("one fewer than submitted", True), ("none", False)],
)
async def test_a_rewrite_warns_only_when_the_full_state_lacks_submitted_items(
    store: RedisSessionStore,
    redis_client: Redis,
    new_state: Callable[..., SessionState],
    chat_item: Callable[..., Item],
    caplog: pytest.LogCaptureFixture,
    change: str,
    warned: bool,
) -> None:
    call = await start_call(store, new_state("call-1", items=[chat_item(0)]))
    meta, items, snap, _, _ = store.session_keys("call-1")
    await redis_client.delete(meta, items, snap)
    call.say(chat_item(1), turns=1)
    if change == "one more, not submitted yet":
        call.state.items.append(chat_item(2))  # the caller spoke while the write was out
    elif change == "one fewer than submitted":
        call.state.items.pop()

    with caplog.at_level(logging.WARNING, logger="frontdesk.state"):
        assert await call.writer.flush(2)

    assert any("rewriting it in full" in r.getMessage() for r in caplog.records)  # it landed
    assert any("were submitted" in r.getMessage() for r in caplog.records) is warned
    assert (await store.load("call-1")).items == call.state.items
    await call.writer.aclose()
