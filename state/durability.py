"""What "acknowledged" means: ``[state] durability = "leader"`` (the default) or ``"replica"``.

Redis replicates asynchronously. With ``leader`` a write counts as acknowledged once the master
has applied it: if the master dies before its replica received the write, a Sentinel or Cluster
failover promotes a replica that never had it, and that acknowledged turn is gone.

With ``replica`` every write of the store is followed by ``WAIT 1 <ms>`` on the same
connection and counts as acknowledged only once at least one replica has it. :class:`ReplicaAcked`
does it as a thin layer over any :class:`~.redis_store.RedisSessionStore`, so the store's scripts
stay as they are: after the store's write it sends one pipeline on one connection to the node
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
from typing import Any, Literal, Protocol

from redis.asyncio import RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from frontdesk.errors import StateUnavailableError

from .models import SessionState, SessionSummary
from .redis_store import AsyncRedisClient, RedisSessionStore
from .store import Lease

logger = logging.getLogger(__name__)

Durability = Literal["leader", "replica"]


class ReplicaAcked:
    """A :class:`~.store.SessionStore` whose writes are acknowledged once a replica has them."""

    def __init__(
        self,
        store: RedisSessionStore,
        client: AsyncRedisClient,
        *,
        ttl: float,
        replicas: int = 1,
        timeout: float = 0.5,
    ) -> None:
        if replicas < 1:
            raise ValueError("replicas must be at least 1")
        self.inner = store
        self._client = client
        self._ttl_ms = max(1, int(ttl * 1000))
        self._replicas = replicas
        self._timeout_ms = max(1, int(timeout * 1000))
        self.waits = 0
        """WAITs sent (for tests and benchmarks)."""
        self.shortfalls = 0
        """WAITs that returned fewer replicas than required."""

    def __getattr__(self, name: str) -> Any:
        # session_keys, caller_key, key_prefix, ping, ...: the inner store's own.
        return getattr(self.inner, name)

    async def replicated(self, session_id: str) -> int:
        """Wait until ``replicas`` replicas have every write made so far to this session's node.

        Returns how many replicas acknowledged; raises ``StateUnavailableError`` below the
        required number (or when Redis cannot be reached).
        """
        fence_key = self.inner.session_keys(session_id)[3]
        try:
            pipe = self._client.pipeline(transaction=False)
            pipe.pexpire(fence_key, self._ttl_ms)
            if isinstance(self._client, RedisCluster):
                node = self._client.get_node_from_key(fence_key)
                pipe.execute_command("WAIT", self._replicas, self._timeout_ms, target_nodes=node)
            else:
                pipe.execute_command("WAIT", self._replicas, self._timeout_ms)
            _, acked = await pipe.execute()
        except (RedisError, RedisClusterException, OSError) as exc:
            raise StateUnavailableError(
                f"session {session_id!r}: waiting for a replica failed: {type(exc).__name__}: {exc}"
            ) from exc
        self.waits += 1
        count = int(acked)
        if count < self._replicas:
            self.shortfalls += 1
            raise StateUnavailableError(
                f"session {session_id!r}: write acknowledged by {count} of {self._replicas} "
                f"replica(s) within {self._timeout_ms} ms ([state] durability = 'replica'); "
                "kept and retried"
            )
        return count

    # ------------------------------------------------------------------ writes: then WAIT

    async def claim(self, session_id: str, *, owner: str) -> Lease:
        lease = await self.inner.claim(session_id, owner=owner)
        await self.replicated(session_id)
        return lease

    async def create(
        self, state: SessionState, *, lease: Lease, caller_identity: str | None
    ) -> None:
        await self.inner.create(state, lease=lease, caller_identity=caller_identity)
        await self.replicated(lease.session_id)

    async def append(
        self,
        lease: Lease,
        *,
        items: list[dict[str, Any]],
        meta_update: dict[str, Any],
        base_len: int,
    ) -> int:
        count = await self.inner.append(
            lease, items=items, meta_update=meta_update, base_len=base_len
        )
        await self.replicated(lease.session_id)
        return count

    async def rewrite(self, lease: Lease, state: SessionState) -> None:
        await self.inner.rewrite(lease, state)
        await self.replicated(lease.session_id)

    async def mark_ended(self, lease: Lease) -> None:
        await self.inner.mark_ended(lease)
        await self.replicated(lease.session_id)

    # ------------------------------------------------------------------ the rest: as is

    async def renew(self, lease: Lease) -> None:
        await self.inner.renew(lease)

    async def release(self, lease: Lease) -> None:
        await self.inner.release(lease)

    async def load(self, session_id: str) -> SessionState:
        return await self.inner.load(session_id)

    async def quarantine(self, session_id: str, reason: str) -> None:
        await self.inner.quarantine(session_id, reason)

    async def find_by_caller(self, caller_identity: str) -> str | None:
        return await self.inner.find_by_caller(caller_identity)

    async def list_sessions(self) -> list[SessionSummary]:
        return await self.inner.list_sessions()

    async def delete(self, session_id: str) -> None:
        await self.inner.delete(session_id)

    async def forget_caller(self, caller_identity: str) -> int:
        return await self.inner.forget_caller(caller_identity)


class DurabilitySettings(Protocol):
    """What :func:`with_durability` reads (``[state]`` of config.toml has it)."""

    durability: Durability
    durability_timeout: float
    ttl: float


def with_durability(
    store: RedisSessionStore, client: AsyncRedisClient, settings: DurabilitySettings
) -> RedisSessionStore | ReplicaAcked:
    """``store`` as ``[state] durability`` asks: as is for ``leader``, wrapped for ``replica``."""
    if settings.durability == "leader":
        return store
    logger.info(
        "state: writes are acknowledged once a replica has them (WAIT 1 %d ms)",
        int(settings.durability_timeout * 1000),
    )
    return ReplicaAcked(store, client, ttl=settings.ttl, timeout=settings.durability_timeout)
