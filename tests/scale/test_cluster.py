"""The store on a real Redis Cluster: 3 masters + 3 replicas, resharding and a master failure.

Every test runs real calls (``start_call`` + ``session.run`` on the offline brain) through
redis-py's ``RedisCluster`` against six ``redis-server --cluster-enabled yes`` processes.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

from bench.topology import LocalCluster
from frontdesk.state import connect_redis
from frontdesk.state.durability import ReplicaWait
from frontdesk.state.identity import namespaced_identity
from frontdesk.workflows.definition import Workflow
from frontdesk.workflows.runtime import start_call
from tests.state.test_redis_deployments import exercise_store

from .conftest import needs_redis_7
from .support import (
    PlayedCall,
    call_lines,
    lost_and_duplicated,
    persistence_on,
    play_call,
    stored_turns,
)

pytestmark = needs_redis_7


ASK_WINDOW = 1.0
"""Seconds a resharded slot stays half-moved (source ASKs, target imports): longer than
redis-py's own budget for following TRYAGAIN/ASK (16 redirects, a few 50 ms sleeps), as the move
of a slot with many keys, or a loaded machine, makes it."""


def _masters(cluster: LocalCluster) -> set[int]:
    return {node.port for node in cluster.topology() if node.role == "master"}


def _redirects(cluster: LocalCluster, before: dict[str, int]) -> dict[str, int]:
    """MOVED, ASK and TRYAGAIN replies the servers sent since ``before`` (``INFO errorstats``)."""
    after = cluster.error_counts()
    return {kind: after.get(kind, 0) - before.get(kind, 0) for kind in ("MOVED", "ASK", "TRYAGAIN")}


async def test_every_key_a_session_writes_lives_in_one_slot_and_sessions_spread_over_shards(
    cluster: LocalCluster, workflow: Workflow
) -> None:
    client = connect_redis(cluster.seed_url, mode="cluster")
    topology = cluster.topology()
    masters = [n for n in topology if n.role == "master"]
    replicas = [n for n in topology if n.role == "slave"]
    assert len(masters) == 3 and len(replicas) == 3
    assert {r.master_id for r in replicas} == {m.node_id for m in masters}
    assert sum(high - low + 1 for m in masters for low, high in m.slots) == 16384
    persistence = persistence_on(client, workflow)
    store: Any = persistence.store
    calls = [PlayedCall(caller=f"+1555300{i:04d}", lines=call_lines(2)) for i in range(12)]
    before = cluster.error_counts()
    try:
        # A dozen concurrent first calls on a fresh client (NOSCRIPT on every master, SCRIPT
        # LOAD everywhere): every command goes straight to its slot's master (see
        # frontdesk.state.cluster: redis-py alone sends them to random masters, and the MOVED
        # storm makes it close connections other calls are writing on).
        await asyncio.gather(*(play_call(workflow, persistence, c) for c in calls))
        assert _redirects(cluster, before)["MOVED"] == 0
        owners: Counter[int] = Counter()
        for played in calls:
            names = [
                *store.session_keys(played.session_id),
                *store.quarantine_keys(played.session_id),
            ]
            slots = {cluster.keyslot(name) for name in names}
            assert len(slots) == 1, f"{played.session_id}: keys in slots {slots}"
            slot = slots.pop()
            # The keys really written (not only their names) are all on the slot's master.
            master = cluster.master_of_slot(slot)
            with cluster.client(cluster.node_by_port(master.port)) as node:
                written = [
                    bytes(key).decode()
                    for key in node.scan_iter(match=f"*{{{played.session_id}}}*", count=1000)
                ]
            assert {cluster.keyslot(key) for key in written} == {slot}
            assert {name.rsplit(":", 1)[1] for name in written} >= {"meta", "items", "fence"}
            owners[master.port] += 1
            assert played.acked == played.lines
            assert await stored_turns(store, played.session_id) == played.lines
        assert len(owners) >= 2, f"12 sessions all on one shard: {owners}"
        assert cluster.error_counts().get("CROSSSLOT", 0) == 0
    finally:
        await client.aclose()
    # The whole store contract (fencing, quarantine, caller index repair, forget) on 3 shards.
    fresh = connect_redis(cluster.seed_url, mode="cluster")
    try:
        await exercise_store(fresh)
    finally:
        await fresh.aclose()


async def test_the_caller_index_lives_in_other_slots_than_the_sessions_and_still_resumes(
    cluster: LocalCluster, workflow: Workflow
) -> None:
    client = connect_redis(cluster.seed_url, mode="cluster")
    persistence = persistence_on(client, workflow)
    store: Any = persistence.store
    calls = [PlayedCall(caller=f"+1555400{i:04d}", lines=call_lines(0)[:3]) for i in range(8)]
    before = cluster.error_counts()
    try:
        # Concurrent first calls of a fresh client: caller lookups, claims and indexing land on
        # their slots' masters at once (no MOVED), and no command meets a closed connection.
        await asyncio.gather(*(play_call(workflow, persistence, c) for c in calls))
        assert _redirects(cluster, before)["MOVED"] == 0
        other_shard = 0
        for played in calls:
            assert played.acked == played.lines and played.unacked == []
            identity = namespaced_identity("sip", played.caller)  # how start_call indexes it
            index_slot = cluster.keyslot(store.caller_key(identity))
            session_slot = cluster.keyslot(store.session_keys(played.session_id)[0])
            if cluster.master_of_slot(index_slot).port != cluster.master_of_slot(session_slot).port:
                other_shard += 1
            assert await store.find_by_caller(identity) == played.session_id
            again = await start_call(
                workflow=workflow, caller_identity=played.caller, persistence=persistence
            )
            try:
                assert again.resumed and again.session_id == played.session_id
                assert again.session.current_agent.id == "support"
                assert again.userdata.fields == {"account_number": "AC-48213"}
            finally:
                await again.aclose()
        assert other_shard >= 1, "every caller index happened to share its session's shard"
        first = namespaced_identity("sip", calls[0].caller)
        assert await store.forget_caller(first) == 1
        assert await store.find_by_caller(first) is None
        assert len(await store.list_sessions()) == len(calls) - 1  # SCAN covers every master
    finally:
        await client.aclose()


async def test_resharding_the_slots_of_live_calls_loses_no_turn_and_follows_moved_and_ask(
    cluster: LocalCluster, workflow: Workflow
) -> None:
    client = connect_redis(cluster.seed_url, mode="cluster")
    persistence = persistence_on(client, workflow)
    store: Any = persistence.store
    stop = asyncio.Event()
    calls = [PlayedCall(caller=f"+1555500{i:04d}", lines=call_lines(0)) for i in range(8)]
    before = cluster.error_counts()
    tasks = [
        asyncio.create_task(play_call(workflow, persistence, c, pause=0.02, until=stop))
        for c in calls
    ]
    moved_keys = 0
    moves: list[tuple[int, int, int]] = []
    try:
        while not all(len(c.acked) >= 2 for c in calls):
            await asyncio.sleep(0.02)
        masters = sorted(_masters(cluster))
        acked_before_resharding = sum(len(c.acked) for c in calls)
        slots = sorted({cluster.keyslot(store.session_keys(c.session_id)[0]) for c in calls})
        for slot in slots:
            source = cluster.master_of_slot(slot).port
            target = masters[(masters.index(source) + 1) % len(masters)]
            moved_keys += await asyncio.to_thread(
                cluster.migrate_slot, slot, target, ask_window=ASK_WINDOW
            )
            moves.append((slot, source, target))
            assert cluster.master_of_slot(slot).port == target
        # Calls kept being acknowledged while their slots moved.
        assert sum(len(c.acked) for c in calls) > acked_before_resharding
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
    try:
        redirects = _redirects(cluster, before)
        lost = duplicated = 0
        for played in calls:
            stored = await stored_turns(store, played.session_id)
            missing, twice = lost_and_duplicated(played, stored)
            lost += missing
            duplicated += twice
            assert played.unacked == [], played.unacked
            assert stored == played.lines
            assert played.final_agent == "sales"
        print(
            f"\n[cluster reshard] live calls={len(calls)} slots moved={len(moves)} "
            f"keys moved={moved_keys} turns={sum(len(c.lines) for c in calls)} "
            f"MOVED={redirects['MOVED']} ASK={redirects['ASK']} TRYAGAIN={redirects['TRYAGAIN']} "
            f"lost={lost} duplicated={duplicated}"
        )
        assert moved_keys >= 3 * len(calls)
        assert redirects["MOVED"] > 0, "no client request was ever redirected by MOVED"
        assert redirects["ASK"] > 0, "no client request was ever redirected by ASK"
        # The store's scripts name keys that do not exist yet (snap): an importing node answers
        # them TRYAGAIN until the slot has moved, longer than redis-py follows it.
        assert redirects["TRYAGAIN"] > 0, "no script ever met a half-moved slot"
        assert lost == 0 and duplicated == 0
    finally:
        await client.aclose()


async def test_a_master_killed_mid_call_fails_over_to_its_replica_and_every_call_goes_on(
    cluster: LocalCluster, workflow: Workflow
) -> None:
    # durability = "replica": an acknowledged turn is on the replica that gets promoted, so
    # the test can demand that no acknowledged turn is lost (under "leader" a turn the master
    # acknowledged in its last instant may never have reached the replica).
    client = connect_redis(cluster.seed_url, mode="cluster")
    persistence = persistence_on(client, workflow, durability="replica")
    store: Any = persistence.store
    acknowledgement = store.acknowledgement
    assert isinstance(acknowledgement, ReplicaWait)
    stop = asyncio.Event()
    calls = [PlayedCall(caller=f"+1555600{i:04d}", lines=call_lines(0)) for i in range(9)]
    tasks = [
        asyncio.create_task(play_call(workflow, persistence, c, pause=0.02, until=stop))
        for c in calls
    ]
    try:
        while not all(len(c.acked) >= 2 for c in calls):
            await asyncio.sleep(0.02)
        by_master: Counter[int] = Counter(
            cluster.master_of_slot(cluster.keyslot(store.session_keys(c.session_id)[0])).port
            for c in calls
        )
        victim_port, on_victim = by_master.most_common(1)[0]
        victim = next(n for n in cluster.topology() if n.port == victim_port)
        replica = next(n for n in cluster.topology() if n.master_id == victim.node_id)
        acked_at_kill = sum(len(c.acked) for c in calls)
        killed_at = time.monotonic()
        cluster.node_by_port(victim_port).kill()
        await asyncio.to_thread(cluster.wait_promoted, replica.port, 30.0)
        promoted_after = time.monotonic() - killed_at
        assert replica.port in _masters(cluster)
        # The promoted master has no replica yet, so no write can be acknowledged "on a
        # replica": turns are kept and retried. The old master comes back (same nodes.conf),
        # rejoins as the new master's replica, and the kept turns are acknowledged.
        await asyncio.to_thread(cluster.node_by_port(victim_port).restart)
        # The restarted node believes it is still the master until the cluster tells it
        # otherwise: wait until every node, itself included, agrees it is the new master's
        # replica (and the link is up) before reading the topology.
        await asyncio.to_thread(cluster.wait_rejoined_as_replica, victim_port, replica.port, 60.0)
        await asyncio.to_thread(cluster.wait_replicas_synced, 60.0)
        rejoined_after = time.monotonic() - killed_at
        for node in cluster.live_nodes():
            masters_seen = {n.port for n in cluster.view_of(node) if n.role == "master"}
            assert replica.port in masters_seen and victim_port not in masters_seen
        # The sessions that lived on the killed master are served by its promoted replica.
        moved_over = [
            c
            for c in calls
            if cluster.master_of_slot(cluster.keyslot(store.session_keys(c.session_id)[0])).port
            == replica.port
        ]
        assert len(moved_over) == on_victim
        # Calls carry on after the promotion: more turns acknowledged by the new master.
        target = sum(len(c.acked) for c in calls) + 2 * len(calls)
        while sum(len(c.acked) for c in calls) < target:
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 90)
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
    try:
        lost = duplicated = 0
        for played in calls:
            stored = await stored_turns(store, played.session_id)
            missing, twice = lost_and_duplicated(played, stored)
            lost += missing
            duplicated += twice
            assert played.unacked == [], played.unacked
            assert stored == played.lines
        print(
            f"\n[cluster failover] calls={len(calls)} on the killed master={on_victim} "
            f"turns acknowledged before the kill={acked_at_kill} "
            f"replica promoted and cluster ok after {promoted_after:.1f}s, old master back as "
            f"its replica after {rejoined_after:.1f}s "
            f"turns in all={sum(len(c.lines) for c in calls)} lost={lost} duplicated={duplicated} "
            f"WAITs={acknowledgement.waits} short of a replica={acknowledgement.shortfalls}"
        )
        assert on_victim >= 1
        # durability = "replica" worked on the cluster: every write was followed by a WAIT on
        # its slot's master.
        assert acknowledgement.waits >= sum(len(c.acked) for c in calls)
        assert lost == 0 and duplicated == 0
    finally:
        await client.aclose()
