"""The Redis Cluster client of the store: redis-py's ``RedisCluster`` routed by slot from the start.

Measured on redis-py 8.1's asyncio cluster client (``redis/asyncio/cluster.py``) against a real
3-master cluster (``tests/scale/test_cluster.py``), three behaviours break live calls:

* **Commands issued before the slot map is known go to a random primary.** ``execute_command``
  picks the routing policy before it initialises the client: with no default node yet it treats
  the command as keyless. A worker's first dozen concurrent ``EVALSHA``\\ s, and every command
  issued after the client dropped its map (on ``CLUSTER DOWN`` during a failover), mostly land on
  the wrong shard and come back ``MOVED``.
* **Every fifth MOVED closes every connection, including those other tasks are using.** With the
  default ``reinitialize_steps=5`` the client calls its own ``aclose()``, which disconnects all
  nodes' connections; a command concurrently writing on one of them fails with
  ``AttributeError: 'NoneType' object has no attribute 'writelines'`` (its ``StreamWriter`` was
  set to None under it; redis-py issue #4287 describes the same leak of transport errors) or
  ``ConnectionError``. The same happens after ``CLUSTER DOWN`` and in pipelines' retries.
* **A slot being migrated answers TRYAGAIN to the store's scripts until the move ends.** The
  scripts name all five session keys; some do not exist (``snap`` before the first snapshot, the
  lease between calls), and an importing node serves a multi-key command only when every key is
  already there. redis-py retries TRYAGAIN a few times within one ``TTL`` of 16 redirects (the
  retry loses the ``ASKING`` and ping-pongs MOVED/ASK between the two nodes) and then raises
  ``ClusterError('TTL exhausted.')``.

:class:`SlotRoutedCluster` fixes the first two at the source: it initialises (``CLUSTER
SLOTS``) before routing any command, and it is built with ``reinitialize_steps=0`` so a MOVED
only patches the slot it names (redis-py's ``move_slot``, which also handles a promoted replica).
The third, and whatever is left of the second (a failover still makes redis-py close every
connection), are transient by nature: :func:`.redis_errors.redis_errors` reports them as
``StateUnavailableError`` so the writer keeps the turn and retries it with backoff until the
slot has moved (its appends are idempotent, so a retry never duplicates a turn).
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import RedisCluster

REINITIALIZE_STEPS = 0
"""``RedisCluster(reinitialize_steps=...)``: 0 = a MOVED patches its slot, never closes the client."""


class SlotRoutedCluster(RedisCluster):
    """``RedisCluster`` that knows the slot map before it routes a command (see module docstring)."""

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        # initialize() is a no-op once the map is known, and serialised by redis-py's own lock
        # while it is being fetched: concurrent first commands wait for one CLUSTER SLOTS.
        await self.initialize()
        return await super().execute_command(*args, **kwargs)
