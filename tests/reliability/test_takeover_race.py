"""Two workers claim the same session at once, 1,000 times: fencing decides, nothing leaks through.

Each worker is a store on its own Redis connection, as two worker processes would have. Two races
per round:

1. both claim a fresh session at the same instant, then both write with the lease they got;
2. the owner keeps appending while the other worker takes the session over (a caller who
   reconnected elsewhere), loads it and appends.

Every round: exactly one lease holds the session's current fencing token, and no write made with
the stale one reaches the stored session.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from frontdesk.errors import StaleOwnerError, StateError
from frontdesk.state import EmbeddedRedis, Lease, RedisSessionStore, SessionState, connect_redis
from frontdesk.workflows.definition import Workflow

from .support import make_store

pytestmark = pytest.mark.reliability

ROUNDS = 1000


def _item(owner: str, round_: int, index: int) -> dict[str, Any]:
    return {
        "id": f"{owner}-{round_}-{index}",
        "type": "message",
        "role": "user",
        "content": [f"{owner} wrote this in round {round_}"],
        "created_at": time.time(),
    }


def _state(session_id: str) -> SessionState:
    now = time.time()
    return SessionState(
        session_id=session_id,
        workflow="acme-broadband",
        workflow_hash="race",
        current_agent="receptionist",
        created_at=now,
        updated_at=now,
    )


async def _write(store: RedisSessionStore, lease: Lease, item: dict[str, Any], base: int) -> bool:
    """True if the append landed; False if refused for a stale token."""
    try:
        await store.append(lease, items=[item], meta_update={}, base_len=base)
    except StaleOwnerError:
        return False
    return True


async def _fence(client: Any, store: RedisSessionStore, session_id: str) -> int:
    return int(await client.get(store.session_keys(session_id)[3]))


async def test_concurrent_claims_leave_exactly_one_owner_and_no_stale_write_lands(
    start_redis: Any, workflow: Workflow
) -> None:
    server: EmbeddedRedis = start_redis(appendfsync="no")
    clients = [connect_redis(server.url) for _ in range(3)]
    a, b = (make_store(client, workflow) for client in clients[:2])
    inspector = make_store(clients[2], workflow)
    figures = {
        "single_owner": 0,
        "stale_writes_refused": 0,
        "stale_writes_stored": 0,
        "stale_renewals_accepted": 0,
        "owner_writes_refused": 0,
        "takeovers": 0,
        "appends_before_takeover": 0,
    }
    started = time.monotonic()
    try:
        for round_ in range(ROUNDS):
            # Race 1: two claims of a fresh session at the same instant.
            sid = f"race-{round_}"
            lease_a, lease_b = await asyncio.gather(
                a.claim(sid, owner="worker-a"), b.claim(sid, owner="worker-b")
            )
            current = await _fence(clients[2], inspector, sid)
            holders = [lease for lease in (lease_a, lease_b) if lease.fence == current]
            figures["single_owner"] += int(len(holders) == 1)
            winner = holders[0] if holders else lease_a
            loser = lease_b if winner is lease_a else lease_a
            winner_store = a if winner is lease_a else b
            loser_store = b if winner is lease_a else a
            await winner_store.create(_state(sid), lease=winner, caller_identity=None)
            landed = await asyncio.gather(
                _write(winner_store, winner, _item(winner.owner, round_, 0), 0),
                _write(loser_store, loser, _item(loser.owner, round_, 0), 0),
            )
            figures["owner_writes_refused"] += int(not landed[0])
            figures["stale_writes_refused"] += int(not landed[1])
            try:
                await loser_store.renew(loser)
                figures["stale_renewals_accepted"] += 1
            except StaleOwnerError:
                pass
            stored = await inspector.load(sid)
            figures["stale_writes_stored"] += sum(
                1 for item in stored.items if item["id"].startswith(loser.owner)
            )

            # Race 2: the owner keeps writing while the other worker takes over.
            sid = f"takeover-{round_}"
            old = await a.claim(sid, owner="worker-a")
            await a.create(_state(sid), lease=old, caller_identity=None)

            async def keep_writing(lease: Lease = old, round_: int = round_) -> list[str]:
                acknowledged: list[str] = []
                for index in range(50):
                    item = _item("worker-a", round_, index)
                    if not await _write(a, lease, item, len(acknowledged)):
                        break
                    acknowledged.append(item["id"])
                return acknowledged

            async def take_over(sid: str = sid, yields: int = round_ % 9) -> tuple[Lease, int]:
                for _ in range(yields):  # let the owner get 0 to a few writes in first
                    await asyncio.sleep(0)
                lease = await b.claim(sid, owner="worker-b")
                seen = await b.load(sid)
                return lease, len(seen.items)

            acknowledged, (new, base) = await asyncio.gather(keep_writing(), take_over())
            figures["takeovers"] += int(new.taken_from == "worker-a")
            figures["appends_before_takeover"] += len(acknowledged)
            # The new owner's view is final: its append on what it loaded must fit exactly.
            try:
                await b.append(
                    new, items=[_item("worker-b", round_, 0)], meta_update={}, base_len=base
                )
            except StateError as exc:  # a mismatch here means a stale write slipped in
                pytest.fail(f"round {round_}: new owner's append did not fit: {exc}")
            stored = await inspector.load(sid)
            stored_ids = [item["id"] for item in stored.items]
            figures["stale_writes_stored"] += len(
                [i for i in stored_ids if i.startswith("worker-a") and i not in acknowledged]
            )
            assert stored_ids == [*acknowledged, f"worker-b-{round_}-0"], f"round {round_}"
            assert await _fence(clients[2], inspector, sid) == new.fence > old.fence
            with pytest.raises(StaleOwnerError):
                await a.append(
                    old, items=[_item("worker-a", round_, 99)], meta_update={}, base_len=base + 1
                )
    finally:
        for client in clients:
            await client.aclose()
    print(
        f"\n[takeover race] rounds={ROUNDS} exactly_one_owner={figures['single_owner']} "
        f"stale_writes_refused={figures['stale_writes_refused']} "
        f"stale_writes_stored={figures['stale_writes_stored']} "
        f"stale_renewals_accepted={figures['stale_renewals_accepted']} "
        f"owner_writes_refused={figures['owner_writes_refused']} "
        f"takeovers_seen={figures['takeovers']} "
        f"owner_appends_before_takeover={figures['appends_before_takeover']} "
        f"seconds={time.monotonic() - started:.1f}"
    )
    assert figures["single_owner"] == ROUNDS
    assert figures["stale_writes_refused"] == ROUNDS
    assert figures["stale_writes_stored"] == 0
    assert figures["stale_renewals_accepted"] == 0
    assert figures["owner_writes_refused"] == 0
    assert figures["takeovers"] == ROUNDS
