"""The seam between Frontdesk and wherever sessions are kept: the store's roles and its lease.

Everything outside ``state/`` talks to these Protocols, never to Redis, so the agents and
workflows code can be tested against any implementation and the Redis details stay in
:mod:`.redis_store` and its helpers. Each caller asks for the role it uses:

- :class:`SessionOwnership` (claim, renew, release) and :class:`SessionWrites` (create, append,
  rewrite, mark_ended): :class:`CallStore`, both together, is what a live call's recorder needs;
  the :class:`~.writer.SessionWriter` needs only the writes;
- :class:`SessionLookup` (find_by_caller, load, load_recent, quarantine): what resuming a caller
  needs;
- :class:`SessionAdmin` (list_sessions, load, delete, forget_caller): what the CLI needs;
- :class:`SessionStore`: all of them, what one backend provides.

Ownership works by fencing. A worker :meth:`~SessionStore.claim`\\ s a session before writing and
gets a :class:`Lease` carrying a fencing token; every claim, including a takeover by another
worker, raises the token. Every write carries the token and the store refuses a write whose
token is not the current one (:class:`~frontdesk.errors.StaleOwnerError`). So when a caller drops
and reconnects to another worker, the old worker's late writes cannot interleave with the new
worker's, however slow the old one is. The lease's TTL only says whether the owner still looks
alive; the token, not the TTL, is what protects the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from .models import SessionState, SessionSummary
from .recent import RecentSession


@dataclass(frozen=True, kw_only=True, slots=True)
class Lease:
    """Proof of ownership of one session, passed to every write."""

    session_id: str
    """The session this lease is for."""
    owner: str
    """Who holds it: a worker/job id, for logs and for the next claimer to see."""
    fence: int
    """The fencing token: writes succeed only while it is the session's current token."""
    taken_from: str | None = None
    """The owner whose still-live lease this claim took over, if any (for logging)."""


class SessionOwnership(Protocol):
    """Who owns a session: fenced leases.

    Errors of every role are :mod:`frontdesk.errors` types only: ``StateUnavailableError`` when
    the backend cannot be reached (retry later), ``StaleOwnerError`` when another worker owns the
    session, ``CorruptStateError`` when a stored session cannot be decoded,
    ``SessionNotFoundError`` when there is nothing under an id, ``StateError`` for anything else.
    """

    async def claim(self, session_id: str, *, owner: str) -> Lease:
        """Take ownership of ``session_id`` (created or not), taking over any current owner.

        Raises the fencing token and starts a lease with the store's lease TTL. When the
        session's ownership bookkeeping is damaged, it is quarantined and ``CorruptStateError``
        raised (never ``StateUnavailableError``: Redis is fine, the data is not); claiming the
        id again then succeeds on a clean slate.
        """
        ...

    async def renew(self, lease: Lease) -> None:
        """Extend the lease; ``StaleOwnerError`` if someone claimed the session since."""
        ...

    async def release(self, lease: Lease) -> None:
        """Give the lease up (end of call). A no-op when the lease is no longer current."""
        ...


class SessionWrites(Protocol):
    """Fenced writes of one session's data, each under the :class:`Lease` of a claim."""

    async def create(
        self, state: SessionState, *, lease: Lease, caller_identity: str | None
    ) -> None:
        """Write a new session (meta, items, caller index entry) under ``lease``.

        ``caller_identity`` is hashed before it is stored; None leaves the session out of the
        caller index. A session already stored under the same id is replaced.
        """
        ...

    async def append(
        self,
        lease: Lease,
        *,
        items: list[dict[str, Any]],
        meta_update: dict[str, Any],
        base_len: int,
    ) -> int:
        """Append ``items`` after the first ``base_len`` stored ones and apply ``meta_update``.

        One round trip. Idempotent: when the stored count already equals
        ``base_len + len(items)`` an earlier attempt was applied (its reply was lost) and
        nothing is written again. Any other count raises ``StateError``. Returns the stored item
        count afterwards.
        """
        ...

    async def rewrite(self, lease: Lease, state: SessionState) -> None:
        """Replace the stored session with ``state`` entirely (resync after lost writes)."""
        ...

    async def mark_ended(self, lease: Lease) -> None:
        """Record that the call ended normally, so it is never resumed."""
        ...


class WriteAcknowledgement(Protocol):
    """What a store's write waits for after Redis applied it (``[state] durability``).

    Called with the session id and its fence key once each write script has succeeded; raises
    ``StateUnavailableError`` when the write does not count yet (the writer retries it).
    """

    async def __call__(self, session_id: str, fence_key: str) -> None: ...


class CallStore(SessionOwnership, SessionWrites, Protocol):
    """What a live call's recorder uses: ownership and writes."""


class SessionLookup(Protocol):
    """Finding and reading a caller's stored session: what resuming needs."""

    async def load(self, session_id: str) -> SessionState:
        """Read a whole session; a corrupt one is quarantined and ``CorruptStateError`` raised.

        "Corrupt" includes damaged ownership bookkeeping and a session over the store's size
        bound: decoding an unbounded history would stall every call on the worker.
        """
        ...

    async def load_recent(self, session_id: str, *, window: int) -> RecentSession:
        """Read a session decoding only its latest ``window`` chat items (what a resume needs).

        The items before them come back as stored (``RecentSession.earlier``), checked only
        structurally; decoding them later raises ``ValueError`` when they are damaged. The
        rest is as :meth:`load`: a corrupt session (in its meta, bookkeeping, bounds, window or
        the structure of its older items) is quarantined and ``CorruptStateError`` raised.
        """
        ...

    async def quarantine(self, session_id: str, reason: str) -> None:
        """Move a stored session aside, as a load does with a corrupt one, and log ``reason``.

        For damage only the caller can see: the store keeps chat items opaque, so items that
        are valid JSON but not decodable as LiveKit chat items are found by the session layer,
        which quarantines the session this way and starts the caller afresh. The session is
        then gone for :meth:`load` and :meth:`find_by_caller` but kept for a human to inspect.
        Nothing stored under the id is not an error. Raises ``StateUnavailableError`` when the
        backend cannot be reached (the session then stays where it is).
        """
        ...

    async def find_by_caller(self, caller_identity: str) -> str | None:
        """The id of the caller's most recently created session still stored, if any."""
        ...


class SessionAdmin(Protocol):
    """Operating on stored sessions as a whole: what the CLI's ``sessions`` command needs."""

    async def load(self, session_id: str) -> SessionState:
        """Read a whole session (see :meth:`SessionLookup.load`)."""
        ...

    async def list_sessions(self) -> list[SessionSummary]:
        """A summary of every stored session, most recently updated first."""
        ...

    async def delete(self, session_id: str) -> None:
        """Remove one session and its caller index entry. A no-op if it does not exist."""
        ...

    async def forget_caller(self, caller_identity: str) -> int:
        """Delete every session of a caller and the caller's index (privacy request).

        Returns the number of sessions deleted.
        """
        ...


class SessionStore(CallStore, SessionLookup, SessionAdmin, Protocol):
    """Persistence of sessions, every role: fenced writes, consistent reads, privacy-aware lookup."""
