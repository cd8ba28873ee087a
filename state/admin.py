"""Operating on stored sessions as a whole: listing, deletion, privacy requests (the CLI's side).

Each operation scans or reads directly (no fencing: it does not write a live call's data but
removes it whole) and works on the key layout of :mod:`.keys`.
"""

from __future__ import annotations

import logging

import orjson
from redis.exceptions import ResponseError

from .caller_index import RedisCallerIndex
from .keys import SNAP_N, AsyncRedisClient, KeyLayout, is_session_id
from .models import SessionSummary
from .redis_errors import redis_errors

logger = logging.getLogger(__name__)

SCAN_BATCH = 500
"""Keys asked for per ``SCAN`` step, and per pipeline of reads after it."""

_SUMMARY_FIELDS = (
    "session_id",
    "workflow",
    "caller_hash",
    "current_agent",
    "turns",
    "created_at",
    "updated_at",
    "ended",
    SNAP_N,
)


class RedisSessionAdmin:
    """List, delete and forget stored sessions."""

    def __init__(
        self, client: AsyncRedisClient, keys: KeyLayout, callers: RedisCallerIndex
    ) -> None:
        self._client = client
        self._keys = keys
        self._callers = callers

    async def _scan_meta_keys(self, kinds: str) -> list[bytes]:
        pattern = self._keys.meta_pattern(kinds)
        with redis_errors(None, "scanning"):
            return [
                bytes(key)
                async for key in self._client.scan_iter(
                    match=pattern, count=SCAN_BATCH, _type="hash"
                )
            ]

    def _ids_of(self, keys: list[bytes]) -> list[tuple[bytes, str]]:
        """``(meta key, session id)`` of the keys that name a valid session id."""
        found = [(key, sid) for key in keys if (sid := self._keys.session_id_of(key)) is not None]
        return [(key, sid) for key, sid in found if is_session_id(sid)]

    async def list_sessions(self) -> list[SessionSummary]:
        """A summary of every stored session, most recently updated first."""
        found = self._ids_of(await self._scan_meta_keys("s"))
        summaries: list[SessionSummary] = []
        for start in range(0, len(found), SCAN_BATCH):
            batch = found[start : start + SCAN_BATCH]
            pipe = self._client.pipeline(transaction=False)
            for key, sid in batch:
                pipe.hmget(key, list(_SUMMARY_FIELDS))
                pipe.llen(self._keys.session(sid)[1])
            with redis_errors(None, "listing sessions in"):
                replies = await pipe.execute(raise_on_error=False)
            for index, (_, sid) in enumerate(batch):
                values, tail = replies[2 * index], replies[2 * index + 1]
                summary = _summary(sid, values, tail)
                if summary is None:
                    logger.warning("session %s: unreadable summary; skipped in listing", sid)
                else:
                    summaries.append(summary)
        summaries.sort(key=lambda s: s.updated_at, reverse=True)
        return summaries

    async def _delete_keys(self, session_id: str) -> int:
        keys = self._keys.script_keys(session_id)
        with redis_errors(session_id, "deleting"):
            return int(await self._client.delete(*keys))

    async def delete(self, session_id: str) -> None:
        """Remove one session (live and quarantined keys) and its caller index entry."""
        meta_key = self._keys.session(session_id)[0]
        stored_hash: str | None = None
        with redis_errors(session_id, "deleting"):
            try:
                raw = await self._client.hget(meta_key, "caller_hash")
            except ResponseError:
                raw = None  # a wrong-typed meta key: nothing to unindex
        if raw is not None:
            try:
                value = orjson.loads(raw)
            except orjson.JSONDecodeError:
                value = None
            stored_hash = value if isinstance(value, str) else None
        await self._delete_keys(session_id)
        if stored_hash is not None:
            await self._callers.remove(stored_hash, session_id)

    async def forget_caller(self, caller_identity: str) -> int:
        """Delete every session of a caller: those in its index and, by scanning, any other.

        The scan catches sessions whose index entry expired or was never written (the index is
        a separate key and cannot be updated in the same script as a session). Privacy requests
        are rare; a scan of the keyspace is an acceptable price for not missing one.
        """
        action = "forgetting a caller in"
        wanted = orjson.dumps(self._callers.hashed(caller_identity))
        session_ids = await self._callers.session_ids(caller_identity, action)
        keys = await self._scan_meta_keys("[sq]")
        for start in range(0, len(keys), SCAN_BATCH):
            batch = keys[start : start + SCAN_BATCH]
            pipe = self._client.pipeline(transaction=False)
            for key in batch:
                pipe.hget(key, "caller_hash")
            with redis_errors(None, action):
                hashes = await pipe.execute(raise_on_error=False)
            for key, stored in zip(batch, hashes, strict=True):
                sid = self._keys.session_id_of(key)
                if sid is not None and stored == wanted and is_session_id(sid):
                    session_ids.add(sid)
        deleted = 0
        for sid in sorted(session_ids):
            if await self._delete_keys(sid):
                deleted += 1
        await self._callers.drop(caller_identity, action)
        return deleted


def _summary(
    session_id: str, values: list[bytes | None] | Exception, tail: int | Exception
) -> SessionSummary | None:
    if isinstance(values, Exception) or isinstance(tail, Exception):
        return None
    try:
        (sid, workflow, chash, agent, turns, created, updated, ended, snap_n) = [
            orjson.loads(v) if v is not None else None for v in values
        ]
        if sid != session_id:
            return None
        return SessionSummary.model_validate(
            {
                "session_id": sid,
                "workflow": workflow,
                "caller_hash": chash,
                "agent": agent,
                "turns": turns,
                "created_at": created,
                "updated_at": updated,
                "ended": ended,
                "item_count": int(snap_n or 0) + int(tail),
            }
        )
    except ValueError:
        return None
