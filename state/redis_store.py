"""The Redis implementation of :class:`~.store.SessionStore`, and THE key layout.

Key layout (``P`` is ``key_prefix``, ``SID`` the session id, ``H`` the caller's hex
HMAC-SHA256; the braces are literal: they are Redis Cluster hash tags, so every key of one
session lives in one slot and each per-session Lua script is a single-slot operation)::

    key                      type    holds                                              TTL
    P:s:{SID}:meta           hash    one field per SessionMeta field, each value JSON;  ttl
                                     plus ``_snap_n`` = number of items in ``snap``
    P:s:{SID}:items          list    chat items after the first ``_snap_n``, one JSON   ttl
                                     object per element, append-only
    P:s:{SID}:snap           string  items [0, _snap_n) as the *body* of one JSON array ttl
                                     (comma-separated objects, no brackets)
    P:s:{SID}:fence          string  the fencing token (positive decimal integer)       ttl
    P:s:{SID}:lease          string  ``<token>:<owner>`` of the current lease           lease_ttl
    P:q:{SID}:meta|items|snap        a quarantined session's keys, renamed aside        ttl
    P:caller:H               zset    session ids of one caller, scored by created_at    ttl

A session is bounded: at most ``max_items`` chat items (``_snap_n`` + ``LLEN`` of ``items``) and
``max_bytes`` bytes of stored JSON (meta fields and values, ``snap``, the ``items`` elements).
Appends are not refused past the bound (a live call never loses a turn to it); a load of a session
beyond it quarantines the session instead of decoding it.

Why this shape:

* **Append is one round trip and its cost does not grow with the history.** A turn is one
  ``EVALSHA`` that checks the fencing token, checks the stored item count against the writer's
  ``base_len`` (idempotent retries), ``RPUSH``\\ es the new items, ``HSET``\\ s the changed meta
  fields and refreshes every TTL. Only the new items travel.
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
* **The caller index repairs itself.** It only holds ids derivable from the sessions' meta, so an
  index key of the wrong type is deleted (not kept aside: it is keyed by the caller's HMAC and
  ``forget_caller`` must be able to remove everything of a caller) by the script that indexes a
  new session, and read as empty meanwhile. Members that are not valid session ids are dropped
  from it on lookup.

Works with ``redis.asyncio.Redis`` (standalone, Sentinel) and ``redis.asyncio.RedisCluster``
on Redis ≥ 6.2 (scripts via ``EVALSHA``; no ``FUNCTION``, no ``HEXPIRE``). The client must
not decode responses (see :func:`.connection.connect_redis`).
"""

from __future__ import annotations

import copy
import logging
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import orjson
from redis.asyncio import Redis, RedisCluster
from redis.exceptions import (
    ClusterDownError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from frontdesk.errors import (
    CorruptStateError,
    SessionNotFoundError,
    StaleOwnerError,
    StateError,
    StateUnavailableError,
)

from .identity import caller_hash
from .models import (
    SCHEMA_VERSION,
    SessionMeta,
    SessionState,
    SessionSummary,
    decode_meta,
    encode_meta,
    encode_meta_update,
)
from .store import Lease

logger = logging.getLogger(__name__)

AsyncRedisClient = Redis | RedisCluster
"""What the store runs on: a plain/Sentinel client or a cluster client, bytes responses."""

_SNAP_N = "_snap_n"
_PREFIX_RE = re.compile(r"^[A-Za-z0-9_.-]{1,40}\Z")
_SESSION_ID_RE = re.compile(r"^[^\s{}*?\[\]\\\x00-\x1f\x7f]{1,200}\Z")
# (\Z, not $: $ also matches before a trailing newline)
_CALLER_INDEX_KEEP = 100
"""Index entries kept per caller: the newest ones (older sessions stay findable by id)."""
_SCAN_BATCH = 500

_FENCE_RE = re.compile(rb"^[1-9][0-9]{0,17}\Z")
"""A fence value this store could have written (the Lua scripts apply the same rule)."""

# Every per-session script gets the same five keys, in this order; the scripts that can
# quarantine get the three quarantine names after them (same hash tag, same slot).
_SESSION_KEYS_DOC = "KEYS: 1 meta, 2 items, 3 snap, 4 fence, 5 lease"
_QUARANTINE_KEYS_DOC = "6 q:meta, 7 q:items, 8 q:snap"

_LUA_BOOKKEEPING = """
-- Why the fence or lease key cannot be trusted, or false. This store only ever writes a
-- positive decimal integer below 2^63 (so INCR works) to the fence, and a string to the lease.
local function fence_damage()
  local kind = redis.call('TYPE', KEYS[4])['ok']
  if kind == 'none' then return false end
  if kind ~= 'string' then return 'its fence key is a ' .. kind .. ', not a string' end
  local value = redis.call('GET', KEYS[4])
  if #value > 18 or not string.match(value, '^[1-9]%d*$') then
    return 'its fence key is not a positive integer'
  end
  return false
end
local function lease_damage()
  local kind = redis.call('TYPE', KEYS[5])['ok']
  if kind == 'none' or kind == 'string' then return false end
  return 'its lease key is a ' .. kind .. ', not a string'
end
local function bookkeeping_damage()
  return fence_damage() or lease_damage()
end
"""

_LUA_QUARANTINE = f"""{_LUA_BOOKKEEPING}
-- Rename meta, items and snap to their quarantine names (KEYS 6-8), replacing an earlier
-- quarantined copy only when there is something to move (a repeated call keeps the evidence),
-- and delete a damaged fence or lease: they hold no call data, and left in place they would
-- make every later claim of this id fail. Returns the number of keys moved.
local function quarantine(ttl)
  local present = {{}}
  local moved = 0
  for i = 1, 3 do
    present[i] = redis.call('EXISTS', KEYS[i]) == 1
    if present[i] then moved = moved + 1 end
  end
  if moved > 0 then
    for i = 1, 3 do
      if present[i] then
        redis.call('RENAME', KEYS[i], KEYS[i + 5])
        redis.call('PEXPIRE', KEYS[i + 5], ttl)
      else
        redis.call('DEL', KEYS[i + 5])
      end
    end
  end
  if fence_damage() then redis.call('DEL', KEYS[4]) end
  if lease_damage() then redis.call('DEL', KEYS[5]) end
  return moved
end
"""

_LUA_REFRESH = """
local function refresh(ttl, token, lease_ms)
  for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ttl) end
  local held = redis.call('GET', KEYS[5])
  if held and string.sub(held, 1, #token + 1) == token .. ':' then
    redis.call('PEXPIRE', KEYS[5], lease_ms)
  end
end
local function push_chunked(cmd, key, first, last)
  local i = first
  while i <= last do
    local j = math.min(i + 999, last)
    redis.call(cmd, key, unpack(ARGV, i, j))
    i = j + 1
  end
end
"""

# Scripts that check a fencing token first check that fence and lease are keys this store could
# have written, and answer 'corrupt' before writing anything: a Lua error half-way through would
# leave a half-applied write behind (scripts are not rolled back).

_CLAIM_LUA = f"""-- {_SESSION_KEYS_DOC}, {_QUARANTINE_KEYS_DOC}; ARGV: owner, lease_ms, ttl_ms
{_LUA_QUARANTINE}
local damage = bookkeeping_damage()
if damage then
  local moved = quarantine(ARGV[3])
  return {{'corrupt', damage, moved}}
end
local token
if redis.call('EXISTS', KEYS[4]) == 1 then
  token = redis.call('INCR', KEYS[4])
else
  local now = redis.call('TIME')
  token = tonumber(now[1]) * 1000000 + tonumber(now[2])
  redis.call('SET', KEYS[4], string.format('%d', token))
end
local previous = redis.call('GET', KEYS[5])
redis.call('SET', KEYS[5], string.format('%d', token) .. ':' .. ARGV[1], 'PX', ARGV[2])
for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
return {{'ok', token, previous}}
"""

_RENEW_LUA = f"""-- {_SESSION_KEYS_DOC}; ARGV: token, owner, lease_ms
{_LUA_BOOKKEEPING}
local damage = bookkeeping_damage()
if damage then return {{'corrupt', damage}} end
if redis.call('GET', KEYS[4]) ~= ARGV[1] then return {{'stale', ''}} end
redis.call('SET', KEYS[5], ARGV[1] .. ':' .. ARGV[2], 'PX', ARGV[3])
return {{'ok', ''}}
"""

_RELEASE_LUA = f"""-- {_SESSION_KEYS_DOC}; ARGV: token
-- A lease that is not a string is not this token's: left for the next load or claim to handle.
if redis.call('TYPE', KEYS[5])['ok'] ~= 'string' then return 0 end
local held = redis.call('GET', KEYS[5])
if string.sub(held, 1, #ARGV[1] + 1) == ARGV[1] .. ':' then
  redis.call('DEL', KEYS[5])
  return 1
end
return 0
"""

_APPEND_LUA = f"""-- {_SESSION_KEYS_DOC}
-- ARGV: 1 token, 2 base_len, 3 k, 4 ttl_ms, 5 lease_ms, 6 snapshot_every,
--       7..6+k items, then meta field/value pairs
{_LUA_BOOKKEEPING}
{_LUA_REFRESH}
local token = ARGV[1]
local damage = bookkeeping_damage()
if damage then return {{'corrupt', damage}} end
if redis.call('GET', KEYS[4]) ~= token then return {{'stale', 0}} end
if redis.call('EXISTS', KEYS[1]) == 0 then return {{'missing', 0}} end
local snap_n = tonumber(redis.call('HGET', KEYS[1], '{_SNAP_N}') or '0')
local tail = redis.call('LLEN', KEYS[2])
local n = snap_n + tail
local base = tonumber(ARGV[2])
local k = tonumber(ARGV[3])
local status = 'ok'
if n == base then
  push_chunked('RPUSH', KEYS[2], 7, 6 + k)
  push_chunked('HSET', KEYS[1], 7 + k, #ARGV)
  n = n + k
  tail = tail + k
  if tail >= tonumber(ARGV[6]) then
    local body = table.concat(redis.call('LRANGE', KEYS[2], 0, -1), ',')
    if snap_n > 0 then body = ',' .. body end
    redis.call('APPEND', KEYS[3], body)
    redis.call('DEL', KEYS[2])
    redis.call('HSET', KEYS[1], '{_SNAP_N}', n)
  end
elseif k > 0 and n == base + k then
  status = 'dup'
else
  return {{'mismatch', n}}
end
refresh(ARGV[4], token, ARGV[5])
return {{status, n}}
"""

_WRITE_FULL_LUA = f"""-- {_SESSION_KEYS_DOC}
-- ARGV: 1 token, 2 ttl_ms, 3 lease_ms, 4 item count, 5 snap body, 6.. meta field/value pairs
{_LUA_BOOKKEEPING}
{_LUA_REFRESH}
local damage = bookkeeping_damage()
if damage then return {{'corrupt', damage}} end
if redis.call('GET', KEYS[4]) ~= ARGV[1] then return {{'stale', ''}} end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
if tonumber(ARGV[4]) > 0 then redis.call('SET', KEYS[3], ARGV[5]) end
redis.call('HSET', KEYS[1], '{_SNAP_N}', ARGV[4])
push_chunked('HSET', KEYS[1], 6, #ARGV)
refresh(ARGV[2], ARGV[1], ARGV[3])
return {{'ok', ''}}
"""

_SET_META_LUA = f"""-- {_SESSION_KEYS_DOC}; ARGV: 1 token, 2 ttl_ms, 3 lease_ms, 4.. field/value pairs
{_LUA_BOOKKEEPING}
{_LUA_REFRESH}
local damage = bookkeeping_damage()
if damage then return {{'corrupt', damage}} end
if redis.call('GET', KEYS[4]) ~= ARGV[1] then return {{'stale', ''}} end
if redis.call('EXISTS', KEYS[1]) == 0 then return {{'missing', ''}} end
push_chunked('HSET', KEYS[1], 4, #ARGV)
refresh(ARGV[2], ARGV[1], ARGV[3])
return {{'ok', ''}}
"""

_QUARANTINE_LUA = f"""-- {_SESSION_KEYS_DOC}, {_QUARANTINE_KEYS_DOC}; ARGV: ttl_ms
{_LUA_QUARANTINE}
return quarantine(ARGV[1])
"""

_INDEX_LUA = """-- KEYS: 1 a caller index; ARGV: 1 session id, 2 score (created_at), 3 entries kept, 4 ttl_ms
-- A key of another type there is deleted first (its type is returned, for the log): the index
-- only holds ids derivable from the sessions' meta, and a broken one must not stop indexing.
local kind = redis.call('TYPE', KEYS[1])['ok']
local replaced = false
if kind ~= 'none' and kind ~= 'zset' then
  redis.call('DEL', KEYS[1])
  replaced = kind
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -tonumber(ARGV[3]) - 1)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return replaced
"""


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class RedisSessionStore:
    """:class:`~.store.SessionStore` on ``redis.asyncio``; see the module docstring for keys."""

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
        if not _PREFIX_RE.match(key_prefix):
            raise StateError(
                f"invalid state key prefix {key_prefix!r}: use 1-40 letters, digits, '_', '.', '-'"
            )
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
        self._prefix = key_prefix
        self._ttl_ms = _ms(ttl)
        self._lease_ms = _ms(lease_ttl)
        self._snapshot_every = snapshot_every
        self._max_items = max_items
        self._max_bytes = max_bytes
        self._secret = caller_secret
        self._claim = client.register_script(_CLAIM_LUA)
        self._renew = client.register_script(_RENEW_LUA)
        self._release = client.register_script(_RELEASE_LUA)
        self._append = client.register_script(_APPEND_LUA)
        self._write_full = client.register_script(_WRITE_FULL_LUA)
        self._set_meta = client.register_script(_SET_META_LUA)
        self._quarantine = client.register_script(_QUARANTINE_LUA)
        self._index = client.register_script(_INDEX_LUA)

    # ------------------------------------------------------------------ keys

    @property
    def key_prefix(self) -> str:
        return self._prefix

    def session_keys(self, session_id: str) -> tuple[str, str, str, str, str]:
        """``(meta, items, snap, fence, lease)`` keys of a session, in the scripts' order."""
        _check_session_id(session_id)
        tag = f"{self._prefix}:s:{{{session_id}}}"
        return (f"{tag}:meta", f"{tag}:items", f"{tag}:snap", f"{tag}:fence", f"{tag}:lease")

    def quarantine_keys(self, session_id: str) -> tuple[str, str, str]:
        """``(meta, items, snap)`` names a corrupt session is renamed to."""
        _check_session_id(session_id)
        tag = f"{self._prefix}:q:{{{session_id}}}"
        return (f"{tag}:meta", f"{tag}:items", f"{tag}:snap")

    def with_secret(self, secret: bytes) -> RedisSessionStore:
        """This store keyed by another caller secret: callers indexed under an earlier one."""
        other = copy.copy(self)
        other._secret = secret
        return other

    def caller_key(self, caller_identity: str) -> str:
        """The caller index key of an identity (holds its HMAC, never the identity)."""
        return f"{self._prefix}:caller:{caller_hash(caller_identity, self._secret)}"

    def _session_id_of(self, key: bytes) -> str | None:
        text = key.decode("utf-8", "replace")
        for kind in ("s", "q"):
            head = f"{self._prefix}:{kind}:{{"
            if text.startswith(head) and text.endswith("}:meta"):
                return text[len(head) : -len("}:meta")]
        return None

    # ------------------------------------------------------------------ errors

    @contextmanager
    def _errors(self, session_id: str | None, action: str) -> Iterator[None]:
        """Turn redis-py's exceptions into Frontdesk's, naming the session."""
        where = f"session {session_id!r}" if session_id else "the session store"
        try:
            yield
        except StateError:
            raise
        except (
            RedisConnectionError,
            RedisTimeoutError,
            ReadOnlyError,
            TryAgainError,
            ClusterDownError,
            OSError,
        ) as exc:
            raise StateUnavailableError(
                f"Redis is unreachable while {action} {where}: {type(exc).__name__}: {exc}"
            ) from exc
        except ResponseError as exc:
            if "WRONGTYPE" in str(exc):
                raise CorruptStateError(
                    f"{where}: a stored key has the wrong Redis type ({action}): {exc}"
                ) from exc
            raise StateError(f"Redis refused {action} {where}: {exc}") from exc
        except (RedisError, RedisClusterException) as exc:
            raise StateError(f"Redis failed {action} {where}: {exc}") from exc

    def _stale(self, lease: Lease) -> StaleOwnerError:
        return StaleOwnerError(
            f"session {lease.session_id!r}: fencing token {lease.fence} of {lease.owner!r} is "
            "stale; another worker owns this session now"
        )

    def _damaged(self, session_id: str, detail: object, action: str) -> CorruptStateError:
        """The error of a write refused because the session's fence or lease is damaged."""
        return CorruptStateError(
            f"session {session_id!r} is corrupt: {_text(detail)}; {action} it was refused and "
            "nothing written (a load or a new claim of it quarantines it)"
        )

    def _script_keys(self, session_id: str) -> list[str]:
        """The eight keys of the scripts that can quarantine: session keys, quarantine names."""
        return [*self.session_keys(session_id), *self.quarantine_keys(session_id)]

    def _quarantined_as(self, session_id: str) -> str:
        return f"{self._prefix}:q:{{{session_id}}}:*"

    # ------------------------------------------------------------------ ownership

    async def claim(self, session_id: str, *, owner: str) -> Lease:
        """See :meth:`.store.SessionStore.claim`.

        A damaged fence or lease is quarantined by the claim script itself (atomically) and
        reported as ``CorruptStateError``, never as an outage: claiming the id again then
        succeeds on a clean slate, so a caller who retries is persisted again.
        """
        with self._errors(session_id, "claiming"):
            status, token, previous = await self._claim(
                keys=self._script_keys(session_id), args=[owner, self._lease_ms, self._ttl_ms]
            )
        if status == b"corrupt":
            reason = _text(token)
            where = self._quarantined_as(session_id)
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
        return Lease(session_id=session_id, owner=owner, fence=int(token), taken_from=taken_from)

    async def renew(self, lease: Lease) -> None:
        keys = self.session_keys(lease.session_id)
        with self._errors(lease.session_id, "renewing the lease of"):
            status, detail = await self._renew(
                keys=keys, args=[lease.fence, lease.owner, self._lease_ms]
            )
        if status == b"corrupt":
            raise self._damaged(lease.session_id, detail, "renewing the lease of")
        if status == b"stale":
            raise self._stale(lease)

    async def release(self, lease: Lease) -> None:
        keys = self.session_keys(lease.session_id)
        with self._errors(lease.session_id, "releasing"):
            await self._release(keys=keys, args=[lease.fence])

    # ------------------------------------------------------------------ writes

    async def create(
        self, state: SessionState, *, lease: Lease, caller_identity: str | None
    ) -> None:
        index: str | None = None
        if caller_identity is not None:
            state = state.model_copy(
                update={"caller_hash": caller_hash(caller_identity, self._secret)}
            )
            index = self.caller_key(caller_identity)
        await self._write_state(lease, state, "creating")
        if index is None:
            return
        with self._errors(state.session_id, "indexing the caller of"):
            replaced = await self._index(
                keys=[index],
                args=[state.session_id, repr(state.created_at), _CALLER_INDEX_KEEP, self._ttl_ms],
            )
        if replaced is not None:
            logger.warning(
                "session %s: caller index %s was a Redis %s, not a sorted set; deleted it and "
                "indexed the session again",
                state.session_id,
                index,
                _text(replaced),
            )

    async def rewrite(self, lease: Lease, state: SessionState) -> None:
        await self._write_state(lease, state, "rewriting")

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
        with self._errors(sid, action):
            status, detail = await self._write_full(keys=self.session_keys(sid), args=args)
        if status == b"corrupt":
            raise self._damaged(sid, detail, action)
        if status == b"stale":
            raise self._stale(lease)

    async def append(
        self,
        lease: Lease,
        *,
        items: list[dict[str, Any]],
        meta_update: dict[str, Any],
        base_len: int,
    ) -> int:
        """See :meth:`.store.SessionStore.append`; stamps ``updated_at`` unless given."""
        sid = lease.session_id
        args: list[Any] = [
            lease.fence,
            base_len,
            len(items),
            self._ttl_ms,
            self._lease_ms,
            self._snapshot_every,
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
        with self._errors(sid, "appending to"):
            status, count = await self._append(keys=self.session_keys(sid), args=args)
        if status == b"corrupt":
            raise self._damaged(sid, count, "appending to")
        if status == b"stale":
            raise self._stale(lease)
        if status == b"missing":
            raise StateError(f"session {sid!r} is not stored (expired, deleted or quarantined)")
        if status == b"mismatch":
            raise StateError(
                f"session {sid!r}: the store holds {count} items, but this write expected "
                f"{base_len} (or {base_len + len(items)} if already applied); a full rewrite "
                "is needed"
            )
        return int(count)

    async def mark_ended(self, lease: Lease) -> None:
        sid = lease.session_id
        encoded = encode_meta_update({"ended": True, "updated_at": time.time()})
        args: list[Any] = [lease.fence, self._ttl_ms, self._lease_ms]
        for name, value in encoded.items():
            args += (name, value)
        with self._errors(sid, "ending"):
            status, detail = await self._set_meta(keys=self.session_keys(sid), args=args)
        if status == b"corrupt":
            raise self._damaged(sid, detail, "ending")
        if status == b"stale":
            raise self._stale(lease)
        if status == b"missing":
            raise SessionNotFoundError(f"no stored session {sid!r} to mark as ended")

    # ------------------------------------------------------------------ reads

    async def load(self, session_id: str) -> SessionState:
        """See :meth:`.store.SessionStore.load`.

        One ``MULTI``/``EXEC`` round trip reads the five keys' types, the fence, the meta, the
        list's length, the snapshot and at most ``max_items`` list elements (so a flooded list
        costs a bounded read). Types, bookkeeping and both size bounds are checked before
        anything is decoded; a session failing any of them is quarantined.
        """
        keys = self.session_keys(session_id)
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
        with self._errors(session_id, "loading"):
            replies = await pipe.execute(raise_on_error=False)
            for reply in replies[:5]:
                if isinstance(reply, Exception):
                    raise reply
        kinds = [_text(kind) for kind in replies[:5]]
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
        if kinds[3] == "string" and not _FENCE_RE.match(bytes(fence)):
            raise await self._quarantine_session(
                session_id, "its fence key is not a positive integer"
            )
        for reply in (meta, tail_len, snap, tail):
            if isinstance(reply, Exception):
                with self._errors(session_id, "loading"):
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
            snap_n = max(0, int(meta.get(_SNAP_N.encode(), b"0")))
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
        """See :meth:`.store.SessionStore.quarantine`.

        Raises ``StateUnavailableError``/``StateError`` when Redis does not do it (the session
        then stays where it is); a session with nothing stored is not an error, only logged.
        """
        with self._errors(session_id, "quarantining"):
            moved = int(
                await self._quarantine(keys=self._script_keys(session_id), args=[self._ttl_ms])
            )
        if moved:
            logger.warning(
                "session %s quarantined (%s): %d key(s) moved to %s for inspection (kept %.0f s)",
                session_id,
                reason,
                moved,
                self._quarantined_as(session_id),
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
        where = self._quarantined_as(session_id)
        try:
            with self._errors(session_id, "quarantining"):
                await self._quarantine(keys=self._script_keys(session_id), args=[self._ttl_ms])
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

    async def _index_members(self, index: str, action: str) -> list[bytes]:
        """The members of a caller index, newest first; a wrong-typed index reads as empty.

        It is not deleted here: the indexing script of the next session created for this
        caller replaces it atomically, whereas a delete from here could race with that script
        and drop the entry it just wrote.
        """
        with self._errors(None, action):
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

    async def find_by_caller(self, caller_identity: str) -> str | None:
        """See :meth:`.store.SessionStore.find_by_caller`.

        Members that are not valid session ids (only written by something other than this
        store) are dropped from the index with a warning instead of failing the lookup, as are
        ids whose session is gone.
        """
        index = self.caller_key(caller_identity)
        members = await self._index_members(index, "looking up a caller in")
        ids: list[str] = []
        invalid: list[bytes] = []
        for member in members:
            sid = _valid_session_id(member)
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
                with self._errors(None, "looking up a caller in"):
                    await self._client.zrem(index, *invalid)
            return None
        with self._errors(None, "looking up a caller in"):
            pipe = self._client.pipeline(transaction=False)
            for sid in ids:
                pipe.exists(self.session_keys(sid)[0])
            alive = await pipe.execute()
            dead = [sid.encode() for sid, found in zip(ids, alive, strict=True) if not found]
            if dead or invalid:
                await self._client.zrem(index, *dead, *invalid)
        return next((sid for sid, found in zip(ids, alive, strict=True) if found), None)

    async def _scan_meta_keys(self, kinds: str) -> list[bytes]:
        pattern = f"{self._prefix}:{kinds}:*:meta"
        with self._errors(None, "scanning"):
            return [
                bytes(key)
                async for key in self._client.scan_iter(
                    match=pattern, count=_SCAN_BATCH, _type="hash"
                )
            ]

    async def list_sessions(self) -> list[SessionSummary]:
        keys = await self._scan_meta_keys("s")
        fields = [
            "session_id",
            "workflow",
            "caller_hash",
            "current_agent",
            "turns",
            "created_at",
            "updated_at",
            "ended",
            _SNAP_N,
        ]
        summaries: list[SessionSummary] = []
        found = [(key, sid) for key in keys if (sid := self._session_id_of(key)) is not None]
        found = [(key, sid) for key, sid in found if _SESSION_ID_RE.match(sid)]
        for start in range(0, len(found), _SCAN_BATCH):
            batch = found[start : start + _SCAN_BATCH]
            pipe = self._client.pipeline(transaction=False)
            for key, sid in batch:
                pipe.hmget(key, fields)
                pipe.llen(self.session_keys(sid)[1])
            with self._errors(None, "listing sessions in"):
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

    # ------------------------------------------------------------------ deletion

    async def _delete_keys(self, session_id: str) -> int:
        keys = [*self.session_keys(session_id), *self.quarantine_keys(session_id)]
        with self._errors(session_id, "deleting"):
            return int(await self._client.delete(*keys))

    async def delete(self, session_id: str) -> None:
        meta_key = self.session_keys(session_id)[0]
        stored_hash: str | None = None
        with self._errors(session_id, "deleting"):
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
            index = f"{self._prefix}:caller:{stored_hash}"
            with self._errors(session_id, "unindexing"):
                try:
                    await self._client.zrem(index, session_id)
                except ResponseError as exc:
                    if "WRONGTYPE" not in str(exc):
                        raise
                    # Nothing of this session can be in it; the next indexing replaces it.
                    logger.warning("caller index %s is not a sorted set; left as is", index)

    async def forget_caller(self, caller_identity: str) -> int:
        """Delete every session of a caller: those in its index and, by scanning, any other.

        The scan catches sessions whose index entry expired or was never written (the index is
        a separate key and cannot be updated in the same script as a session). Privacy requests
        are rare; a scan of the keyspace is an acceptable price for not missing one.
        """
        index = self.caller_key(caller_identity)
        wanted = orjson.dumps(caller_hash(caller_identity, self._secret))
        members = await self._index_members(index, "forgetting a caller in")
        session_ids = {sid for m in members if (sid := _valid_session_id(m)) is not None}
        keys = await self._scan_meta_keys("[sq]")
        for start in range(0, len(keys), _SCAN_BATCH):
            batch = keys[start : start + _SCAN_BATCH]
            pipe = self._client.pipeline(transaction=False)
            for key in batch:
                pipe.hget(key, "caller_hash")
            with self._errors(None, "forgetting a caller in"):
                hashes = await pipe.execute(raise_on_error=False)
            for key, stored in zip(batch, hashes, strict=True):
                sid = self._session_id_of(key)
                if sid is not None and stored == wanted and _SESSION_ID_RE.match(sid):
                    session_ids.add(sid)
        deleted = 0
        for sid in sorted(session_ids):
            if await self._delete_keys(sid):
                deleted += 1
        with self._errors(None, "forgetting a caller in"):
            await self._client.delete(index)
        return deleted

    async def ping(self) -> None:
        """Raise ``StateUnavailableError`` unless Redis answers (health checks, startup)."""
        with self._errors(None, "pinging"):
            await self._client.ping()


# ---------------------------------------------------------------------- decoding


def _check_session_id(session_id: str) -> None:
    if not _SESSION_ID_RE.match(session_id):
        raise StateError(
            f"invalid session id {session_id!r}: 1-200 characters, no whitespace, braces, "
            "glob characters or control characters"
        )


def _valid_session_id(member: bytes) -> str | None:
    """A caller index member as a session id, or None if this store could not have written it."""
    try:
        sid = member.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return sid if _SESSION_ID_RE.match(sid) else None


def _decode_session(
    session_id: str, stored_meta: dict[bytes, bytes], snap: bytes, tail: Sequence[bytes]
) -> SessionState:
    """A stored session from the load's replies; ``ValueError`` says what is wrong."""
    raw = {bytes(field).decode("utf-8"): bytes(value) for field, value in stored_meta.items()}
    snap_n = int(raw.pop(_SNAP_N, b"0"))
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


def _summary(session_id: str, values: Any, tail: Any) -> SessionSummary | None:
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


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
