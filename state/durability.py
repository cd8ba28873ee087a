"""What "acknowledged" means: ``[state] durability = "leader"`` (the default) or ``"replica"``.

Redis replicates asynchronously. With ``leader`` a write counts as acknowledged once the master
has applied it: if the master dies before its replica received the write, a Sentinel or Cluster
failover promotes a replica that never had it, and that acknowledged turn is gone.

With ``replica`` every write of the store is followed by ``WAIT 1 <ms>`` on the same
connection and counts as acknowledged only once at least one replica has it. :class:`ReplicaWait`
is the store's acknowledgement step (:meth:`.redis_store.RedisSessionStore.acknowledged_by`), so the
store's scripts stay as they are: after each of the store's writes it sends one pipeline to the node
that holds the session's slot, ``PEXPIRE`` of the session's fence key (a write every script of the
store makes anyway, so the connection's replication offset is at or past the store's write) then
``WAIT``. When fewer replicas answer within ``durability_timeout`` the write raises
``StateUnavailableError``: the writer keeps the turn and retries (the append is idempotent, so the
retry only waits again), exactly as during an outage. The call never waits for it.

Cost: one more round trip per write plus the replica's acknowledgement (measured in README
"Scaling"). What it buys: see the Sentinel failover figures in README.
"""

from __future__ import annotations

import logging
from typing import Literal, Protocol

from redis.asyncio import RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from frontdesk.errors import StateUnavailableError

from .redis_errors import raised_in_redis_transport
from .redis_store import AsyncRedisClient, RedisSessionStore

logger = logging.getLogger(__name__)

Durability = Literal["leader", "replica"]


class ReplicaWait:
    """The wait a store makes after each write so that it counts once a replica has it."""

    def __init__(
        self,
        client: AsyncRedisClient,
        *,
        ttl: float,
        replicas: int = 1,
        timeout: float = 0.5,
    ) -> None:
        if replicas < 1:
            raise ValueError("replicas must be at least 1")
        self._client = client
        self._ttl_ms = max(1, int(ttl * 1000))
        self._replicas = replicas
        self._timeout_ms = max(1, int(timeout * 1000))
        self.waits = 0
        """WAITs sent (for tests and benchmarks)."""
        self.shortfalls = 0
        """WAITs that returned fewer replicas than required."""

    async def __call__(self, session_id: str, fence_key: str) -> None:
        """Wait until ``replicas`` replicas have every write made so far to this session's node.

        ``fence_key`` is the session's fence key (it routes the WAIT to the session's node in a
        Cluster). Raises ``StateUnavailableError`` below the required number of replicas, or
        when Redis cannot be reached.
        """
        node = None
        try:
            pipe = self._client.pipeline(transaction=False)
            pipe.pexpire(fence_key, self._ttl_ms)
            if isinstance(self._client, RedisCluster):
                await self._client.initialize()  # the slot map, before naming the node
                node = self._client.get_node_from_key(fence_key)
                pipe.execute_command("WAIT", self._replicas, self._timeout_ms, target_nodes=node)
            else:
                pipe.execute_command("WAIT", self._replicas, self._timeout_ms)
            _, acked = await pipe.execute()
        except (RedisError, RedisClusterException, OSError) as exc:
            raise StateUnavailableError(
                f"session {session_id!r}: waiting for a replica failed: {type(exc).__name__}: {exc}"
            ) from exc
        except (AttributeError, TypeError) as exc:
            if not raised_in_redis_transport(exc):
                raise
            raise StateUnavailableError(
                f"session {session_id!r}: waiting for a replica failed: the connection was "
                f"closed under it ({type(exc).__name__}: {exc})"
            ) from exc
        if isinstance(self._client, RedisCluster) and node is not None:
            # A slot that moved meanwhile (reshard, failover) had its PEXPIRE redirected to the
            # new owner while WAIT ran on the old one, which proves nothing: wait again there.
            try:
                owner = self._client.get_node_from_key(fence_key)
            except RedisClusterException:  # the map was dropped meanwhile (CLUSTER DOWN)
                owner = None
            if owner is None or owner.name != node.name:
                raise StateUnavailableError(
                    f"session {session_id!r}: its slot moved from {node.name} while waiting for "
                    "a replica; kept and retried on the new owner"
                )
        self.waits += 1
        count = int(acked)
        if count < self._replicas:
            self.shortfalls += 1
            raise StateUnavailableError(
                f"session {session_id!r}: write acknowledged by {count} of {self._replicas} "
                f"replica(s) within {self._timeout_ms} ms ([state] durability = 'replica'); "
                "kept and retried"
            )


class DurabilitySettings(Protocol):
    """What :func:`with_durability` reads (``[state]`` of config.toml has it)."""

    durability: Durability
    durability_timeout: float
    ttl: float


def with_durability(
    store: RedisSessionStore, client: AsyncRedisClient, settings: DurabilitySettings
) -> RedisSessionStore:
    """``store`` as ``[state] durability`` asks: as is for ``leader``, waiting for a replica for
    ``replica``."""
    if settings.durability == "leader":
        return store
    logger.info(
        "state: writes are acknowledged once a replica has them (WAIT 1 %d ms)",
        int(settings.durability_timeout * 1000),
    )
    return store.acknowledged_by(
        ReplicaWait(client, ttl=settings.ttl, timeout=settings.durability_timeout)
    )
