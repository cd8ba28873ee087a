"""Session assembly: one call = one ``AgentSession`` on the start agent or the resumed one.

This is where the layers meet, in this order (the state is consulted before any agent exists):

1. look the caller up in the state store and decide, with :func:`frontdesk.state.resume.plan_resume`,
   whether they resume (same agent, saved history and caller data, no greeting) or start fresh;
2. build the ``AgentSession[CallerData]`` with the profile's pipeline and the right first agent;
3. claim the session (lease + fencing token) and attach a recorder that persists every change in
   the background.

A broken Redis never stops a call: the lookup failing means a fresh start, a claim failing means
the call goes on unpersisted while the writer keeps retrying.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from livekit import rtc
from livekit.agents import AgentSession
from livekit.agents.llm import ChatContext
from livekit.agents.voice.agent_session import SessionConnectOptions
from livekit.agents.voice.room_io import RoomOptions
from livekit.agents.voice.run_result import RunResult
from pydantic import Field

from frontdesk import telemetry
from frontdesk.agents.call_guard import CallGuard, livekit_error_limit
from frontdesk.agents.flow_agent import AgentFactory, Entry, FlowAgent
from frontdesk.agents.handoff import context_for_handoff
from frontdesk.agents.offline_brain import OfflineBrain
from frontdesk.agents.pipeline import Pipeline
from frontdesk.agents.transfer import CallLine
from frontdesk.agents.userdata import CallerData
from frontdesk.agents.verification import VerificationGate, withheld_history
from frontdesk.errors import CorruptStateError, SessionNotFoundError, StateError
from frontdesk.state.attempts import AttemptCounter, MemoryAttemptCounter
from frontdesk.state.crypto import DataKeys, Sealer, open_sealed
from frontdesk.state.identity import CallerKind, caller_hash, identity_hint, namespaced_identity
from frontdesk.state.models import CallRecord, SessionState
from frontdesk.state.resume import ResumePlan, plan_resume
from frontdesk.state.store import SessionLookup, SessionStore
from frontdesk.state.tokens import check_token, issue_token
from frontdesk.state.versions import WorkflowVersions
from frontdesk.workflows.definition import ContextPolicy, StateSection, TrustMode, Workflow
from frontdesk.workflows.definition.field_types import FieldValue, as_text
from frontdesk.workflows.definition.patterns import span_finder
from frontdesk.workflows.definition.versions import version_document, workflow_from_document
from frontdesk.workflows.runtime.chat_items import chat_context
from frontdesk.workflows.runtime.earlier import EarlierItems
from frontdesk.workflows.runtime.recorder import SessionRecorder
from frontdesk.workflows.runtime.transcript import Transcript, build_transcript

logger = logging.getLogger(__name__)

SESSION_CLOSE_TIMEOUT = 3.0
"""Seconds LiveKit's ``AgentSession.aclose`` may take before the final save goes ahead anyway."""
CLOSE_FLUSH_TIMEOUT = 5.0
"""Seconds a closing call waits for Redis to acknowledge its last writes."""


class SessionMedia(Protocol):
    """Audio input and outputs set on a session before it starts (no room)."""

    def attach(self, session: AgentSession[Any]) -> None: ...


@dataclass(frozen=True)
class Persistence:
    """What a call needs to persist and resume: the store, its settings and the caller secret."""

    store: SessionStore
    settings: StateSection
    caller_secret: bytes
    owner: str = field(default_factory=lambda: f"worker-{uuid.uuid4().hex[:8]}")
    previous_secrets: tuple[bytes, ...] = ()
    """Earlier caller secrets (rotation): tokens they signed still verify."""
    attempts: AttemptCounter = field(default_factory=MemoryAttemptCounter)
    """Failed verification attempts per caller (Redis-backed from ``open_persistence``)."""

    data_keys: DataKeys | None = None
    """Keys sealing sensitive fields at rest; None: derived from ``caller_secret`` (development)."""
    versions: WorkflowVersions | None = None
    """The workflow versions live sessions use (live reload); None: a resumed call always runs
    the current workflow."""

    @property
    def secrets(self) -> tuple[bytes, ...]:
        return (self.caller_secret, *self.previous_secrets)

    @property
    def keys(self) -> DataKeys:
        return self.data_keys or DataKeys.from_env(self.caller_secret, env={})


@dataclass
class Call:
    """One live call: its ``AgentSession`` and the persistence attached to it."""

    session: AgentSession[CallerData]
    session_id: str
    plan: ResumePlan | None
    opening: RunResult[Any] | None
    started_at: float
    persistence: Persistence | None = None
    recorder: SessionRecorder | None = None
    report: CallReport | None = None
    """Set once the call has ended."""
    resume_token: str | None = None
    """The signed token the caller's app presents to resume this session (see state/tokens.py);
    None while an unverified caller holds the call."""
    gate: VerificationGate | None = None
    """Set when the caller resumed by caller ID and must verify before sensitive data returns."""
    trust: TrustMode | None = None
    guard: CallGuard | None = None
    earlier: EarlierItems | None = None
    """A resumed call's stored items older than the rebuilt window (not in ``session.history``)."""

    @property
    def ended_reason(self) -> str | None:
        """Why the call ended by itself (e.g. the model kept failing); None while it goes on."""
        return self.guard.ended_reason if self.guard is not None else None

    @property
    def transferred(self) -> bool:
        """True once the caller was passed to a human (``[agents.<a>.transfer]``)."""
        return self.session.userdata.transfer is not None

    @property
    def finished(self) -> str | None:
        """Why the flow ended the call (a final agent, an end_call); None while it goes on."""
        return self.session.userdata.finished

    @property
    def resumed(self) -> bool:
        return self.plan is not None and self.plan.kind == "resume"

    @property
    def userdata(self) -> CallerData:
        return self.session.userdata

    def transcript(self) -> Transcript:
        """Everything said in the session: the earlier stored items, then ``session.history``."""
        earlier = self.earlier.transcript_items() if self.earlier is not None else []
        return build_transcript(self.session_id, [*earlier, *self.session.history.items])

    async def flush(self, timeout: float = CLOSE_FLUSH_TIMEOUT) -> bool:
        """Persist everything so far; True once Redis has acknowledged it (or nothing to persist)."""
        if self.recorder is None:
            return True
        return await self.recorder.flush(timeout)

    async def aclose(
        self,
        reason: str = "caller left",
        *,
        metrics: dict[str, Any] | None = None,
        hung_up: bool = False,
    ) -> CallReport:
        """End the call: close the session, save the final state with this call's record.

        The stored session is kept (not marked ended) so a caller who dropped can resume within
        the resume window. ``hung_up`` (a deliberate hang-up) marks it ended instead when
        ``[state.resume] end_on_hangup`` is on, and so does a call the flow ended (a ``final``
        agent, an ``end_call``): a later call starts fresh. ``metrics``
        (LiveKit's, aggregated per agent) go into the record.
        """
        if self.report is not None:
            return self.report
        try:
            await asyncio.wait_for(self.session.aclose(), SESSION_CLOSE_TIMEOUT)
        except Exception as exc:  # a session that fails or hangs closing must not lose the save
            logger.warning("session %s: closing the AgentSession failed: %r", self.session_id, exc)
        if self.earlier is not None:
            await self.earlier.check()  # (quarantines damaged older items before the last save)
        transcript = self.transcript()
        if self.transferred:
            assert self.userdata.transfer is not None
            reason = f"transferred to a human ({self.userdata.transfer.mode})"
        record = CallRecord(
            started_at=self.started_at,
            ended_at=time.time(),
            reason=reason,
            resumed=self.resumed,
            caller_turns=transcript.caller_turns,
            agents=transcript.agents_visited,
            metrics=metrics or {},
        )
        saved = True
        if self.recorder is not None:
            self.recorder.record_call(record)
            end = self.finished is not None or (
                hung_up
                and (self.persistence is None or self.persistence.settings.resume.end_on_hangup)
            )
            # passed to a human: never resumed as an AI call, whatever end_on_hangup says
            end = end or self.transferred
            saved = await self.recorder.aclose(CLOSE_FLUSH_TIMEOUT, mark_ended=end)
            if not saved:
                logger.error(
                    "session %s: final state NOT acknowledged by Redis within %.0fs (%s)",
                    self.session_id,
                    CLOSE_FLUSH_TIMEOUT,
                    reason,
                )
        self.report = CallReport(
            session_id=self.session_id,
            saved=saved,
            persisted=self.recorder is not None,
            **record.model_dump(),
        )
        return self.report


class CallReport(CallRecord):
    """What :meth:`Call.aclose` returns: the stored record, plus whether Redis acknowledged it."""

    session_id: str
    saved: bool = Field(description="True once Redis acknowledged the final state.")
    persisted: bool = Field(
        default=True, description="False for a call that ran without Redis (nothing to save)."
    )

    @property
    def duration(self) -> float:
        return self.ended_at - self.started_at


@dataclass(frozen=True)
class ResumeLookup:
    """How a call starts, and the latest stored items already decoded into LiveKit items."""

    plan: ResumePlan
    history: ChatContext | None
    """The latest ``[state.resume] context_items`` stored items (all of them in a short call)."""
    trust: TrustMode = "caller_id"
    index_caller: bool = True
    """False when this call must not become the caller's latest session (a locked-out identity)."""
    earlier: EarlierItems | None = None
    """The stored items before ``history``, kept as stored (None: there are none)."""
    workflow: Workflow | None = None
    """The workflow version the call runs when it is not the current one: a resumed call keeps
    the version it started with while that version is kept (live reload)."""


def _fresh(workflow: Workflow, reason: str) -> ResumePlan:
    return ResumePlan(kind="fresh", state=None, agent=workflow.start, reason=reason)


async def _refusal(
    workflow: Workflow,
    persistence: Persistence,
    identity: str,
    trust: TrustMode,
    resume_token: str | None,
) -> tuple[str | None, str | None]:
    """``(session id to load, None)`` or ``(None, why the caller may not resume)``."""
    store = persistence.store
    if trust == "token":
        if not resume_token:
            return None, "no resume token presented (trust = 'token')"
        check = check_token(resume_token, secrets=persistence.secrets, now=time.time())
        if not check.ok:
            return None, check.problem
        return check.session_id, None
    if trust == "caller_id+verify" and workflow.sensitive_fields:
        hashed = caller_hash(identity, persistence.caller_secret)
        failures = await persistence.attempts.failures(hashed)
        if failures >= persistence.settings.resume.verify_attempts:
            return None, f"caller#{hashed[:8]} is locked out of verification"
    found = await store.find_by_caller(identity)
    with_secret: Callable[[bytes], SessionStore] | None = getattr(store, "with_secret", None)
    for old in persistence.previous_secrets if found is None and with_secret else ():
        assert with_secret is not None
        found = await with_secret(old).find_by_caller(identity)
        if found is not None:
            logger.info("session %s: found under an earlier state secret; re-indexed", found)
            return found, None
    return found, None


async def find_resume_plan(
    workflow: Workflow,
    persistence: Persistence,
    caller_identity: str | None,
    *,
    caller_kind: CallerKind = "sip",
    resume_token: str | None = None,
) -> ResumeLookup:
    """Look the caller up and decide how the call starts. Never raises: a failure is a fresh start.

    ``caller_identity`` is the namespaced identity (:func:`namespaced_identity`). Who may resume
    is ``[state.resume] trust`` for ``caller_kind``: with ``token`` only a valid token naming a
    session of this very caller resumes it (forged, expired or foreign ones are logged and
    start fresh); with ``caller_id`` and ``caller_id+verify`` the caller index is used.

    Stored items that are valid JSON but not LiveKit chat items make the session corrupt too:
    it is quarantined like any other, and the caller starts fresh.
    """
    trust = persistence.settings.resume.trust_for(caller_kind)
    state: SessionState | None = None
    history: ChatContext | None = None
    earlier: EarlierItems | None = None
    started_ns, quarantined = time.time_ns(), False
    if caller_identity:
        store: SessionLookup = persistence.store
        try:
            session_id, refused = await _refusal(
                workflow, persistence, caller_identity, trust, resume_token
            )
            if refused is not None:
                who = identity_hint(caller_identity, persistence.caller_secret)
                logger.warning("%s may not resume: %s; starting fresh", who, refused)
                locked = "locked out" in refused
                return ResumeLookup(
                    plan=_fresh(workflow, refused), history=None, trust=trust,
                    index_caller=not locked,
                )  # fmt: skip
            if session_id is not None:
                window = persistence.settings.resume.context_items
                recent = await store.load_recent(session_id, window=window)
                state = open_state(recent.state, workflow, persistence)
                history = _decode_history(state)
                if recent.earlier.count:
                    earlier = EarlierItems(
                        recent.earlier,
                        keys=persistence.keys if workflow.sensitive_fields else None,
                        quarantine=functools.partial(store.quarantine, session_id),
                    )
                if history is None:
                    await store.quarantine(session_id, "stored items are not LiveKit chat items")
                    state, quarantined = None, True
                elif trust == "token" and not _owned_by(state, caller_identity, persistence):
                    logger.warning(
                        "%s presented a resume token of another caller's session %s; starting "
                        "fresh",
                        identity_hint(caller_identity, persistence.caller_secret),
                        session_id,
                    )
                    return ResumeLookup(
                        plan=_fresh(workflow, "foreign resume token"), history=None, trust=trust
                    )
        except CorruptStateError as exc:
            logger.warning(
                "caller's stored session is corrupt and was quarantined; starting fresh: %s", exc
            )
            state, quarantined = None, True
        except SessionNotFoundError:
            logger.warning("the session a resume token names is gone; starting fresh")
            state = None
        except (StateError, OSError, ConnectionError) as exc:
            logger.warning("state store unreachable at call start; starting fresh: %s", exc)
            state = None
    version = await _started_version(workflow, persistence, state)
    runs = version or workflow
    plan = plan_resume(
        state,
        now=time.time(),
        resume_window=persistence.settings.resume_window,
        workflow_hash=runs.content_hash,
        known_agents=set(runs.config.agents),
        start_agent=runs.start,
    )
    telemetry.call_started(
        workflow.name, plan, state, quarantined=quarantined, started_ns=started_ns
    )
    resumed = state is not None and plan.kind == "resume"
    return ResumeLookup(
        plan=plan,
        history=history if state is not None else None,
        trust=trust,
        earlier=earlier if resumed else None,
        workflow=version if plan.kind == "resume" else None,
    )


async def _started_version(
    workflow: Workflow, persistence: Persistence, state: SessionState | None
) -> Workflow | None:
    """The kept version a stored session started with, when the config has changed since;
    None when it is the current one, or gone (then the current workflow's rules apply)."""
    if state is None or state.ended or persistence.versions is None:
        return None
    if state.workflow_hash == workflow.content_hash:
        return None
    try:
        document = await persistence.versions.get(state.workflow_hash)
    except (StateError, OSError, ConnectionError, ValueError) as exc:
        logger.warning("kept workflow versions unreachable; resuming on the current one: %s", exc)
        return None
    if document is None:
        logger.info(
            "session %s: its workflow version %s is gone; the current %s applies",
            state.session_id,
            state.workflow_hash,
            workflow.content_hash,
        )
        return None
    body = _verified(document, state.workflow_hash, persistence.secrets)
    if body is None:
        logger.warning(
            "session %s: kept workflow version %s is not signed with the state secret; not "
            "used (the current workflow applies)",
            state.session_id,
            state.workflow_hash,
        )
        return None
    kept = workflow_from_document(body, expected_hash=state.workflow_hash)
    if kept is not None and kept.name != workflow.name:
        return None
    return kept


def _signature(content_hash: str, body: bytes, secret: bytes) -> bytes:
    return (
        hmac.new(secret, content_hash.encode() + b"\n" + body, hashlib.sha256).hexdigest().encode()
    )


def _verified(document: bytes, content_hash: str, secrets: tuple[bytes, ...]) -> bytes | None:
    """The body of a kept version signed with one of ``secrets`` (HMAC-SHA256), else None.

    A kept version names Python tools and HTTP endpoints a call will use: one written into
    Redis by anyone without the state secret must not become a call's workflow.
    """
    signature, _, body = document.partition(b"\n")
    for secret in secrets:
        if hmac.compare_digest(signature, _signature(content_hash, body, secret)):
            return body
    return None


async def keep_version(workflow: Workflow, persistence: Persistence | None) -> None:
    """Keep ``workflow``'s version for the sessions running it, signed with the state secret
    (never fails the call)."""
    if persistence is None or persistence.versions is None:
        return
    body = version_document(workflow)
    signed = _signature(workflow.content_hash, body, persistence.caller_secret) + b"\n" + body
    try:
        await asyncio.wait_for(persistence.versions.keep(workflow.content_hash, signed), 2.0)
    except Exception as exc:
        logger.warning("could not keep workflow version %s: %s", workflow.content_hash, exc)


def open_state(state: SessionState, workflow: Workflow, persistence: Persistence) -> SessionState:
    """``state`` with its sealed (encrypted) strings opened, when the workflow seals any."""
    if not workflow.sensitive_fields:
        return state
    opened = open_sealed(state.model_dump(mode="json"), persistence.keys, context=state.session_id)
    return SessionState.model_validate(opened)


def _owned_by(state: SessionState, identity: str, persistence: Persistence) -> bool:
    return state.caller_hash is not None and any(
        state.caller_hash == caller_hash(identity, secret) for secret in persistence.secrets
    )


def _decode_history(state: SessionState) -> ChatContext | None:
    try:
        return chat_context(state.items)
    except (ValueError, TypeError, KeyError) as exc:  # pydantic's ValidationError is a ValueError
        logger.warning("session %s: stored items do not decode: %s", state.session_id, exc)
        return None


async def start_call(
    *,
    workflow: Workflow,
    caller_identity: str | None = None,
    components: Pipeline | None = None,
    agent_components: Callable[[str], Pipeline] | None = None,
    persistence: Persistence | None = None,
    room: rtc.Room | None = None,
    room_options: RoomOptions | None = None,
    media: SessionMedia | None = None,
    session_options: dict[str, Any] | None = None,
    conn_options: SessionConnectOptions | None = None,
    caller_kind: CallerKind = "sip",
    resume_token: str | None = None,
    line: CallLine | None = None,
) -> Call:
    """Start (or resume) a call and return it once the first agent has spoken.

    ``caller_identity`` is a phone number (``caller_kind="sip"``, normalised to E.164) or a web
    participant identity (``"web"``); ``resume_token`` is what a web caller's app presented.
    Without ``room`` the session runs in text mode (demo, chat, simulate, tests): drive it with
    ``call.session.run(user_input=...)``. ``media`` sets the session's audio input and outputs
    without a room (the voice harness, :mod:`frontdesk.workflows.voice_harness`);
    ``session_options`` are extra ``AgentSession`` arguments (e.g. its ``turn_handling``).
    ``conn_options`` are the profile's model timeouts and
    retries (:func:`frontdesk.workflows.providers.session_conn_options`). ``line`` is where the
    caller is on LiveKit, for a transfer to a human (:mod:`frontdesk.agents.transfer`).
    """
    telemetry.redact_pii_in_logs()  # LiveKit's DEBUG records carry what the caller said
    pipeline = components or Pipeline(llm=OfflineBrain(workflow=workflow))
    identity_key = namespaced_identity(caller_kind, caller_identity) if caller_identity else None
    lookup = (
        await find_resume_plan(
            workflow,
            persistence,
            identity_key,
            caller_kind=caller_kind,
            resume_token=resume_token,
        )
        if persistence
        else None
    )
    plan = lookup.plan if lookup is not None else None
    state = plan.state if plan is not None and plan.kind != "fresh" else None
    if lookup is not None and lookup.workflow is not None:
        logger.info(
            "session %s: resumed on the workflow version it started with (%s; current %s)",
            state.session_id if state is not None else "?",
            lookup.workflow.content_hash,
            workflow.content_hash,
        )
        workflow = lookup.workflow
        if pipeline.llm is not None and isinstance(pipeline.llm, OfflineBrain):
            pipeline = Pipeline(llm=OfflineBrain(workflow=workflow))
    await keep_version(workflow, persistence)

    session_id = (
        state.session_id
        if state is not None and plan is not None and plan.kind == "resume"
        else uuid.uuid4().hex
    )
    data = CallerData(session_id=session_id, caller_identity=caller_identity)
    data.line = line
    entry: Entry = "call_start"
    agent_name = workflow.start
    history: ChatContext | None = None
    agent_ctx: ChatContext | None = None
    gate: VerificationGate | None = None
    earlier: EarlierItems | None = None
    if state is not None and plan is not None:
        data.fields = valid_caller_data(workflow, state.caller_data, session_id=state.session_id)
        if lookup is not None and lookup.trust == "caller_id+verify" and identity_key:
            assert persistence is not None
            gate = _verification_gate(workflow, persistence, data, identity_key, session_id)
            if gate is not None:
                gate.on_locked_out = partial(
                    telemetry.verification_failed, workflow.name, plan, time.time_ns()
                )
        if plan.kind == "resume":
            agent_name = plan.agent
            entry = "resume"
            data.greeted = set(state.greeted)
            data.handoff_trail = list(state.handoff_trail)
            history = lookup.history if lookup is not None else None
            earlier = lookup.earlier if lookup is not None else None
            assert history is not None  # a resumable state always comes with its history
            if gate is not None:
                hidden = [*gate.withheld.values(), *gate.stored.values()]
                finders = sensitive_finders(workflow)
                history = withheld_history(history, hidden, finders)
                if earlier is not None:
                    earlier.redact = functools.partial(
                        withheld_history, values=hidden, finders=finders
                    )
            agent_ctx = await cap_for_resume(workflow, state, agent_name, history)
        logger.info("session %s: %s on '%s' (%s)", session_id, plan.kind, agent_name, plan.reason)
        if gate is not None:
            logger.info(
                "session %s: %s withheld until the caller verifies with %s",
                session_id,
                ", ".join(sorted(gate.withheld)),
                ", ".join(gate.required) or "(nothing stored to verify with)",
            )
    data.gate = gate

    factory = AgentFactory(workflow=workflow, components=agent_components)
    # None (not NOT_GIVEN) means "no such component": LiveKit would otherwise pick a default
    # that loads a model or calls its hosted inference service.
    components_kwargs: dict[str, Any] = {
        "llm": pipeline.llm,
        "stt": pipeline.stt,
        "tts": pipeline.tts,
        "vad": pipeline.vad,
    }
    options = conn_options or SessionConnectOptions()
    session_kwargs: dict[str, Any] = {
        "turn_handling": {"turn_detection": None} if pipeline.vad is None else {},
        "conn_options": SessionConnectOptions(
            stt_conn_options=options.stt_conn_options,
            llm_conn_options=options.llm_conn_options,
            tts_conn_options=options.tts_conn_options,
            max_unrecoverable_errors=livekit_error_limit(workflow.config.workflow),
        ),
        **components_kwargs,
        **(session_options or {}),
    }
    session = AgentSession[CallerData](userdata=data, **session_kwargs)
    telemetry.watch_session(session, workflow=workflow.name)
    if media is not None:
        media.attach(session)
    guard = CallGuard(session, workflow.config.workflow)
    guard.attach()
    if history is not None:
        session.history.insert(list(history.items))
    agent: FlowAgent = factory.build(agent_name, caller_data=data, chat_ctx=agent_ctx, entry=entry)

    call = Call(
        session=session,
        session_id=session_id,
        plan=plan,
        opening=None,
        started_at=time.time(),
        persistence=persistence,
        guard=guard,
        earlier=earlier,
    )
    call.gate = gate
    call.trust = lookup.trust if lookup is not None else None
    held = gate is not None and entry == "resume"
    if persistence is not None:
        index = lookup is None or lookup.index_caller
        call.recorder = SessionRecorder(
            session=session,
            store=persistence.store,
            settings=persistence.settings,
            workflow=workflow,
            owner=persistence.owner,
            caller_identity=identity_key if index else None,
            caller_secret=persistence.caller_secret,
            resumed_from=state if entry == "resume" else None,
            earlier=earlier,
            held=held,
            sealer=_sealer(workflow, persistence, data),
            reindex=bool(
                entry == "resume"
                and state is not None
                and identity_key
                and index
                and state.caller_hash != caller_hash(identity_key, persistence.caller_secret)
            ),
        )
        if not held:
            call.resume_token = _token_for(session_id, persistence)
        await call.recorder.start()
    if gate is not None:
        recorder = call.recorder

        async def on_verified() -> None:
            if recorder is not None and persistence is not None:
                await recorder.release()
                call.resume_token = _token_for(session_id, persistence)

        gate.on_verified = on_verified

    start_kwargs: dict[str, Any] = {"agent": agent}
    if room is not None:
        start_kwargs["room"] = room
        if room_options is not None:
            start_kwargs["room_options"] = room_options
    else:
        start_kwargs["capture_run"] = True
    call.opening = await session.start(**start_kwargs)
    if call.recorder is not None:
        call.recorder.attach()
        call.recorder.capture()
    if earlier is not None:
        earlier.check_soon()  # the older stored items, validated in the background
    return call


def _sealer(workflow: Workflow, persistence: Persistence, data: CallerData) -> Sealer | None:
    """What encrypts the copies of this call's sensitive values before they are stored."""
    sensitive = workflow.sensitive_fields
    if not sensitive:
        return None

    def values() -> list[str]:
        known = [as_text(v) for name, v in data.fields.items() if name in sensitive]
        gate = data.gate
        if gate is not None:
            known += [*gate.withheld.values(), *gate.stored.values()]
        return known

    return Sealer(persistence.keys, values=values, finders=sensitive_finders(workflow))


def _token_for(session_id: str, persistence: Persistence) -> str:
    ttl = persistence.settings.resume.token_ttl
    return issue_token(session_id, secret=persistence.caller_secret, expires_at=time.time() + ttl)


def sensitive_finders(workflow: Workflow) -> list[Callable[[str], list[tuple[int, int]]]]:
    """For each sensitive field with a pattern: the spans of values matching it in a text."""
    regexes = (workflow.field(name).regex for name in sorted(workflow.sensitive_fields))
    return [span_finder(regex) for regex in regexes if regex is not None]


def _verification_gate(
    workflow: Workflow,
    persistence: Persistence,
    data: CallerData,
    identity_key: str,
    session_id: str,
) -> VerificationGate | None:
    """The gate of a caller resumed by caller ID, or None when nothing sensitive is stored."""
    sensitive = workflow.sensitive_fields
    stored = {name: as_text(value) for name, value in data.fields.items() if name in sensitive}
    if not stored:
        return None
    required: list[str] = []
    for name in stored:
        spec = workflow.field(name)
        if not spec.sensitive:
            continue
        for other in spec.verify_with or (name,):
            if other in stored and other not in required:
                required.append(other)
    data.fields = {name: value for name, value in data.fields.items() if name not in sensitive}
    resume = persistence.settings.resume
    return VerificationGate(
        session_id=session_id,
        caller_hash=caller_hash(identity_key, persistence.caller_secret),
        withheld=dict(stored),
        required=tuple(required),
        stored=dict(stored),
        attempts=persistence.attempts,
        max_attempts=resume.verify_attempts,
        lockout=resume.lockout,
        lockout_line=resume.lockout_line,
    )


def valid_caller_data(
    workflow: Workflow, stored: Mapping[str, FieldValue], *, session_id: str
) -> dict[str, FieldValue]:
    """The stored caller data this workflow still accepts: declared fields valid for their type.

    A value the workflow no longer declares, or that fails its (perhaps tightened) rules, is
    dropped with a log line, so the agent asks for it again rather than trusting it. A value
    stored before its field got a type is normalised ("4" → 4).
    """
    kept: dict[str, FieldValue] = {}
    for name, value in stored.items():
        spec = workflow.config.caller_data.get(name)
        if spec is not None and spec.accepts(value):
            kept[name] = value if spec.type == "string" else spec.normalise(value)
        else:
            logger.warning(
                "session %s: stored caller data '%s' dropped on resume", session_id, name
            )
    return kept


async def cap_for_resume(
    workflow: Workflow, state: SessionState, agent: str, history: ChatContext
) -> ChatContext:
    """The resumed agent's context: the saved history, capped like a handoff into it would be.

    ``history`` is what the resume rebuilt: the latest ``[state.resume] context_items`` items,
    so a ``full`` route resumes with those. A ``summary`` route is resumed like a ``full`` one:
    summarising would put a model call on the reconnect path. A tool output whose call is
    older than the window is left out (LiveKit would drop it with a warning).
    """
    policy = ContextPolicy(kind="full")
    last = state.handoff_trail[-1] if state.handoff_trail else None
    if last is not None and last.to_agent == agent and last.from_agent in workflow.config.agents:
        for route in workflow.agent(last.from_agent).handoffs:
            if route.to == agent and route.policy.kind != "summary":
                policy = route.policy
    context = await context_for_handoff(policy, history, summarizer=None)
    calls = {item.call_id for item in context.items if item.type == "function_call"}
    orphans = [
        item
        for item in context.items
        if item.type == "function_call_output" and item.call_id not in calls
    ]
    for item in orphans:
        context.items.remove(item)
    return context
