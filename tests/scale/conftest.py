"""Fixtures of the scale suite: real Redis topologies on loopback, private to the test.

``cluster`` is a 3-master + 3-replica Redis Cluster (``redis-server --cluster-enabled yes``
joined by ``redis-cli --cluster create … --cluster-replicas 1``), ``sentinels`` a master, a
replica and three Sentinels. Both are real processes that the tests kill, reshard and fail over;
see :mod:`bench.topology`.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from bench.topology import LocalCluster, LocalSentinelGroup
from frontdesk.state import find_redis_server
from tests.reliability.support import quiet_livekit, state_secret_env, workflow

__all__ = ["quiet_livekit", "state_secret_env", "workflow"]  # the reliability suite's fixtures


def _redis_major() -> int:
    output = subprocess.run(
        [find_redis_server(), "--version"], capture_output=True, text=True, check=True
    ).stdout
    return int(output.split("v=")[1].split(".")[0])


needs_redis_7 = pytest.mark.skipif(
    _redis_major() < 7, reason="the cluster set-up uses Redis 7 (--cluster-port)"
)


@pytest.fixture
def cluster() -> Iterator[LocalCluster]:
    """A fresh 3 masters + 3 replicas cluster, ``cluster_state:ok`` on every node."""
    with LocalCluster(masters=3, replicas=1, node_timeout_ms=1000) as started:
        yield started


@pytest.fixture
def sentinels() -> Iterator[LocalSentinelGroup]:
    """A master, its replica and three Sentinels (quorum 2) that agree on both."""
    with LocalSentinelGroup(down_after_ms=1000, failover_timeout_ms=3000) as group:
        yield group
