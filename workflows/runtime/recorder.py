"""Feeds a live ``AgentSession`` into the state store as the call goes.

At the end of every agent turn (LiveKit's ``agent_state_changed`` event back to ``listening``)
the recorder hands whatever is new in ``session.history`` (the caller's words, tool calls and
outputs, handoff items, replies) plus the meta fields that changed (agent, caller data, greeted
set, handoff trail, turn count) to a :class:`~frontdesk.state.writer.SessionWriter`, which
persists in the background as one write: the reply path never waits for Redis. In a handoff
turn the old agent listens once before the new agent replies; that is not the end of the
caller's turn, so the write waits for the new agent (one write per caller turn). Items are tracked by id, not by position, because LiveKit orders history by
creation time and an item may land before the last one.

The recorder also owns the session's ownership: it claims the session (lease + fencing token),
renews the lease while the call is live, and, when Redis is unreachable at call start, lets the
call go on unpersisted while it keeps trying to claim; once it can, it stores the whole call so
far in one write and carries on appending.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from livekit.agents import AgentSession
from livekit.agents.llm import ChatContext
from livekit.agents.voice.events import AgentStateChangedEvent

from frontdesk.agents.userdata import CallerData
from frontdesk.errors import StaleOwnerError, StateError
from frontdesk.state.crypto import Sealer
from frontdesk.state.identity import caller_hash
from frontdesk.state.models import CallRecord, SessionState
from frontdesk.state.store import CallStore, Lease
from frontdesk.state.writer import SessionWriter
from frontdesk.workflows.definition import StateSection, Workflow
from frontdesk.workflows.runtime.earlier import EarlierItems

logger = logging.getLogger(__name__)

CLAIM_RETRY_MAX = 5.0
"""Longest pause between two claim attempts while Redis is unreachable (seconds)."""


def serialize_items(items: list[Any]) -> list[dict[str, Any]]:
    """LiveKit chat items in their own serialised form (timestamps kept: results order by them)."""
    serialized: list[dict[str, Any]] = ChatContext(items).to_dict(exclude_timestamp=False)["items"]
    return serialized


def _caller_messages(items: list[dict[str, Any]]) -> int:
    return sum(1 for item in items if item.get("type") == "message" and item.get("role") == "user")


def meta_of(data: CallerData, *, turns: int, calls: list[CallRecord]) -> dict[str, Any]:
    """The per-session fields stored beside the chat items."""
    meta: dict[str, Any] = {
        "calls": [call.model_dump(mode="json") for call in calls],
        "current_agent": data.current_agent,
        "caller_data": dict(data.fields),
        "greeted": sorted(data.greeted),
        "handoff_trail": [entry.model_dump(mode="json") for entry in data.handoff_trail],
        "turns": turns,
        "updated_at": time.time(),
    }
    if data.transfer is not None:  # only then: other sessions' meta keeps its fields
        meta["transfer"] = data.transfer.model_dump(mode="json")
    return meta


class SessionRecorder:
    """Persists one session: claim, then every change, in the background."""

    def __init__(
        self,
        *,
        session: AgentSession[CallerData],
        store: CallStore,
        settings: StateSection,
        workflow: Workflow,
        owner: str,
        caller_identity: str | None,
        caller_secret: bytes,
        resumed_from: SessionState | None = None,
        earlier: EarlierItems | None = None,
        held: bool = False,
        reindex: bool = False,
        sealer: Sealer | None = None,
    ) -> None:
        self._session = session
        self._store = store
        self._settings = settings
        self._workflow = workflow
        self._caller_hash = caller_hash(caller_identity, caller_secret) if caller_identity else None
        self._owner = owner
        self._caller_identity = caller_identity
        self._resumed_from = resumed_from
        self._earlier = earlier
        """The stored items older than ``resumed_from.items`` (a resume rebuilds only the latest)."""
        self._earlier_turns = (
            max(0, resumed_from.turns - _caller_messages(resumed_from.items))
            if resumed_from is not None and earlier is not None
            else 0
        )
        """Caller turns among the earlier items (the stored count, less the rebuilt window's)."""
        self._created_at = resumed_from.created_at if resumed_from is not None else time.time()
        self._persisted: set[str] = (
            {item["id"] for item in resumed_from.items} if resumed_from else set()
        )
        self._stored_once = resumed_from is not None
        self._calls: list[CallRecord] = list(resumed_from.calls) if resumed_from else []
        self.writer: SessionWriter | None = None
        self._sent_meta: dict[str, Any] = {}
        self._awaiting_arrival = False  # a done callback is set on the arrival reply
        self._claim_lock = asyncio.Lock()
        self._closing = False
        self.lease: Lease | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._attached = False
        self._held = held
        self._reindex = reindex
        self._sealer = sealer
        """Encrypts every stored string holding a sensitive value (None: nothing is sensitive)."""
        """Index the caller again when claiming (found under an earlier secret)."""
        """Held: nothing is claimed or written until :meth:`release` (an unverified caller)."""
        self._excluded: set[str] = set()
        """Items never stored: the turns of a caller before they verified."""
        self._originals: dict[str, dict[str, Any]] = (
            {item["id"]: item for item in resumed_from.items} if resumed_from and held else {}
        )
        """Stored items as stored: the live history of a held call is a redacted copy."""

    @property
    def session_id(self) -> str:
        data: CallerData = self._session.userdata
        return data.session_id

    @property
    def turns(self) -> int:
        return self._earlier_turns + sum(
            1
            for item in self._session.history.items
            if item.type == "message" and item.role == "user"
        )

    # ------------------------------------------------------------------ ownership

    async def start(self) -> None:
        """Claim the session now, or keep trying in the background if Redis is unreachable.

        A held recorder claims nothing: an unverified caller must not take the session over
        from its owner, nor write anything into it.
        """
        if self._held:
            return
        try:
            await self._claim()
        except StaleOwnerError:
            raise
        except (TimeoutError, StateError, OSError) as exc:
            logger.warning(
                "session %s: state store unreachable at call start (%s); the call goes on "
                "unpersisted and keeps retrying",
                self.session_id,
                exc,
            )
            self._tasks.append(asyncio.create_task(self._claim_until_done()))

    async def release(self) -> None:
        """The caller verified: persist from now on, without the turns before this moment."""
        if not self._held:
            return
        self._held = False
        self._excluded = {
            item.id for item in self._session.history.items if item.id not in self._persisted
        }
        await self.start()
        self.capture()

    async def _claim(self) -> None:
        # One claimer at a time: the background retry and a closing flush may both try.
        async with self._claim_lock:
            if self.writer is None:
                await self._claim_now()

    async def _claim_now(self) -> None:
        lease = await self._store.claim(self.session_id, owner=self._owner)
        if lease.taken_from:
            logger.info(
                "session %s: taken over from %s (fence %d)",
                self.session_id,
                lease.taken_from,
                lease.fence,
            )
        # A resumed session already stored as it is needs no write: skip serialising it.
        stored = self._resumed_from
        unchanged = stored is not None and not self._new_items() and not self._reindex
        if not (self._stored_once and unchanged):
            stored = self._plain_state()
            sealed = self._seal_state(stored)
            if self._stored_once and not self._reindex:
                await self._store.rewrite(lease, sealed)
            else:
                await self._store.create(sealed, lease=lease, caller_identity=self._caller_identity)
            self._persisted.update(item["id"] for item in stored.items)
        assert stored is not None
        self._stored_once = True
        self._sent_meta = stored.model_dump(mode="json", include=set(self._meta()))
        self.lease = lease
        self.writer = SessionWriter(
            store=self._store,
            lease=lease,
            base_len=len(stored.items)
            + (self._earlier.count if stored is self._resumed_from and self._earlier else 0),
            full_state=self.full_state,
            queue_limit=self._settings.queue_limit,
        )
        self._tasks.append(asyncio.create_task(self._renew_lease(lease)))

    async def _claim_until_done(self) -> None:
        delay = 0.1
        while not self._closing:
            await asyncio.sleep(delay)
            try:
                await self._claim()
            except StaleOwnerError:
                return
            except (TimeoutError, StateError, OSError):
                delay = min(delay * 2, CLAIM_RETRY_MAX)
                continue
            logger.warning(
                "session %s: state store reachable again; the call is persisted from now",
                self.session_id,
            )
            return

    async def _renew_lease(self, lease: Lease) -> None:
        interval = max(self._settings.lease_ttl / 3, 0.05)
        while not self._closing:
            await asyncio.sleep(interval)
            try:
                await self._store.renew(lease)
            except StaleOwnerError:
                logger.warning(
                    "session %s: another worker owns this session now; this worker stops writing it",
                    self.session_id,
                )
                return
            except (TimeoutError, StateError, OSError) as exc:
                logger.debug(
                    "session %s: lease renewal failed (%s); retrying", self.session_id, exc
                )

    # ------------------------------------------------------------------ the session's changes

    def attach(self) -> None:
        self._session.on("agent_state_changed", self._on_agent_state)
        self._attached = True

    def detach(self) -> None:
        if self._attached:
            self._session.off("agent_state_changed", self._on_agent_state)
            self._attached = False

    def _on_agent_state(self, event: AgentStateChangedEvent) -> None:
        # The agent listening again is the end of its turn: everything the turn added (the
        # caller's words, tool calls, handoffs, replies, caller data) goes out as one write.
        # In a handoff turn the old agent listens once before the new one replies: that is
        # not the end of the caller's turn, so the write waits for the new agent's reply (one
        # write per caller turn, handoff turns included).
        # The route's say line before that reply ends in listening too: the write waits for
        # the reply itself.
        if event.new_state != "listening" or self._handing_off():
            return
        data: CallerData = self._session.userdata
        reply = data.arrival_reply
        if reply is not None and not reply.done():
            if not self._awaiting_arrival:
                self._awaiting_arrival = True
                reply.add_done_callback(self._on_arrival_reply_done)
            return
        self.capture()

    def _on_arrival_reply_done(self, _reply: object) -> None:
        self._awaiting_arrival = False
        data: CallerData = self._session.userdata
        data.arrival_reply = None
        self.capture()

    def _handing_off(self) -> bool:
        """True between a transfer and the new agent starting (its ``agent_handoff`` item)."""
        data: CallerData = self._session.userdata
        if data.pending_handoff is not None:
            return True
        if not data.handoff_trail:
            return False
        handed_at = data.handoff_trail[-1].at
        for item in reversed(self._session.history.items):
            if item.type == "agent_handoff":
                return item.created_at < handed_at
        return False

    def capture(self) -> int:
        """Submit what changed since the last capture; the number of new items (0 if unclaimed).

        Only the meta fields that changed are sent (``updated_at`` always is: it drives the
        resume window).
        """
        if self.writer is None:
            return 0
        new_items = self._new_items()
        self._persisted.update(item.id for item in new_items)
        meta = self._meta()
        changed = {
            k: v for k, v in meta.items() if k == "updated_at" or self._sent_meta.get(k) != v
        }
        self._sent_meta = meta
        if new_items or len(changed) > 1:
            items = serialize_items(new_items)
            if self._sealer is not None:
                items = self._sealer.seal(items, context=self.session_id)
                changed = self._sealer.seal(changed, context=self.session_id)
            self.writer.submit(items, changed)
        return len(new_items)

    def _new_items(self) -> list[Any]:
        return [
            item
            for item in self._session.history.items
            if item.id not in self._persisted and item.id not in self._excluded
        ]

    def _stored_items(self) -> list[dict[str, Any]]:
        """Every item to store, in order: originals as stored, the others serialised now.

        A resumed call's earlier items (older than what the resume rebuilt) come first, as
        stored; found corrupt, they are left out (the damaged copy is quarantined).
        """
        earlier = self._earlier.items() if self._earlier is not None else []
        live = [item for item in self._session.history.items if item.id not in self._excluded]
        if not self._originals:
            return [*earlier, *serialize_items(live)]
        # the originals first (the redacted live copy may lack some), then what came after
        newer = serialize_items([item for item in live if item.id not in self._originals])
        return [*earlier, *self._originals.values(), *newer]

    def _meta(self) -> dict[str, Any]:
        return meta_of(self._session.userdata, turns=self.turns, calls=self._calls)

    def record_call(self, record: CallRecord) -> None:
        """Add this connection's record; stored with the next write (the final flush)."""
        self._calls.append(record)

    def full_state(self) -> SessionState:
        """The whole call as it is in memory, sealed: what a full rewrite stores after an outage.

        It may hold lines not captured yet (the caller spoke while the failed write was out):
        those count as persisted from now, so the next capture does not send them again.
        """
        state = self._plain_state()
        self._persisted.update(item["id"] for item in state.items)
        return self._seal_state(state)

    def _seal_state(self, state: SessionState) -> SessionState:
        if self._sealer is None:
            return state
        sealed = self._sealer.seal(state.model_dump(mode="json"), context=state.session_id)
        return SessionState.model_validate(sealed)

    def _plain_state(self) -> SessionState:
        data: CallerData = self._session.userdata
        return SessionState(
            session_id=data.session_id,
            workflow=self._workflow.name,
            workflow_hash=self._workflow.content_hash,
            caller_hash=self._caller_hash,
            created_at=self._created_at,
            items=self._stored_items(),
            **self._meta(),
        )

    async def flush(self, timeout: float) -> bool:
        """Capture and wait for Redis to acknowledge everything so far.

        A session still unclaimed (Redis was down at call start) gets one claim attempt within
        ``timeout``, which stores the whole call so far.
        """
        deadline = time.monotonic() + timeout
        if self._held:
            return True  # an unverified caller's call stores nothing, by design
        if self.writer is None:
            try:
                await asyncio.wait_for(self._claim(), timeout)
            except StaleOwnerError:
                return False
            except (TimeoutError, StateError, OSError) as exc:
                logger.warning("session %s: still unclaimed, not stored: %s", self.session_id, exc)
                return False
        self.capture()
        assert self.writer is not None
        return await self.writer.flush(max(deadline - time.monotonic(), 0.0))

    async def aclose(self, timeout: float, *, mark_ended: bool = False) -> bool:
        """Final flush, then stop writing and give the lease up. True if the end state is stored.

        ``mark_ended`` (a deliberate hang-up) then marks the stored session ended, so it is
        never resumed; a held (unverified) call never marks anything.
        """
        held = self._held
        saved = await self.flush(timeout)
        if mark_ended and saved and not held and self.lease is not None:
            try:
                await asyncio.wait_for(self._store.mark_ended(self.lease), timeout)
                logger.info(
                    "session %s: session ended (a later call starts fresh)", self.session_id
                )
            except Exception as exc:
                logger.warning("session %s: could not mark it ended: %s", self.session_id, exc)
        self.detach()
        self._closing = True
        for task in self._tasks:
            task.cancel()
        # Bounded: on Python 3.11 a cancellation can be swallowed inside a pooled-connection
        # wait; the loops also stop on ``_closing``, so a stray task ends by itself.
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=1.0)
        if self.writer is not None:
            with contextlib.suppress(Exception):
                await self.writer.aclose(timeout)
        if self.lease is not None:
            try:
                await asyncio.wait_for(self._store.release(self.lease), timeout)
            except Exception as exc:
                logger.warning("session %s: could not release its lease: %s", self.session_id, exc)
        return saved
