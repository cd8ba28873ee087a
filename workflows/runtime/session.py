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
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from livekit import rtc
from livekit.agents import AgentSession
from livekit.agents.llm import ChatContext
from livekit.agents.voice.room_io import RoomOptions
from livekit.agents.voice.run_result import RunResult
from pydantic import Field

from frontdesk import telemetry
from frontdesk.agents.flow_agent import AgentFactory, Entry, FlowAgent
from frontdesk.agents.handoff import context_for_handoff
from frontdesk.agents.offline_brain import OfflineBrain
from frontdesk.agents.pipeline import Pipeline
from frontdesk.agents.userdata import CallerData
from frontdesk.errors import CorruptStateError, StateError
from frontdesk.state.models import CallRecord, SessionState
from frontdesk.state.resume import ResumePlan, plan_resume
from frontdesk.state.store import SessionLookup, SessionStore
from frontdesk.workflows.definition import ContextPolicy, StateSection, Workflow
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

    @property
    def resumed(self) -> bool:
        return self.plan is not None and self.plan.kind == "resume"

    @property
    def userdata(self) -> CallerData:
        return self.session.userdata

    def transcript(self) -> Transcript:
        return build_transcript(self.session_id, self.session.history.items)

    async def flush(self, timeout: float = CLOSE_FLUSH_TIMEOUT) -> bool:
        """Persist everything so far; True once Redis has acknowledged it (or nothing to persist)."""
        if self.recorder is None:
            return True
        return await self.recorder.flush(timeout)

    async def aclose(
        self, reason: str = "caller left", *, metrics: dict[str, Any] | None = None
    ) -> CallReport:
        """End the call: close the session, save the final state with this call's record.

        The stored session is kept (not marked ended) so a caller who dropped can resume within
        the resume window. ``metrics`` (LiveKit's, aggregated per agent) go into the record.
        """
        if self.report is not None:
            return self.report
        try:
            await asyncio.wait_for(self.session.aclose(), SESSION_CLOSE_TIMEOUT)
        except Exception as exc:  # a session that fails or hangs closing must not lose the save
            logger.warning("session %s: closing the AgentSession failed: %r", self.session_id, exc)
        transcript = self.transcript()
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
            saved = await self.recorder.aclose(CLOSE_FLUSH_TIMEOUT)
            if not saved:
                logger.error(
                    "session %s: final state NOT acknowledged by Redis within %.0fs (%s)",
                    self.session_id,
                    CLOSE_FLUSH_TIMEOUT,
                    reason,
                )
        self.report = CallReport(session_id=self.session_id, saved=saved, **record.model_dump())
        return self.report


class CallReport(CallRecord):
    """What :meth:`Call.aclose` returns: the stored record, plus whether Redis acknowledged it."""

    session_id: str
    saved: bool = Field(description="True once Redis acknowledged the final state.")

    @property
    def duration(self) -> float:
        return self.ended_at - self.started_at


@dataclass(frozen=True)
class ResumeLookup:
    """How a call starts, and the stored history already decoded into LiveKit items."""

    plan: ResumePlan
    history: ChatContext | None


async def find_resume_plan(
    workflow: Workflow, persistence: Persistence, caller_identity: str | None
) -> ResumeLookup:
    """Look the caller up and decide how the call starts. Never raises: a failure is a fresh start.

    Stored items that are valid JSON but not LiveKit chat items make the session corrupt too:
    it is quarantined like any other, and the caller starts fresh.
    """
    state: SessionState | None = None
    history: ChatContext | None = None
    started_ns, quarantined = time.time_ns(), False
    if caller_identity:
        store: SessionLookup = persistence.store
        try:
            session_id = await store.find_by_caller(caller_identity)
            if session_id is not None:
                state = await store.load(session_id)
                history = _decode_history(state)
                if history is None:
                    await store.quarantine(session_id, "stored items are not LiveKit chat items")
                    state, quarantined = None, True
        except CorruptStateError as exc:
            logger.warning(
                "caller's stored session is corrupt and was quarantined; starting fresh: %s", exc
            )
            state, quarantined = None, True
        except (StateError, OSError, ConnectionError) as exc:
            logger.warning("state store unreachable at call start; starting fresh: %s", exc)
            state = None
    plan = plan_resume(
        state,
        now=time.time(),
        resume_window=persistence.settings.resume_window,
        workflow_hash=workflow.content_hash,
        known_agents=set(workflow.config.agents),
        start_agent=workflow.start,
    )
    telemetry.call_started(
        workflow.name, plan, state, quarantined=quarantined, started_ns=started_ns
    )
    return ResumeLookup(plan=plan, history=history if state is not None else None)


def _decode_history(state: SessionState) -> ChatContext | None:
    try:
        return ChatContext.from_dict({"items": state.items})
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
) -> Call:
    """Start (or resume) a call and return it once the first agent has spoken.

    Without ``room`` the session runs in text mode (demo, chat, simulate, tests): drive it with
    ``call.session.run(user_input=...)``. ``media`` sets the session's audio input and outputs
    without a room (the voice harness, :mod:`frontdesk.workflows.voice_harness`);
    ``session_options`` are extra ``AgentSession`` arguments (e.g. its ``turn_handling``).
    """
    pipeline = components or Pipeline(llm=OfflineBrain(workflow=workflow))
    lookup = await find_resume_plan(workflow, persistence, caller_identity) if persistence else None
    plan = lookup.plan if lookup is not None else None
    state = plan.state if plan is not None and plan.kind != "fresh" else None

    session_id = (
        state.session_id
        if state is not None and plan is not None and plan.kind == "resume"
        else uuid.uuid4().hex
    )
    data = CallerData(session_id=session_id, caller_identity=caller_identity)
    entry: Entry = "call_start"
    agent_name = workflow.start
    history: ChatContext | None = None
    agent_ctx: ChatContext | None = None
    if state is not None and plan is not None:
        data.fields = valid_caller_data(workflow, state.caller_data, session_id=state.session_id)
        if plan.kind == "resume":
            agent_name = plan.agent
            entry = "resume"
            data.greeted = set(state.greeted)
            data.handoff_trail = list(state.handoff_trail)
            history = lookup.history if lookup is not None else None
            assert history is not None  # a resumable state always comes with its history
            agent_ctx = await cap_for_resume(workflow, state, agent_name, history)
        logger.info("session %s: %s on '%s' (%s)", session_id, plan.kind, agent_name, plan.reason)

    factory = AgentFactory(workflow=workflow, components=agent_components)
    # None (not NOT_GIVEN) means "no such component": LiveKit would otherwise pick a default
    # that loads a model or calls its hosted inference service.
    components_kwargs: dict[str, Any] = {
        "llm": pipeline.llm,
        "stt": pipeline.stt,
        "tts": pipeline.tts,
        "vad": pipeline.vad,
    }
    session_kwargs: dict[str, Any] = {
        "turn_handling": {"turn_detection": None} if pipeline.vad is None else {},
        **components_kwargs,
        **(session_options or {}),
    }
    session = AgentSession[CallerData](userdata=data, **session_kwargs)
    telemetry.watch_session(session, workflow=workflow.name)
    if media is not None:
        media.attach(session)
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
    )
    if persistence is not None:
        call.recorder = SessionRecorder(
            session=session,
            store=persistence.store,
            settings=persistence.settings,
            workflow=workflow,
            owner=persistence.owner,
            caller_identity=caller_identity,
            caller_secret=persistence.caller_secret,
            resumed_from=state if entry == "resume" else None,
        )
        await call.recorder.start()

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
    return call


def valid_caller_data(
    workflow: Workflow, stored: dict[str, str], *, session_id: str
) -> dict[str, str]:
    """The stored caller data this workflow still accepts: declared fields matching their pattern.

    A value the workflow no longer declares, or that fails its (perhaps tightened) pattern, is
    dropped with a log line, so the agent asks for it again rather than trusting it.
    """
    kept: dict[str, str] = {}
    for name, value in stored.items():
        spec = workflow.config.caller_data.get(name)
        if spec is not None and spec.accepts(value):
            kept[name] = value
        else:
            logger.warning(
                "session %s: stored caller data '%s' dropped on resume", session_id, name
            )
    return kept


async def cap_for_resume(
    workflow: Workflow, state: SessionState, agent: str, history: ChatContext
) -> ChatContext:
    """The resumed agent's context: the saved history, capped like a handoff into it would be.

    A ``summary`` route is resumed with the full history instead: summarising would put a model
    call on the reconnect path.
    """
    policy = ContextPolicy(kind="full")
    last = state.handoff_trail[-1] if state.handoff_trail else None
    if last is not None and last.to_agent == agent and last.from_agent in workflow.config.agents:
        for route in workflow.agent(last.from_agent).handoffs:
            if route.to == agent and route.policy.kind != "summary":
                policy = route.policy
    return await context_for_handoff(policy, history, summarizer=None)
