"""The Redis implementation of the per-call :class:`~.store.SessionStore` roles: leases, writes, reads.

The key layout is in :mod:`.keys`, the Lua scripts in ``lua/*.lua`` (:mod:`.scripts`), the caller
index in :mod:`.caller_index`, listing/deletion/privacy requests in :mod:`.admin`; this class
owns the lease, write and read logic and hands the rest to those two (so it is the whole
:class:`~.store.SessionStore`). Build it with :meth:`RedisSessionStore.from_settings`.

A session is bounded: at most ``max_items`` chat items (``_snap_n`` + ``LLEN`` of ``items``) and
``max_bytes`` bytes of stored JSON (meta fields and values, ``snap``, the ``items`` elements).
Appends are not refused past the bound (a live call never loses a turn to it); a load of a session
beyond it quarantines the session instead of decoding it.

Why this shape:

* **Append is one round trip and its cost does not grow with the history.** A turn is one
  ``EVALSHA`` that checks the fencing token, checks the stored item count against the writer's
  ``base_len`` (idempotent retries), ``RPUSH``\\ es the new items, ``HSET``\\ s the changed meta
  fields and refreshes every TTL. Only the new items travel. It runs 7 Redis commands (8 once a
  snapshot exists): one ``MGET`` reads fence and lease, ``PEXPIRE`` of meta doubles as the
  existence check, ``RPUSH``'s reply is the list length (the push is undone on a mismatch or a
  duplicate before anything else is written), and the store remembers each lease's ``_snap_n``
  from the previous reply so the script reads it only when that belief does not add up.
* **Load is fast at 1,000 items.** Decoding one JSON document per item dominates a naive load,
  so every ``snapshot_every`` items the script moves the list into ``snap`` with ``APPEND``
  (amortised O(new items), never a rewrite) and a load decodes one JSON array plus at most
  ``snapshot_every - 1`` list elements. The load itself is one transaction: a consistent snapshot
  of the three keys (``MULTI``/``EXEC``), type-checked, in one round trip.
* **Fencing.** Every claim raises the token in ``fence`` (first value: the server's clock in
  microseconds, so a session deleted and created again never reuses an old token); writes carry
  their token and are refused unless it is current. The lease key only says who is live.
* **TTL per session**, refreshed on all its keys by every write; Redis ≥ 6.2 has no per-field
  expiry (``HEXPIRE`` is 7.4), hence one key per part.
* **No raw identity anywhere.** The caller index is keyed by an HMAC of the identity and holds
  only session ids; ``meta`` holds the same HMAC. (Session ids themselves are chosen by the
  caller of this store: do not derive them from phone numbers.)
* **Corruption is isolated, not propagated.** A session that does not decode is renamed to the
  ``P:q:`` keys (same hash tag, so ``RENAME`` stays in the slot), kept for ``ttl`` for a human
  to look at, and the load raises ``CorruptStateError``; other sessions are untouched. The
  session layer quarantines the same way (:meth:`RedisSessionStore.quarantine`) when stored
  items are JSON but not LiveKit chat items, which this package does not interpret.
* **Damaged bookkeeping quarantines the session too.** This store only ever writes a decimal
  integer to ``fence`` and a string to ``lease``; anything else there was written by something
  else, so the fencing history of the data is unknown and no token can be proven current. A
  load, or a claim (inside its script, atomically), then quarantines the data and deletes the
  damaged key, and raises ``CorruptStateError``: the caller starts a fresh session and the next
  claim of this id succeeds. (Resetting only the damaged key and keeping the data would resume
  a history whose writers were not fenced.) Writes refuse such a session without writing
  anything, and a release leaves it alone.
* **Bounded loads.** Decoding is the cost of a load, so the load's transaction reads the sizes
  (``_snap_n``, ``LLEN``) with the data, fetches at most ``max_items`` list elements, and checks
  both bounds before decoding anything; a flooded session costs one bounded read and a
  quarantine, never a stalled event loop.
* **The caller index repairs itself** (:mod:`.caller_index`).

Works with ``redis.asyncio.Redis`` (standalone, Sentinel) and ``redis.asyncio.RedisCluster``
on Redis ≥ 6.2 (scripts via ``EVALSHA``; no ``FUNCTION``, no ``HEXPIRE``). The client must
not decode responses (see :func:`.connection.connect_redis`).
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Sequence
from typing import Any, Protocol

import orjson

from frontdesk.errors import CorruptStateError, SessionNotFoundError, StateError

from .admin import RedisSessionAdmin
from .caller_index import RedisCallerIndex
from .keys import FENCE_RE, SNAP_N, AsyncRedisClient, KeyLayout, SessionKeys
from .models import (
    SCHEMA_VERSION,
    SessionMeta,
    SessionState,
    SessionSummary,
    decode_meta,
    encode_meta,
    encode_meta_update,
)
from .redis_errors import check_status, redis_errors, text
from .scripts import Scripts
from .store import Lease, WriteAcknowledgement

logger = logging.getLogger(__name__)

__all__ = ["AsyncRedisClient", "RedisSessionStore", "StoreSettings"]


class StoreSettings(Protocol):
    """What :meth:`RedisSessionStore.from_settings` reads (``[state]`` of config.toml has it)."""

    key_prefix: str
    ttl: float
    lease_ttl: float
    snapshot_every: int
    max_items: int
    max_bytes: int


_SNAP_COUNTS_KEPT = 4096
"""How many sessions' ``_snap_n`` one store remembers (a worker has far fewer live calls)."""


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class RedisSessionStore:
    """:class:`~.store.SessionStore` on ``redis.asyncio``; see the module docstring."""

    def __init__(
        self,
        client: AsyncRedisClient,
        *,
        key_prefix: str = "frontdesk",
        ttl: float = 86400.0,
        lease_ttl: float = 15.0,
        snapshot_every: int = 200,
        max_items: int = 5000,
        max_bytes: int = 16 * 1024 * 1024,
        caller_secret: bytes,
    ) -> None:
        """``max_items``/``max_bytes`` bound what :meth:`load` decodes (see the module docstring).

        The defaults are far above a voice call (an hour is a few hundred turns) and keep the
        worst load well under the event-loop stall a live call tolerates.
        """
        self._keys = KeyLayout(key_prefix)
        if ttl <= 0 or lease_ttl <= 0:
            raise StateError("state ttl and lease_ttl must be positive")
        if snapshot_every < 1:
            raise StateError("snapshot_every must be at least 1")
        if max_items < 1 or max_bytes < 1:
            raise StateError("max_items and max_bytes must be at least 1")
        if not caller_secret:
            raise StateError("the caller secret cannot be empty")
        if client.get_connection_kwargs().get("decode_responses"):
            raise StateError(
                "the Redis client decodes responses; the session store needs bytes "
                "(create it with connect_redis or decode_responses=False)"
            )
        self._client = client
        self._ttl_ms = _ms(ttl)
        self._lease_ms = _ms(lease_ttl)
        self._snapshot_every = snapshot_every
        self._max_items = max_items
        self._max_bytes = max_bytes
        self._snap_counts: dict[tuple[str, int], int] = {}
        """``_snap_n`` of each session this store last wrote, by (session id, fence token).

        Sent with the next append of that lease so the script needs no ``HGET`` for it; the
        script still checks the belief against the list length and reads the real value when
        it does not add up. Forgotten before every write and remembered only from the reply,
        so a write whose reply was lost never leaves a wrong belief behind."""
        self._scripts = Scripts.register(client)
        self.callers = RedisCallerIndex(
            client, self._keys, self._scripts, caller_secret=caller_secret, ttl_ms=self._ttl_ms
        )
        """The caller index of this store's sessions."""
        self.admin = RedisSessionAdmin(client, self._keys, self.callers)
        """Listing, deletion and privacy requests over this store's sessions."""
        self.acknowledgement: WriteAcknowledgement | None = None
        """What a write waits for after Redis applied it (``[state] durability``); None: nothing."""

    @classmethod
    def from_settings(
        cls, settings: StoreSettings, *, client: AsyncRedisClient, caller_secret: bytes
    ) -> RedisSessionStore:
        """THE way to build a store: from ``[state]`` settings (or any :class:`StoreSettings`)."""
        return cls(
            client,
            key_prefix=settings.key_prefix,
            ttl=settings.ttl,
            lease_ttl=settings.lease_ttl,
            snapshot_every=settings.snapshot_every,
            max_items=settings.max_items,
            max_bytes=settings.max_bytes,
            caller_secret=caller_secret,
        )

    # ------------------------------------------------------------------ keys

    @property
    def key_prefix(self) -> str:
        return self._keys.prefix

    def session_keys(self, session_id: str) -> SessionKeys:
        """``(meta, items, snap, fence, lease)`` keys of a session, in the scripts' order."""
        return self._keys.session(session_id)

    def quarantine_keys(self, session_id: str) -> tuple[str, str, str]:
        """``(meta, items, snap)`` names a corrupt session is renamed to."""
        return self._keys.quarantine(session_id)

    def with_secret(self, secret: bytes) -> RedisSessionStore:
        """This store keyed by another caller secret: callers indexed under an earlier one."""
        other = copy.copy(self)
        other.callers = RedisCallerIndex(
            self._client, self._keys, self._scripts, caller_secret=secret, ttl_ms=self._ttl_ms
        )
        other.admin = RedisSessionAdmin(self._client, self._keys, other.callers)
        return other

    def acknowledged_by(self, acknowledgement: WriteAcknowledgement) -> RedisSessionStore:
        """This store, its writes counting only once ``acknowledgement`` returns after each."""
        other = copy.copy(self)
        other.acknowledgement = acknowledgement
        return other

    async def _acknowledged(self, session_id: str) -> None:
        if self.acknowledgement is not None:
            await self.acknowledgement(session_id, self._keys.session(session_id)[3])

    def caller_key(self, caller_identity: str) -> str:
        """The caller index key of an identity (holds its HMAC, never the identity)."""
        return self.callers.key(caller_identity)

    # ------------------------------------------------------------------ ownership

    async def claim(self, session_id: str, *, owner: str) -> Lease:
        """See :meth:`.store.SessionOwnership.claim`.

        A damaged fence or lease is quarantined by the claim script itself (atomically) and
        reported as ``CorruptStateError``, never as an outage: claiming the id again then
        succeeds on a clean slate, so a caller who retries is persisted again.
        """
        with redis_errors(session_id, "claiming"):
            status, token, previous = await self._scripts.claim(
                keys=self._keys.script_keys(session_id),
                args=[owner, self._lease_ms, self._ttl_ms],
            )
        if status == b"corrupt":
            reason = text(token)
            where = self._keys.quarantined_as(session_id)
            logger.warning(
                "session %s is corrupt (%s); quarantined by a claim: %d key(s) moved to %s for "
                "inspection (kept %.0f s), the damaged key deleted",
                session_id,
                reason,
                int(previous),
                where,
                self._ttl_ms / 1000,
            )
            raise CorruptStateError(
                f"session {session_id!r} is corrupt: {reason}; quarantined as {where}; "
                "claim it again to start it afresh"
            )
        taken_from: str | None = None
        if previous is not None:
            _, _, previous_owner = bytes(previous).decode("utf-8", "replace").partition(":")
            if previous_owner != owner:
                taken_from = previous_owner
                logger.info(
                    "session %s: %s takes over from %s (fence %s)",
                    session_id,
                    owner,
                    previous_owner,
                    token,
                )
        await self._acknowledged(session_id)
        return Lease(session_id=session_id, owner=owner, fence=int(token), taken_from=taken_from)

    async def renew(self, lease: Lease) -> None:
        action = "renewing the lease of"
        with redis_errors(lease.session_id, action):
            status, detail = await self._scripts.renew(
                keys=self._keys.session(lease.session_id),
                args=[lease.fence, lease.owner, self._lease_ms],
            )
        check_status(status, detail, lease=lease, action=action)

    async def release(self, lease: Lease) -> None:
        with redis_errors(lease.session_id, "releasing"):
            await self._scripts.release(
                keys=self._keys.session(lease.session_id), args=[lease.fence]
            )

    # ------------------------------------------------------------------ writes

    async def create(
        self, state: SessionState, *, lease: Lease, caller_identity: str | None
    ) -> None:
        if caller_identity is not None:
            state = state.model_copy(update={"caller_hash": self.callers.hashed(caller_identity)})
        await self._write_state(lease, state, "creating")
        if caller_identity is not None:
            await self.callers.add(caller_identity, state.session_id, state.created_at)
        await self._acknowledged(lease.session_id)

    async def rewrite(self, lease: Lease, state: SessionState) -> None:
        await self._write_state(lease, state, "rewriting")
        await self._acknowledged(lease.session_id)

    async def _write_state(self, lease: Lease, state: SessionState, action: str) -> None:
        sid = lease.session_id
        if state.session_id != sid:
            raise StateError(
                f"session {sid!r}: cannot write state of session {state.session_id!r} "
                "under this lease"
            )
        try:
            body = orjson.dumps(state.items)[1:-1]
        except TypeError as exc:
            raise StateError(f"session {sid!r}: chat items are not JSON-encodable: {exc}") from None
        args: list[Any] = [lease.fence, self._ttl_ms, self._lease_ms, len(state.items), body]
        for name, value in encode_meta(state).items():
            args += (name, value)
        with redis_errors(sid, action):
            self._snap_counts.pop((sid, lease.fence), None)
            status, detail = await self._scripts.write_full(keys=self._keys.session(sid), args=args)
        check_status(status, detail, lease=lease, action=action)
        self._remember_snap_count(sid, lease.fence, len(state.items))

    async def append(
        self,
        lease: Lease,
        *,
        items: list[dict[str, Any]],
        meta_update: dict[str, Any],
        base_len: int,
    ) -> int:
        """See :meth:`.store.SessionWrites.append`; stamps ``updated_at`` unless given."""
        sid = lease.session_id
        args: list[Any] = [
            lease.fence,
            base_len,
            len(items),
            self._ttl_ms,
            self._lease_ms,
            self._snapshot_every,
            self._snap_counts.pop((sid, lease.fence), -1),
        ]
        try:
            args += [orjson.dumps(item) for item in items]
        except TypeError as exc:
            raise StateError(f"session {sid!r}: a chat item is not JSON-encodable: {exc}") from None
        if "updated_at" not in meta_update:
            meta_update = {**meta_update, "updated_at": time.time()}
        try:
            encoded = encode_meta_update(meta_update)
        except ValueError as exc:
            raise StateError(f"session {sid!r}: invalid meta update: {exc}") from None
        for name, value in encoded.items():
            args += (name, value)
        with redis_errors(sid, "appending to"):
            status, count, snap_n = await self._scripts.append(
                keys=self._keys.session(sid), args=args
            )
        check_status(status, count, lease=lease, action="appending to")
        if status == b"mismatch":
            raise StateError(
                f"session {sid!r}: the store holds {count} items, but this write expected "
                f"{base_len} (or {base_len + len(items)} if already applied); a full rewrite "
                "is needed"
            )
        self._remember_snap_count(sid, lease.fence, int(snap_n))
        await self._acknowledged(sid)
        return int(count)

    def _remember_snap_count(self, session_id: str, fence: int, snap_n: int) -> None:
        if len(self._snap_counts) >= _SNAP_COUNTS_KEPT:
            # bounded: the oldest entries (sessions long finished) go first
            for key in list(self._snap_counts)[: _SNAP_COUNTS_KEPT // 4]:
                del self._snap_counts[key]
        self._snap_counts[(session_id, fence)] = snap_n

    async def mark_ended(self, lease: Lease) -> None:
        sid = lease.session_id
        encoded = encode_meta_update({"ended": True, "updated_at": time.time()})
        args: list[Any] = [lease.fence, self._ttl_ms, self._lease_ms]
        for name, value in encoded.items():
            args += (name, value)
        with redis_errors(sid, "ending"):
            status, detail = await self._scripts.set_meta(keys=self._keys.session(sid), args=args)
        check_status(status, detail, lease=lease, action="ending")
        await self._acknowledged(sid)

    # ------------------------------------------------------------------ reads

    async def load(self, session_id: str) -> SessionState:
        """See :meth:`.store.SessionLookup.load`.

        One ``MULTI``/``EXEC`` round trip reads the five keys' types, the fence, the meta, the
        list's length, the snapshot and at most ``max_items`` list elements (so a flooded list
        costs a bounded read). Types, bookkeeping and both size bounds are checked before
        anything is decoded; a session failing any of them is quarantined.
        """
        keys = self._keys.session(session_id)
        meta_key, items_key, snap_key, fence_key, _ = keys
        # (A Lua script would copy the ~1 MB snapshot into Lua and back: about twice as slow at
        # 1,000 items.)
        pipe = self._client.pipeline(transaction=True)
        for key in keys:
            pipe.type(key)
        pipe.get(fence_key)
        pipe.hgetall(meta_key)
        pipe.llen(items_key)
        pipe.get(snap_key)
        pipe.lrange(items_key, 0, self._max_items - 1)
        with redis_errors(session_id, "loading"):
            replies = await pipe.execute(raise_on_error=False)
            for reply in replies[:5]:
                if isinstance(reply, Exception):
                    raise reply
        kinds = [text(kind) for kind in replies[:5]]
        fence, meta, tail_len, snap, tail = replies[5:]
        if kinds[0] == "none":
            raise SessionNotFoundError(f"no stored session {session_id!r}")
        expected = ({"hash"}, {"list", "none"}, {"string", "none"}, *[{"string", "none"}] * 2)
        if any(kind not in allowed for kind, allowed in zip(kinds, expected, strict=True)):
            found = ", ".join(
                f"{part}={kind}"
                for part, kind in zip(
                    ("meta", "items", "snap", "fence", "lease"), kinds, strict=True
                )
            )
            raise await self._quarantine_session(session_id, f"wrong Redis key types ({found})")
        if kinds[3] == "string" and not FENCE_RE.match(bytes(fence)):
            raise await self._quarantine_session(
                session_id, "its fence key is not a positive integer"
            )
        for reply in (meta, tail_len, snap, tail):
            if isinstance(reply, Exception):
                with redis_errors(session_id, "loading"):
                    raise reply
        too_large = self._size_problem(meta, int(tail_len), snap or b"", tail)
        if too_large is not None:
            raise await self._quarantine_session(session_id, too_large)
        try:
            return _decode_session(session_id, meta, snap or b"", tail)
        except ValueError as exc:
            raise await self._quarantine_session(session_id, str(exc).splitlines()[0]) from None

    def _size_problem(
        self, meta: dict[bytes, bytes], tail_len: int, snap: bytes, tail: Sequence[bytes]
    ) -> str | None:
        """Why a loaded session is over a bound, or None; O(1) per key, before any decoding.

        An unreadable ``_snap_n`` counts as 0 here: decoding reports it as corruption.
        """
        try:
            snap_n = max(0, int(meta.get(SNAP_N.encode(), b"0")))
        except ValueError:
            snap_n = 0
        count = snap_n + tail_len
        size = (
            sum(len(field) + len(value) for field, value in meta.items())
            + len(snap)
            + sum(len(element) for element in tail)
        )
        if count <= self._max_items and size <= self._max_bytes:
            return None
        at_least = "at least " if len(tail) < tail_len else ""
        return (
            f"too large to load: {count} items and {at_least}{size} bytes of stored JSON "
            f"(bounds: {self._max_items} items, {self._max_bytes} bytes)"
        )

    async def quarantine(self, session_id: str, reason: str) -> None:
        """See :meth:`.store.SessionLookup.quarantine`.

        Raises ``StateUnavailableError``/``StateError`` when Redis does not do it (the session
        then stays where it is); a session with nothing stored is not an error, only logged.
        """
        with redis_errors(session_id, "quarantining"):
            moved = int(
                await self._scripts.quarantine(
                    keys=self._keys.script_keys(session_id), args=[self._ttl_ms]
                )
            )
        if moved:
            logger.warning(
                "session %s quarantined (%s): %d key(s) moved to %s for inspection (kept %.0f s)",
                session_id,
                reason,
                moved,
                self._keys.quarantined_as(session_id),
                self._ttl_ms / 1000,
            )
        else:
            logger.warning(
                "session %s: asked to quarantine it (%s) but nothing is stored under it",
                session_id,
                reason,
            )

    async def _quarantine_session(self, session_id: str, reason: str) -> CorruptStateError:
        """Move a session that cannot be loaded aside and return the error to raise.

        A failure to move it is logged, not raised: the session is unusable either way, and
        the caller must get the ``CorruptStateError`` that says why.
        """
        where = self._keys.quarantined_as(session_id)
        try:
            with redis_errors(session_id, "quarantining"):
                await self._scripts.quarantine(
                    keys=self._keys.script_keys(session_id), args=[self._ttl_ms]
                )
        except StateError as exc:
            logger.warning(
                "session %s is corrupt (%s) and could not be quarantined: %s",
                session_id,
                reason,
                exc,
            )
            return CorruptStateError(f"session {session_id!r} is corrupt: {reason}")
        logger.warning(
            "session %s is corrupt (%s); quarantined: moved to %s for inspection (kept %.0f s)",
            session_id,
            reason,
            where,
            self._ttl_ms / 1000,
        )
        return CorruptStateError(
            f"session {session_id!r} is corrupt: {reason}; quarantined as {where}"
        )

    async def ping(self) -> None:
        """Raise ``StateUnavailableError`` unless Redis answers (health checks, startup)."""
        with redis_errors(None, "pinging"):
            await self._client.ping()

    # ------------------------------------------- caller index and admin (own classes)

    async def find_by_caller(self, caller_identity: str) -> str | None:
        """See :meth:`.caller_index.RedisCallerIndex.find`."""
        return await self.callers.find(caller_identity)

    async def list_sessions(self) -> list[SessionSummary]:
        return await self.admin.list_sessions()

    async def delete(self, session_id: str) -> None:
        await self.admin.delete(session_id)

    async def forget_caller(self, caller_identity: str) -> int:
        """See :meth:`.admin.RedisSessionAdmin.forget_caller`."""
        return await self.admin.forget_caller(caller_identity)


def _decode_session(
    session_id: str, stored_meta: dict[bytes, bytes], snap: bytes, tail: Sequence[bytes]
) -> SessionState:
    """A stored session from the load's replies; ``ValueError`` says what is wrong."""
    raw = {bytes(field).decode("utf-8"): bytes(value) for field, value in stored_meta.items()}
    snap_n = int(raw.pop(SNAP_N, b"0"))
    if "schema_version" not in raw:
        raise ValueError("no schema_version field")
    version = orjson.loads(raw["schema_version"])
    if type(version) is not int or version != SCHEMA_VERSION:
        raise ValueError(
            f"schema_version {version!r} is not {SCHEMA_VERSION}, the version this Frontdesk reads"
        )
    meta: SessionMeta = decode_meta(raw)
    if meta.session_id != session_id:
        raise ValueError(f"meta names session {meta.session_id!r}")
    items: list[Any] = orjson.loads(b"[" + bytes(snap) + b"]") if snap else []
    if len(items) != snap_n:
        raise ValueError(f"snapshot holds {len(items)} items, meta says {snap_n}")
    items.extend(orjson.loads(element) for element in tail)
    for position, item in enumerate(items):
        if type(item) is not dict:
            raise ValueError(f"chat item {position} is not a JSON object")
    return SessionState.model_construct(**dict(meta), items=items)
