"""The caller index: which sessions a caller has, keyed by an HMAC of the caller's identity.

One sorted set per caller (``P:caller:H``, see :mod:`.keys`) holding only session ids, scored by
the sessions' ``created_at`` and capped at the newest :data:`KEEP`. The index repairs itself: it
only holds ids derivable from the sessions' meta, so a key of the wrong type is deleted (not kept
aside: it is keyed by the caller's HMAC and ``forget_caller`` must be able to remove everything of
a caller) by the script that indexes a new session, and read as empty meanwhile. Members that are
not valid session ids are dropped from it on lookup, as are ids whose session is gone.
"""

from __future__ import annotations

import logging

from redis.exceptions import ResponseError

from .identity import caller_hash
from .keys import AsyncRedisClient, KeyLayout, valid_session_id
from .redis_errors import redis_errors, text
from .scripts import Scripts

logger = logging.getLogger(__name__)

KEEP = 100
"""Index entries kept per caller: the newest ones (older sessions stay findable by id)."""


class RedisCallerIndex:
    """Index, look up and unindex the sessions of callers."""

    def __init__(
        self,
        client: AsyncRedisClient,
        keys: KeyLayout,
        scripts: Scripts,
        *,
        caller_secret: bytes,
        ttl_ms: int,
    ) -> None:
        self._client = client
        self._keys = keys
        self._scripts = scripts
        self._secret = caller_secret
        self._ttl_ms = ttl_ms

    def hashed(self, caller_identity: str) -> str:
        """The HMAC of an identity: what is stored of it."""
        return caller_hash(caller_identity, self._secret)

    def key(self, caller_identity: str) -> str:
        """The index key of an identity (holds its HMAC, never the identity)."""
        return self._keys.caller(self.hashed(caller_identity))

    async def add(self, caller_identity: str, session_id: str, created_at: float) -> None:
        """Index ``session_id`` for its caller, replacing an index key of the wrong type."""
        index = self.key(caller_identity)
        with redis_errors(session_id, "indexing the caller of"):
            replaced = await self._scripts.index(
                keys=[index], args=[session_id, repr(created_at), KEEP, self._ttl_ms]
            )
        if replaced is not None:
            logger.warning(
                "session %s: caller index %s was a Redis %s, not a sorted set; deleted it and "
                "indexed the session again",
                session_id,
                index,
                text(replaced),
            )

    async def members(self, index: str, action: str) -> list[bytes]:
        """The members of a caller index, newest first; a wrong-typed index reads as empty.

        It is not deleted here: the indexing script of the next session created for this
        caller replaces it atomically, whereas a delete from here could race with that script
        and drop the entry it just wrote.
        """
        with redis_errors(None, action):
            try:
                members = await self._client.zrevrange(index, 0, -1)
                return [m for m in members if isinstance(m, bytes)]  # bytes: no decoding
            except ResponseError as exc:
                if "WRONGTYPE" not in str(exc):
                    raise
        logger.warning(
            "caller index %s is not a sorted set; read as empty (replaced when this caller's "
            "next session is created)",
            index,
        )
        return []

    async def find(self, caller_identity: str) -> str | None:
        """The caller's most recently created session still stored, dropping dead members."""
        index = self.key(caller_identity)
        members = await self.members(index, "looking up a caller in")
        ids: list[str] = []
        invalid: list[bytes] = []
        for member in members:
            sid = valid_session_id(member)
            if sid is None:
                invalid.append(member)
            else:
                ids.append(sid)
        if invalid:
            logger.warning(
                "caller index %s: dropped %d member(s) that are not valid session ids",
                index,
                len(invalid),
            )
        if not ids:
            if invalid:
                with redis_errors(None, "looking up a caller in"):
                    await self._client.zrem(index, *invalid)
            return None
        with redis_errors(None, "looking up a caller in"):
            pipe = self._client.pipeline(transaction=False)
            for sid in ids:
                pipe.exists(self._keys.session(sid)[0])
            alive = await pipe.execute()
            dead = [sid.encode() for sid, found in zip(ids, alive, strict=True) if not found]
            if dead or invalid:
                await self._client.zrem(index, *dead, *invalid)
        return next((sid for sid, found in zip(ids, alive, strict=True) if found), None)

    async def session_ids(self, caller_identity: str, action: str) -> set[str]:
        """Every valid session id in the caller's index."""
        members = await self.members(self.key(caller_identity), action)
        return {sid for m in members if (sid := valid_session_id(m)) is not None}

    async def remove(self, hashed_identity: str, session_id: str) -> None:
        """Take ``session_id`` out of the index of the caller whose HMAC is ``hashed_identity``."""
        index = self._keys.caller(hashed_identity)
        with redis_errors(session_id, "unindexing"):
            try:
                await self._client.zrem(index, session_id)
            except ResponseError as exc:
                if "WRONGTYPE" not in str(exc):
                    raise
                # Nothing of this session can be in it; the next indexing replaces it.
                logger.warning("caller index %s is not a sorted set; left as is", index)

    async def drop(self, caller_identity: str, action: str) -> None:
        """Delete the caller's whole index."""
        with redis_errors(None, action):
            await self._client.delete(self.key(caller_identity))
