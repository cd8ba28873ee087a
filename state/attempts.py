"""Failed verification attempts per caller, kept in Redis so a lock-out outlives the call.

Under ``trust = "caller_id+verify"`` a caller who resumes must repeat a verification field
before sensitive caller data is released. Each wrong answer is counted under the caller's HMAC
(``P:verify:H``, a counter expiring after the lock-out window); at ``verify_attempts`` the caller
is locked out: calls from that identity start fresh until the key expires, whoever places them.
Redis, not process memory, because a spoofer simply calls again (and reaches another worker).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

logger = logging.getLogger(__name__)


class AttemptCounter(Protocol):
    """Counts failed verification attempts per caller hash."""

    async def failures(self, caller_hash: str) -> int:
        """Failed attempts within the current lock-out window."""
        ...

    async def record_failure(self, caller_hash: str, *, window: float) -> int:
        """Count one more failure; the count expires ``window`` seconds after the first one."""
        ...

    async def clear(self, caller_hash: str) -> None:
        """Forget the failures (the caller verified)."""
        ...


class RedisAttemptCounter:
    """:class:`AttemptCounter` on Redis: ``INCR`` + ``PEXPIRE`` of ``<prefix>:verify:<hash>``."""

    def __init__(self, client: Any, *, key_prefix: str) -> None:
        self._client = client
        self._prefix = key_prefix

    def key(self, caller_hash: str) -> str:
        return f"{self._prefix}:verify:{caller_hash}"

    async def failures(self, caller_hash: str) -> int:
        raw = await self._client.get(self.key(caller_hash))
        try:
            return int(raw or 0)
        except ValueError:
            return 0

    async def record_failure(self, caller_hash: str, *, window: float) -> int:
        key = self.key(caller_hash)
        count = int(await self._client.incr(key))
        if count == 1:
            await self._client.pexpire(key, max(1, int(window * 1000)))
        return count

    async def clear(self, caller_hash: str) -> None:
        await self._client.delete(self.key(caller_hash))


class MemoryAttemptCounter:
    """:class:`AttemptCounter` in this process only (calls without Redis)."""

    def __init__(self) -> None:
        import time

        self._time = time.monotonic
        self._counts: dict[str, tuple[int, float]] = {}

    async def failures(self, caller_hash: str) -> int:
        count, until = self._counts.get(caller_hash, (0, 0.0))
        return count if until > self._time() else 0

    async def record_failure(self, caller_hash: str, *, window: float) -> int:
        count = await self.failures(caller_hash)
        until = self._counts.get(caller_hash, (0, 0.0))[1] if count else self._time() + window
        self._counts[caller_hash] = (count + 1, until)
        return count + 1

    async def clear(self, caller_hash: str) -> None:
        self._counts.pop(caller_hash, None)
