"""The naive baseline: the whole session rewritten as ONE JSON blob on every turn.

What a first implementation usually does: keep the session as a dict, ``orjson.dumps`` all of it
and ``SET`` it (with the TTL) after each turn; a load is ``GET`` + ``orjson.loads``. It is given
every advantage that does not change its layout: already-serialised items are kept in memory (only
the new turn's LiveKit items are serialised per turn, as in Frontdesk), orjson, one round trip,
and the same meta validation as Frontdesk on load (items are not re-validated on either side).
"""

from __future__ import annotations

from typing import Any

import orjson
from redis.asyncio import Redis

from frontdesk.state.models import SessionMeta, SessionState


class NaiveJsonStore:
    """``SET prefix:SID <whole session JSON> EX ttl`` per turn; ``GET`` + parse per load."""

    def __init__(self, client: Redis, *, prefix: str = "naive", ttl: int = 86400) -> None:
        self._client = client
        self._prefix = prefix
        self._ttl = ttl

    def key(self, session_id: str) -> str:
        return f"{self._prefix}:{session_id}"

    async def save(self, session_id: str, meta: dict[str, Any], items: list[dict[str, Any]]) -> int:
        """Write the whole session; returns the bytes of the blob."""
        blob = orjson.dumps({**meta, "items": items})
        await self._client.set(self.key(session_id), blob, ex=self._ttl)
        return len(blob)

    async def load(self, session_id: str) -> SessionState:
        raw = await self._client.get(self.key(session_id))
        if raw is None:
            raise KeyError(session_id)
        document = orjson.loads(raw)
        items = document.pop("items")
        meta = SessionMeta.model_validate(document)
        return SessionState.model_construct(**dict(meta), items=items)

    async def delete(self, session_id: str) -> None:
        await self._client.delete(self.key(session_id))


def meta_document(state: SessionState) -> dict[str, Any]:
    """The meta half of ``state`` as plain JSON-able values (what the naive store writes)."""
    return state.model_dump(mode="json", exclude={"items"})
