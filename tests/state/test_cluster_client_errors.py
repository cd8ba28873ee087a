"""How the store reads what redis-py's cluster client raises while a cluster reconfigures.

A slot still moving after redis-py's redirect budget (``ClusterError('TTL exhausted.')``) and a
connection closed under a command by redis-py itself (``AttributeError`` inside redis-py) are
outages the writer retries, not refusals that stop a call's persistence. The same
``AttributeError`` raised by our own code stays a bug and is not disguised.
"""

from __future__ import annotations

import pytest
from redis.asyncio.connection import Connection
from redis.exceptions import ClusterError, RedisClusterException, SlotNotCoveredError

from frontdesk.errors import StateError, StateUnavailableError
from frontdesk.state.cluster import REINITIALIZE_STEPS, SlotRoutedCluster
from frontdesk.state.connection import connect_redis
from frontdesk.state.redis_errors import raised_in_redis_transport, redis_errors


def test_a_slot_still_moving_after_redis_pys_redirects_is_an_outage_the_writer_retries() -> None:
    moving = pytest.raises(StateUnavailableError, match=r"moving the slot of session 's1'")
    with moving, redis_errors("s1", "appending to"):
        raise ClusterError("TTL exhausted.")


async def test_a_connection_closed_under_a_command_inside_redis_py_is_an_outage() -> None:
    # What a concurrent disconnect leaves behind: the connection's StreamWriter is None.
    connection = Connection(host="127.0.0.1", port=1)
    closed = pytest.raises(StateUnavailableError, match="closed under a command")
    with closed as caught, redis_errors("s1", "appending to"):
        await connection._send_packed_command([b"PING\r\n"])
    assert isinstance(caught.value.__cause__, AttributeError)
    assert "writelines" in str(caught.value.__cause__)


def test_an_attribute_error_in_our_own_code_is_not_disguised_as_an_outage() -> None:
    with pytest.raises(AttributeError) as caught, redis_errors("s1", "appending to"):
        None.writelines([])  # type: ignore[attr-defined]
    assert not raised_in_redis_transport(caught.value)
    assert not isinstance(caught.value, StateError)


def test_cluster_mode_builds_a_client_routed_by_slot_that_never_closes_itself_on_moved() -> None:
    client = connect_redis("redis://127.0.0.1:7000", mode="cluster")
    assert isinstance(client, SlotRoutedCluster)
    assert client.reinitialize_steps == REINITIALIZE_STEPS == 0


@pytest.mark.parametrize(
    "error",
    [
        SlotNotCoveredError('Slot "12" not covered by the cluster.'),
        RedisClusterException("Redis Cluster cannot be connected. Please provide at least one"),
        RedisClusterException("All slots are not covered after query all startup_nodes."),
    ],
)
def test_a_cluster_client_that_cannot_rebuild_its_slot_map_is_an_outage(
    error: RedisClusterException,
) -> None:
    with pytest.raises(StateUnavailableError, match="reconfiguring"), redis_errors("s1", "x"):
        raise error


def test_a_cluster_usage_error_stays_a_refusal() -> None:
    refused = pytest.raises(StateError, match="same key slot")
    with refused as caught, redis_errors("s1", "appending to"):
        raise RedisClusterException("EVALSHA - all keys must map to the same key slot")
    assert not isinstance(caught.value, StateUnavailableError)
