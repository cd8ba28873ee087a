"""Several worker processes share one Redis: callers hop between them, a worker dies mid-call.

A small run of :func:`bench.scale.simulate` (``python -m bench --only scale`` runs it bigger):
real worker processes, each serving many concurrent calls on the offline brain, on a standalone
server and on a 3-master Redis Cluster. Every reconnect must resume on the right agent, and no
acknowledged turn may be lost or stored twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.scale import RedisTarget, SimSettings, simulate, summary_line
from bench.topology import LocalCluster
from frontdesk.state import EmbeddedRedis

from .conftest import needs_redis_7


def _check(figures: dict[str, Any], settings: SimSettings) -> None:
    print("\n" + summary_line(figures))
    assert figures["errors"] == []
    assert figures["calls"] == settings.callers
    assert figures["worker_kills"] == settings.max_kills
    assert figures["crash_reconnects"] >= 1, "the kill landed on no live call"
    assert figures["drops"] >= 1
    assert figures["resumes"] == figures["drops"] + figures["crash_reconnects"]
    assert figures["resumes_not_resumed"] == 0
    assert figures["resumes_right_agent"] == figures["resumes"], figures["resumes_wrong"]
    assert figures["turns_lost"] == 0
    assert figures["turns_duplicated"] == 0
    assert figures["turns_unacknowledged"] == 0
    assert figures["persist_samples"] > figures["turns"] / 2
    assert figures["redis_bytes_per_session"] > 1000


SMALL = SimSettings(
    workers=3,
    callers=18,
    extra_turns=1,
    think=(0.02, 0.15),
    drop_probability=0.15,
    kill_every=2.5,
    max_kills=1,
    respawn=False,
)


async def test_workers_sharing_a_standalone_redis_lose_no_turn_when_callers_hop_and_one_dies(
    tmp_path: Path,
) -> None:
    with EmbeddedRedis() as server:
        target = RedisTarget(server.url, "standalone", lambda: [server.port], "standalone")
        settings = SimSettings(**{**SMALL.__dict__, "log_dir": tmp_path})
        _check(await simulate(target, settings), settings)


@needs_redis_7
async def test_workers_sharing_a_redis_cluster_lose_no_turn_when_callers_hop_and_one_dies(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    def masters() -> list[int]:
        return [n.port for n in cluster.topology() if n.role == "master"]

    target = RedisTarget(cluster.seed_url, "cluster", masters, "cluster 3+3")
    settings = SimSettings(**{**SMALL.__dict__, "log_dir": tmp_path, "seed": 7})
    _check(await simulate(target, settings), settings)


@pytest.mark.parametrize("turns", [0, 1, 4, 5, 12])
def test_the_expected_agent_follows_the_script(turns: int) -> None:
    from bench.scale import agent_after

    assert agent_after(turns) == {0: "receptionist", 1: "support", 4: "support"}.get(turns, "sales")


def test_the_independent_reader_names_the_keys_the_store_writes() -> None:
    from bench.scale import PREFIX, session_keys
    from frontdesk.state import RedisSessionStore, connect_redis

    store = RedisSessionStore(
        connect_redis("redis://127.0.0.1:1/0"), key_prefix=PREFIX, caller_secret=b"x" * 32
    )
    assert session_keys("abc") == list(store.session_keys("abc"))
