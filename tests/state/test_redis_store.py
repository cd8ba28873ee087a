"""RedisSessionStore against a real redis-server: layout, fencing, idempotence, TTLs, privacy."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from livekit.agents.llm import (
    AgentConfigUpdate,
    AgentHandoff,
    ChatContext,
    FunctionCall,
    FunctionCallOutput,
)
from redis.asyncio import Redis

from frontdesk.errors import SessionNotFoundError, StaleOwnerError, StateError
from frontdesk.state import (
    EmbeddedRedis,
    HandoffEntry,
    RedisSessionStore,
    SessionState,
    caller_hash,
    connect_redis,
)

Item = dict[str, Any]


def livekit_history() -> list[Item]:
    """Every kind of chat item LiveKit 1.8.9 records, serialised the way Frontdesk stores them."""
    ctx = ChatContext()
    ctx.add_message(role="system", content="You are the receptionist.")
    ctx.add_message(role="assistant", content="Hello, how can I help?")
    ctx.add_message(role="user", content="My internet is down. Account 12345678.")
    ctx.insert(
        [
            FunctionCall(
                call_id="call_1",
                name="record_account_number",
                arguments=json.dumps({"value": "12345678"}),
            ),
            FunctionCallOutput(
                call_id="call_1", name="record_account_number", output="saved", is_error=False
            ),
            FunctionCall(call_id="call_2", name="transfer_to_support", arguments="{}"),
            FunctionCallOutput(
                call_id="call_2", name="transfer_to_support", output="", is_error=True
            ),
            AgentHandoff(old_agent_id="receptionist", new_agent_id="support"),
            AgentConfigUpdate(instructions="You are support.", tools_added=["run_line_test"]),
        ]
    )
    ctx.add_message(role="assistant", content=['Let me check the line. Ünïcødé ✓ "quoted"'])
    items: list[Item] = ctx.to_dict(exclude_timestamp=False)["items"]
    return items


async def test_every_livekit_item_kind_round_trips_through_create_append_and_load(
    store: RedisSessionStore, new_state: Callable[..., SessionState]
) -> None:
    history = livekit_history()
    kinds = {item["type"] for item in history}
    assert kinds >= {
        "message",
        "function_call",
        "function_call_output",
        "agent_handoff",
        "agent_config_update",
    }
    lease = await store.claim("call-1", owner="worker-a")
    await store.create(
        new_state("call-1", items=history[:3]), lease=lease, caller_identity="+15551230001"
    )
    count = 3
    for item in history[3:]:
        count = await store.append(lease, items=[item], meta_update={}, base_len=count)

    loaded = await store.load("call-1")

    assert loaded.items == history
    restored = ChatContext.from_dict({"items": loaded.items})
    assert restored.to_dict(exclude_timestamp=False)["items"] == history
    assert [type(item).__name__ for item in restored.items] == [
        type(item).__name__ for item in ChatContext.from_dict({"items": history}).items
    ]


async def test_meta_round_trips_with_handoff_trail_and_caller_data(
    store: RedisSessionStore, new_state: Callable[..., SessionState]
) -> None:
    trail = [
        HandoffEntry(from_agent=None, to_agent="receptionist", reason="start", at=1.5),
        HandoffEntry(from_agent="receptionist", to_agent="support", reason="outage", at=2.5),
    ]
    state = new_state(
        "call-1",
        caller_data={"account_number": "12345678", "name": "Zoë"},
        greeted=["receptionist"],
        handoff_trail=trail,
        turns=4,
        current_agent="support",
    )
    lease = await store.claim("call-1", owner="worker-a")
    await store.create(state, lease=lease, caller_identity=None)

    assert await store.load("call-1") == state


async def test_incremental_meta_update_changes_only_the_named_fields(
    store: RedisSessionStore, new_state: Callable[..., SessionState]
) -> None:
    lease = await store.claim("call-1", owner="worker-a")
    state = new_state("call-1", caller_data={"name": "Ann"})
    await store.create(state, lease=lease, caller_identity=None)
    entry = HandoffEntry(from_agent="receptionist", to_agent="billing", reason="bill", at=3.0)

    await store.append(
        lease,
        items=[],
        meta_update={"current_agent": "billing", "handoff_trail": [entry], "turns": 2},
        base_len=0,
    )

    loaded = await store.load("call-1")
    assert loaded.current_agent == "billing"
    assert loaded.handoff_trail == [entry]
    assert loaded.turns == 2
    assert loaded.caller_data == {"name": "Ann"}
    assert loaded.updated_at >= state.updated_at


async def test_invalid_meta_update_is_refused_before_reaching_redis(
    store: RedisSessionStore, new_state: Callable[..., SessionState]
) -> None:
    lease = await store.claim("call-1", owner="worker-a")
    await store.create(new_state("call-1"), lease=lease, caller_identity=None)

    with pytest.raises(StateError, match=r"call-1.*turns"):
        await store.append(lease, items=[], meta_update={"turns": "three"}, base_len=0)
    with pytest.raises(StateError, match="session_id"):
        await store.append(lease, items=[], meta_update={"session_id": "other"}, base_len=0)

    assert (await store.load("call-1")).turns == 0


async def test_load_reassembles_snapshot_and_tail_in_order_across_compactions(
    store: RedisSessionStore,
    redis_client: Redis,
    new_state: Callable[..., SessionState],
    chat_item: Callable[..., Item],
) -> None:
    lease = await store.claim("call-1", owner="worker-a")
    await store.create(new_state("call-1", items=[chat_item(0)]), lease=lease, caller_identity=None)
    count = 1
    for index in range(1, 57):
        count = await store.append(lease, items=[chat_item(index)], meta_update={}, base_len=count)

    meta_key, items_key, snap_key, _, _ = store.session_keys("call-1")
    # snapshot_every=20: the list never holds 20 items; the rest lives in one JSON array.
    assert await redis_client.llen(items_key) < 20
    assert (
        int(await redis_client.hget(meta_key, "_snap_n") or -1) + await redis_client.llen(items_key)
        == 57
    )
    assert await redis_client.exists(snap_key)
    loaded = await store.load("call-1")
    assert loaded.items == [chat_item(i) for i in range(57)]


async def test_append_is_exactly_one_evalsha_round_trip(
    store: RedisSessionStore,
    redis_server: EmbeddedRedis,
    new_state: Callable[..., SessionState],
    chat_item: Callable[..., Item],
) -> None:
    lease = await store.claim("call-1", owner="worker-a")
    await store.create(new_state("call-1"), lease=lease, caller_identity=None)
    await store.append(lease, items=[chat_item(0)], meta_update={}, base_len=0)  # loads script
    watcher = connect_redis(redis_server.url)
    marker = connect_redis(redis_server.url)
    await marker.ping()  # its connection handshake happens before MONITOR starts
    seen: list[tuple[str, str]] = []
    try:
        async with watcher.monitor() as monitor:
            await store.append(
                lease,
                items=[chat_item(1), chat_item(2)],
                meta_update={"turns": 1, "current_agent": "support"},
                base_len=1,
            )
            await marker.echo("end-of-test-marker")
            while True:
                command = await asyncio.wait_for(monitor.next_command(), 5)
                if "end-of-test-marker" in command["command"]:
                    break
                seen.append((command["client_type"], command["command"].split(" ")[0].upper()))
    finally:
        await watcher.aclose()
        await marker.aclose()

    sent_by_client = [name for source, name in seen if source != "lua"]
    assert sent_by_client == ["EVALSHA"]
    run_inside_script = {name for source, name in seen if source == "lua"}
    assert {"RPUSH", "HSET", "PEXPIRE"} <= run_inside_script


async def _input_bytes(client: Redis) -> int:
    info = await client.info("stats")
    return int(info["total_net_input_bytes"])


async def test_bytes_sent_per_append_do_not_grow_with_history_length(
    store: RedisSessionStore,
    redis_server: EmbeddedRedis,
    new_state: Callable[..., SessionState],
    chat_item: Callable[..., Item],
) -> None:
    observer = connect_redis(redis_server.url)
    lease = await store.claim("call-1", owner="worker-a")
    await store.create(new_state("call-1"), lease=lease, caller_identity=None)
    item_size = len(json.dumps(chat_item(0, size=1024)))

    async def cost_of_append_at(count: int) -> int:
        before = await _input_bytes(observer)
        await store.append(
            lease,
            items=[chat_item(count, size=1024)],
            meta_update={"turns": 7, "updated_at": 1_800_000_000.0},
            base_len=count,
        )
        return await _input_bytes(observer) - before

    try:
        count = 0
        await cost_of_append_at(count)  # script load happens here
        count += 1
        cost_small = await cost_of_append_at(count)
        count += 1
        await store.append(
            lease,
            items=[chat_item(1000 + i, size=1024) for i in range(995)],
            meta_update={},
            base_len=count,
        )
        count += 995
        cost_large = await cost_of_append_at(count)
    finally:
        await observer.aclose()

    assert count == 997
    assert abs(cost_large - cost_small) <= 8, (cost_small, cost_large)
    assert cost_large < 2 * item_size + 600


async def test_stale_owner_write_is_rejected_and_leaves_state_untouched(
    store: RedisSessionStore, new_state: Callable[..., SessionState], chat_item: Callable[..., Item]
) -> None:
    old = await store.claim("call-1", owner="worker-a")
    await store.create(new_state("call-1", items=[chat_item(0)]), lease=old, caller_identity=None)
    new = await store.claim("call-1", owner="worker-b")
    await store.append(new, items=[chat_item(1)], meta_update={"turns": 1}, base_len=1)

    with pytest.raises(StaleOwnerError, match="call-1"):
        await store.append(
            old,
            items=[{"id": "from-stale-worker", "type": "message"}],
            meta_update={"current_agent": "hijacked", "turns": 99},
            base_len=2,
        )
    with pytest.raises(StaleOwnerError):
        await store.rewrite(old, new_state("call-1", current_agent="hijacked"))
    with pytest.raises(StaleOwnerError):
        await store.mark_ended(old)
    with pytest.raises(StaleOwnerError):
        await store.renew(old)

    loaded = await store.load("call-1")
    assert loaded.items == [chat_item(0), chat_item(1)]
    assert loaded.current_agent == "receptionist"
    assert loaded.turns == 1
    assert not loaded.ended


async def test_every_claim_raises_the_fencing_token_and_names_the_previous_owner(
    store: RedisSessionStore,
) -> None:
    first = await store.claim("call-1", owner="worker-a")
    again = await store.claim("call-1", owner="worker-a")
    takeover = await store.claim("call-1", owner="worker-b")

    assert first.fence < again.fence < takeover.fence
    assert first.taken_from is None
    assert again.taken_from is None
    assert takeover.taken_from == "worker-a"
    await store.renew(takeover)


async def test_tokens_of_a_deleted_session_are_never_reused(
    store: RedisSessionStore, new_state: Callable[..., SessionState]
) -> None:
    before = await store.claim("call-1", owner="worker-a")
    await store.create(new_state("call-1"), lease=before, caller_identity=None)
    await store.delete("call-1")
    after = await store.claim("call-1", owner="worker-b")
    await store.create(new_state("call-1"), lease=after, caller_identity=None)

    assert after.fence > before.fence
    with pytest.raises(StaleOwnerError):
        await store.append(before, items=[], meta_update={"turns": 5}, base_len=0)


async def test_release_ends_the_lease_only_for_its_holder(
    store: RedisSessionStore, redis_client: Redis
) -> None:
    lease_key = store.session_keys("call-1")[4]
    old = await store.claim("call-1", owner="worker-a")
    new = await store.claim("call-1", owner="worker-b")

    await store.release(old)
    assert await redis_client.get(lease_key) == f"{new.fence}:worker-b".encode()
    await store.release(new)
    assert not await redis_client.exists(lease_key)


async def test_retried_append_whose_reply_was_lost_is_not_applied_twice(
    store: RedisSessionStore, new_state: Callable[..., SessionState], chat_item: Callable[..., Item]
) -> None:
    lease = await store.claim("call-1", owner="worker-a")
    await store.create(new_state("call-1", items=[chat_item(0)]), lease=lease, caller_identity=None)
    batch = [chat_item(1), chat_item(2)]

    first = await store.append(lease, items=batch, meta_update={"turns": 1}, base_len=1)
    retry = await store.append(lease, items=batch, meta_update={"turns": 1}, base_len=1)

    assert first == retry == 3
    assert (await store.load("call-1")).items == [chat_item(0), chat_item(1), chat_item(2)]


async def test_append_on_an_unexpected_item_count_raises_naming_the_session(
    store: RedisSessionStore, new_state: Callable[..., SessionState], chat_item: Callable[..., Item]
) -> None:
    lease = await store.claim("call-1", owner="worker-a")
    await store.create(new_state("call-1", items=[chat_item(0)]), lease=lease, caller_identity=None)

    with pytest.raises(StateError, match=r"call-1.*holds 1 items") as caught:
        await store.append(lease, items=[chat_item(5)], meta_update={}, base_len=4)
    assert not isinstance(caught.value, StaleOwnerError)
    assert (await store.load("call-1")).items == [chat_item(0)]


async def test_rewrite_replaces_the_whole_session(
    store: RedisSessionStore, new_state: Callable[..., SessionState], chat_item: Callable[..., Item]
) -> None:
    lease = await store.claim("call-1", owner="worker-a")
    await store.create(
        new_state("call-1", items=[chat_item(i) for i in range(45)]),
        lease=lease,
        caller_identity=None,
    )
    await store.append(lease, items=[chat_item(99)], meta_update={}, base_len=45)
    replacement = new_state("call-1", items=[chat_item(i) for i in range(3)], turns=9)

    await store.rewrite(lease, replacement)
    count = await store.append(lease, items=[chat_item(3)], meta_update={}, base_len=3)

    assert count == 4
    loaded = await store.load("call-1")
    assert loaded.items == [chat_item(i) for i in range(4)]
    assert loaded.turns == 9


async def test_load_of_an_unknown_session_raises_session_not_found(
    store: RedisSessionStore,
) -> None:
    with pytest.raises(SessionNotFoundError, match="nope"):
        await store.load("nope")


@pytest.mark.parametrize(
    "session_id", ["", "has space", "a{b}", "x*", "line\nbreak", "trailing\n", "z" * 201]
)
async def test_session_ids_that_would_break_the_key_layout_are_refused(
    store: RedisSessionStore, session_id: str
) -> None:
    with pytest.raises(StateError, match="invalid session id"):
        await store.claim(session_id, owner="worker-a")


async def test_a_client_that_decodes_responses_is_refused(redis_server: EmbeddedRedis) -> None:
    client = Redis.from_url(redis_server.url, decode_responses=True)
    try:
        with pytest.raises(StateError, match="bytes"):
            RedisSessionStore(client, caller_secret=b"s" * 32)
    finally:
        await client.aclose()


async def test_mark_ended_flags_the_session(
    store: RedisSessionStore, new_state: Callable[..., SessionState]
) -> None:
    lease = await store.claim("call-1", owner="worker-a")
    await store.create(new_state("call-1"), lease=lease, caller_identity=None)

    await store.mark_ended(lease)

    assert (await store.load("call-1")).ended


async def test_every_key_gets_the_ttl_and_every_write_refreshes_it(
    redis_client: Redis,
    make_store: Callable[..., RedisSessionStore],
    new_state: Callable[..., SessionState],
    chat_item: Callable[..., Item],
) -> None:
    store = make_store(redis_client, ttl=100.0, lease_ttl=7.0)
    lease = await store.claim("call-1", owner="worker-a")
    await store.create(
        new_state("call-1", items=[chat_item(0)]), lease=lease, caller_identity="+15551230001"
    )
    await store.append(lease, items=[chat_item(1)], meta_update={}, base_len=1)
    meta, items, snap, fence, lease_key = store.session_keys("call-1")
    index = store.caller_key("+15551230001")

    for key in (meta, items, snap, fence, index):
        assert 95_000 < await redis_client.pttl(key) <= 100_000, key
    assert 5_000 < await redis_client.pttl(lease_key) <= 7_000

    for key in (meta, items, snap, fence, lease_key):
        await redis_client.pexpire(key, 2_000)
    await store.append(lease, items=[chat_item(2)], meta_update={"turns": 1}, base_len=2)

    for key in (meta, items, snap, fence):
        assert await redis_client.pttl(key) > 95_000, key
    assert await redis_client.pttl(lease_key) > 5_000


async def _dump_everything(client: Redis) -> list[bytes]:
    """Every key and every value in the server, as raw bytes."""
    seen: list[Any] = []
    async for key in client.scan_iter(count=1000):
        seen.append(key)
        kind = await client.type(key)
        if kind == b"string":
            seen.append(await client.get(key))
        elif kind == b"hash":
            for field, value in (await client.hgetall(key)).items():
                seen += [field, value]
        elif kind == b"list":
            seen += await client.lrange(key, 0, -1)
        elif kind == b"zset":
            seen += await client.zrange(key, 0, -1)
        else:
            raise AssertionError(f"unexpected key type {kind!r} for {key!r}")
    assert all(isinstance(blob, bytes) for blob in seen)
    return seen


async def test_no_raw_caller_identity_is_stored_in_any_key_or_value(
    store: RedisSessionStore,
    redis_client: Redis,
    new_state: Callable[..., SessionState],
    chat_item: Callable[..., Item],
) -> None:
    identities = ["+15551230001", "sip_+15551230002", "alice@example.com"]
    for number, identity in enumerate(identities):
        session_id = f"call-{number}"
        lease = await store.claim(session_id, owner="worker-a")
        await store.create(
            new_state(session_id, items=[chat_item(0)]), lease=lease, caller_identity=identity
        )
        await store.append(lease, items=[chat_item(1)], meta_update={"turns": 1}, base_len=1)

    everything = await _dump_everything(redis_client)

    assert len(everything) > 20
    forbidden = [*identities, "15551230001", "15551230002", "alice"]
    for blob in everything:
        for needle in forbidden:
            assert needle.encode() not in blob, (needle, blob[:200])
    expected_index = (
        f"test:caller:{caller_hash(identities[0], b'test-caller-secret-0123456789abcdef')}"
    )
    assert expected_index.encode() in everything


async def test_find_by_caller_returns_the_latest_live_session_and_prunes_dead_entries(
    store: RedisSessionStore, redis_client: Redis, new_state: Callable[..., SessionState]
) -> None:
    caller = "+15551230001"
    for session_id, created in (("old", 100.0), ("newer", 200.0), ("newest", 300.0)):
        lease = await store.claim(session_id, owner="worker-a")
        await store.create(
            new_state(session_id, created_at=created), lease=lease, caller_identity=caller
        )
    other = await store.claim("other", owner="worker-a")
    await store.create(new_state("other"), lease=other, caller_identity="+15559999999")

    assert await store.find_by_caller(caller) == "newest"

    await redis_client.delete(store.session_keys("newest")[0])  # as if it had expired
    assert await store.find_by_caller(caller) == "newer"
    assert await redis_client.zrange(store.caller_key(caller), 0, -1) == [b"old", b"newer"]
    assert await store.find_by_caller("+15550000000") is None


async def test_list_sessions_summarises_every_session_newest_first(
    store: RedisSessionStore, new_state: Callable[..., SessionState], chat_item: Callable[..., Item]
) -> None:
    for number in range(3):
        session_id = f"call-{number}"
        lease = await store.claim(session_id, owner="worker-a")
        await store.create(
            new_state(session_id, items=[chat_item(i) for i in range(number * 30)]),
            lease=lease,
            caller_identity=f"+1555000000{number}",
        )
        await store.append(
            lease,
            items=[chat_item(999)],
            meta_update={"turns": number, "updated_at": 1000.0 + number},
            base_len=number * 30,
        )

    summaries = await store.list_sessions()

    assert [s.session_id for s in summaries] == ["call-2", "call-1", "call-0"]
    assert [s.item_count for s in summaries] == [61, 31, 1]
    assert [s.turns for s in summaries] == [2, 1, 0]
    assert summaries[0].caller_hash == caller_hash(
        "+15550000002", b"test-caller-secret-0123456789abcdef"
    )
    assert summaries[0].agent == "receptionist"


async def test_delete_removes_every_key_of_the_session_and_its_index_entry(
    store: RedisSessionStore,
    redis_client: Redis,
    new_state: Callable[..., SessionState],
    chat_item: Callable[..., Item],
) -> None:
    for session_id in ("gone", "kept"):
        lease = await store.claim(session_id, owner="worker-a")
        await store.create(
            new_state(session_id, items=[chat_item(0)]), lease=lease, caller_identity="+15551230001"
        )
        await store.append(lease, items=[chat_item(1)], meta_update={}, base_len=1)

    await store.delete("gone")

    keys = [key async for key in redis_client.scan_iter(count=1000)]
    assert not [key for key in keys if b"{gone}" in key]
    assert await redis_client.zrange(store.caller_key("+15551230001"), 0, -1) == [b"kept"]
    assert len((await store.load("kept")).items) == 2


async def test_forget_caller_removes_every_key_of_that_caller_only(
    store: RedisSessionStore,
    redis_client: Redis,
    new_state: Callable[..., SessionState],
    chat_item: Callable[..., Item],
) -> None:
    caller, bystander = "+15551230001", "+15559876543"
    for session_id, identity in (
        ("mine-1", caller),
        ("mine-2", caller),
        ("unindexed", caller),
        ("theirs", bystander),
    ):
        lease = await store.claim(session_id, owner="worker-a")
        await store.create(
            new_state(session_id, items=[chat_item(0)]), lease=lease, caller_identity=identity
        )
        await store.append(lease, items=[chat_item(1)], meta_update={}, base_len=1)
    # An index entry that expired or was never written must not hide a session.
    await redis_client.zrem(store.caller_key(caller), "unindexed")
    keys_before = [key async for key in redis_client.scan_iter(count=1000)]
    theirs_before = sorted(key for key in keys_before if b"{theirs}" in key)

    deleted = await store.forget_caller(caller)

    assert deleted == 3
    keys_after = [key async for key in redis_client.scan_iter(count=1000)]
    for session_id in ("mine-1", "mine-2", "unindexed"):
        assert not [key for key in keys_after if f"{{{session_id}}}".encode() in key]
    assert store.caller_key(caller).encode() not in keys_after
    assert sorted(key for key in keys_after if b"{theirs}" in key) == theirs_before
    assert store.caller_key(bystander).encode() in keys_after
    assert await store.find_by_caller(caller) is None
    assert await store.find_by_caller(bystander) == "theirs"


async def test_writes_of_a_chat_item_that_is_not_json_fail_clearly(
    store: RedisSessionStore, new_state: Callable[..., SessionState]
) -> None:
    lease = await store.claim("call-1", owner="worker-a")
    await store.create(new_state("call-1"), lease=lease, caller_identity=None)

    with pytest.raises(StateError, match=r"call-1.*JSON"):
        await store.append(lease, items=[{"bad": object()}], meta_update={}, base_len=0)
