"""One call per job: prewarm, connect, wait for the caller, start (or resume) the call, save its end.

The shutdown callback saves the final state well inside LiveKit's process shutdown timeout and
logs a one-line summary with per-agent latency and usage.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import inspect
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from livekit.agents import AgentSession, AutoSubscribe, JobContext, JobProcess
from livekit.agents.voice.events import CloseEvent, MetricsCollectedEvent
from livekit.agents.voice.room_io import RoomOptions

from frontdesk import telemetry
from frontdesk.agents.pipeline import Pipeline
from frontdesk.agents.transfer import call_line_from_env
from frontdesk.errors import StateError, WorkerSetupError
from frontdesk.state.identity import caller_secret_from_env, identity_hint, namespaced_identity
from frontdesk.state.tokens import TOKEN_ATTRIBUTE
from frontdesk.workflows.definition import ProviderProfile, Workflow
from frontdesk.workflows.providers import (
    agent_overrides,
    build_components,
    load_vad,
    session_conn_options,
)
from frontdesk.workflows.runtime import (
    Call,
    CallMetrics,
    CallReport,
    Persistence,
    configured_redis_url,
    open_persistence,
    start_call,
)
from frontdesk.workflows.worker.dispatch import (
    caller_identity,
    caller_kind,
    decide_job,
    participant_kinds,
    presented_resume_token,
)
from frontdesk.workflows.worker.load import LIVE_SESSIONS
from frontdesk.workflows.worker.reconnect import ReconnectWatch
from frontdesk.workflows.worker.reload import watched

logger = logging.getLogger(__name__)

SHUTDOWN_PROCESS_TIMEOUT = 15.0
"""``WorkerOptions.shutdown_process_timeout``: once a job process reports it is shutting down,
LiveKit kills it after this long. The room disconnect and our shutdown callback run in it."""

SAVE_TIMEOUT = 10.0
"""How long the shutdown callback waits for the final state to be saved."""

CLEANUP_TIMEOUT = 1.0
"""How long it then gives the Redis client and provider connections to close."""

assert SAVE_TIMEOUT + CLEANUP_TIMEOUT + 3.0 <= SHUTDOWN_PROCESS_TIMEOUT, "keep a margin"

SETUP_KEY = "frontdesk.setup"
VAD_KEY = "frontdesk.vad"
"""Keys of ``JobProcess.userdata`` filled by :func:`prewarm`."""


# --------------------------------------------------------------------------- the worker


@dataclass(frozen=True)
class JobSetup:
    """What every job process needs, handed to it through ``prewarm_fnc`` (so it is pickled)."""

    workflow: Workflow
    profile_name: str
    config_path: str | None = None
    """The config file the worker watches (live reload); None: ``workflow`` for good."""

    @property
    def profile(self) -> ProviderProfile:
        return self.workflow.config.providers.profiles[self.profile_name]

    def current(self) -> tuple[Workflow, ProviderProfile]:
        """The workflow a new call runs (the config file's, when it changed and is valid)."""
        workflow = watched(self.config_path, self.workflow, self.profile_name)
        return workflow, workflow.config.providers.profiles[self.profile_name]


def prewarm(proc: JobProcess, *, setup: JobSetup) -> None:
    """Once per job process: keep the workflow and, if the profile uses it, load Silero's VAD.

    Loading the VAD here means no call waits for it; the model ships in the plugin's wheel.
    Last, ``gc.freeze()`` moves the ~160k objects that imports leave alive out of the garbage
    collector's sight: without it a full collection in the middle of a resume costs 10-20 ms
    (measured on a 1,000-item session load: p99 18-27 ms → 8 ms).
    """
    proc.userdata[SETUP_KEY] = setup
    setup.current()  # the first look at the config file, before any call waits for it
    telemetry.redact_pii_in_logs()
    vad_config = setup.profile.vad
    if vad_config is not None and vad_config.provider == "silero":
        proc.userdata[VAD_KEY] = load_vad(vad_config, path=f"providers.{setup.profile_name}.vad")
    gc.freeze()


# --------------------------------------------------------------------------- one call


def current_agent_id(session: AgentSession[Any]) -> str:
    """The active agent's id (Frontdesk agents use their config name), or ``"unknown"``."""
    try:
        return session.current_agent.id
    except RuntimeError:
        return "unknown"


def attach_metrics(session: AgentSession[Any], metrics: CallMetrics) -> None:
    """Feed the session's ``metrics_collected`` events to ``metrics``, per active agent."""

    def on_metrics(event: MetricsCollectedEvent) -> None:
        metrics.add(event.metrics, current_agent_id(session))

    session.on("metrics_collected", on_metrics)


async def finish_call(
    call: Call,
    *,
    reason: str,
    metrics: CallMetrics,
    started: float,
    timeout: float = SAVE_TIMEOUT,
    hung_up: bool = False,
) -> dict[str, Any]:
    """Save the call's final state within ``timeout`` and log its one-line summary.

    Returns the call report (session id, turns, agents, duration, metrics, ``saved``). A save
    that fails or times out is logged with the session id, so the missing state can be traced;
    it never raises, since a shutdown callback that raises only hides the log line.
    """
    report: CallReport | None = None
    try:
        closing = (
            call.aclose(reason, metrics=metrics.as_dict(), hung_up=True)
            if hung_up
            else call.aclose(reason, metrics=metrics.as_dict())
        )
        report = await asyncio.wait_for(closing, timeout)
    except TimeoutError:
        logger.error(
            "call %s: saving the final state timed out after %.1fs", call.session_id, timeout
        )
    except Exception as exc:
        logger.error("call %s: saving the final state failed: %r", call.session_id, exc)
    saved = bool(getattr(report, "saved", False))
    persisted = bool(getattr(report, "persisted", True))
    turns = getattr(report, "caller_turns", None)
    agents = list(getattr(report, "agents", None) or [])
    summary: dict[str, Any] = {
        "session_id": call.session_id,
        "reason": reason,
        "resumed": call.resumed,
        "duration_s": round(time.monotonic() - started, 1),
        "turns": turns,
        "agents": agents,
        "saved": saved,
        "metrics": metrics.as_dict(),
    }
    logger.info(
        "call %s summary: %s turns, agents %s, %.1fs%s, %s; %s",
        call.session_id,
        "?" if turns is None else turns,
        " > ".join(agents) or "-",
        summary["duration_s"],
        ", resumed" if call.resumed else "",
        ("saved" if saved else "NOT SAVED") if persisted else "not persisted (no Redis)",
        metrics.summary(),
    )
    return summary


def job_setup(userdata: Mapping[Any, Any]) -> JobSetup:
    setup = userdata.get(SETUP_KEY)
    if not isinstance(setup, JobSetup):
        raise WorkerSetupError(
            "this job process was not prepared by Frontdesk's prewarm_fnc: "
            "run the worker through build_worker_options()"
        )
    return setup


def owner_id(ctx: JobContext) -> str:
    """The state-store owner of this call: worker id *and* job id.

    One worker runs many calls; if a caller redials while their old job is still in its grace
    period, the two jobs must not look like the same owner to the fencing check.
    """
    return f"{ctx.worker_id}/{ctx.job.id}"


class AgentPipelines:
    """Per-agent pipelines for ``start_call(agent_components=...)``: each agent's overrides.

    Built when the call is set up (not at handoff time), so a broken override fails before the
    caller hears anything; slots an agent does not override reuse the call's instances. Call it
    with an agent name; :meth:`aclose` closes what it built.
    """

    def __init__(self, *, workflow: Workflow, components: Pipeline) -> None:
        profile = workflow.config.providers.profiles[components.profile]
        self._empty = Pipeline()
        self._built: dict[str, Pipeline] = {}
        for name, agent in agent_overrides(workflow).items():
            own = build_components(
                profile,
                agent_override=agent,
                workflow=workflow,
                profile_name=components.profile,
                base=components,
            )
            self._built[name] = Pipeline(
                stt=own.stt if agent.stt else None,
                llm=own.llm if agent.llm else None,
                tts=own.tts if agent.tts else None,
            )

    def __call__(self, name: str) -> Pipeline:
        return self._built.get(name, self._empty)

    async def aclose(self) -> None:
        for owned in self._built.values():
            await owned.aclose()


async def open_call_persistence(
    stack: contextlib.AsyncExitStack, workflow: Workflow, *, owner: str
) -> Persistence | None:
    """The call's state store, or ``None`` (unpersisted) when no Redis is configured.

    ``run_worker`` refuses to ``start`` without Redis; ``dev`` and ``console`` run unpersisted
    then. An embedded server is never used here: it would live and die with one job process,
    so nothing could resume. A store that cannot be opened also means an unpersisted call:
    the caller is on the line, and a broken Redis must not stop the call.
    """
    if not configured_redis_url(workflow):
        logger.warning("no Redis configured: this call is not persisted and cannot be resumed")
        return None
    try:
        persistence = await stack.enter_async_context(
            open_persistence(workflow, allow_embedded=False)
        )
    except (StateError, OSError, ConnectionError) as exc:
        logger.error("state store unavailable, the call runs unpersisted: %s", exc)
        return None
    return dataclasses.replace(persistence, owner=owner)


async def entrypoint(ctx: JobContext) -> None:
    """One call: connect, wait for the caller, start (or resume) the session, watch it end."""
    setup = job_setup(ctx.proc.userdata)
    workflow, profile = setup.current()
    settings = workflow.config.worker
    decision = decide_job(ctx.job.metadata, workflow)
    # built before connecting: a bad key or setting fails here, not mid-call
    components = build_components(
        profile,
        workflow=workflow,
        profile_name=setup.profile_name,
        prewarmed_vad=ctx.proc.userdata.get(VAD_KEY),
    )
    per_agent = AgentPipelines(workflow=workflow, components=components)

    stack = contextlib.AsyncExitStack()
    kinds = participant_kinds(settings.participant_kinds, console=ctx.is_fake_job())
    try:
        await ctx.connect(auto_subscribe=AutoSubscribe.AUDIO_ONLY)
        participant = await ctx.wait_for_participant(kind=kinds)
    except BaseException:  # the room went away before anyone called: close what we opened
        with contextlib.suppress(Exception):
            await asyncio.wait_for(_cleanup(stack, components, per_agent), CLEANUP_TIMEOUT)
        raise
    caller = caller_identity(participant)
    kind = caller_kind(participant)
    label = identity_hint(
        namespaced_identity(kind, caller) if caller.strip() else None, caller_secret_from_env()
    )
    logger.info(
        "call for %s (%s) in room %s (workflow %s, profile %s)",
        label,
        kind,
        ctx.room.name,
        decision.workflow_name or workflow.name,
        setup.profile_name,
    )

    line = call_line_from_env(
        room_name=ctx.room.name,
        caller_identity=participant.identity,
        caller_is_sip=kind == "sip",
        end_call=lambda reason: ctx.shutdown(reason=reason),
        briefing_tts=components.tts,
    )
    try:
        persistence = await open_call_persistence(stack, workflow, owner=owner_id(ctx))
        call = await start_call(
            workflow=workflow,
            caller_identity=caller or None,
            components=components,
            agent_components=per_agent,
            persistence=persistence,
            conn_options=session_conn_options(profile),
            caller_kind=kind,
            resume_token=presented_resume_token(participant),
            line=line,
            room=ctx.room,
            # the watch below decides when a disconnect ends the call, not RoomIO
            room_options=RoomOptions(
                participant_identity=participant.identity,
                participant_kinds=kinds,
                close_on_disconnect=False,
            ),
        )
    except Exception:
        logger.exception("call setup failed in room %s", ctx.room.name)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(_cleanup(stack, components, per_agent), CLEANUP_TIMEOUT)
        ctx.shutdown(reason="call setup failed")
        return

    await publish_resume_token(ctx.room, getattr(call, "resume_token", None))
    live = LIVE_SESSIONS.started()
    logger.debug("live calls in this process: %d", live)
    started = time.monotonic()
    metrics = CallMetrics()
    attach_metrics(call.session, metrics)

    watch = ReconnectWatch(
        identity=participant.identity,
        grace=settings.reconnect_grace,
        end_call=ctx.shutdown,
        label=label,
    )
    ctx.room.on("participant_disconnected", watch.participant_disconnected)
    ctx.room.on("participant_connected", watch.participant_connected)

    def on_close(event: CloseEvent) -> None:
        ctx.shutdown(reason=f"session closed ({event.reason.value})")

    call.session.on("close", on_close)

    async def end_of_call(reason: str) -> None:
        watch.close()
        try:
            await finish_call(
                call, reason=reason, metrics=metrics, started=started, hung_up=watch.hung_up
            )
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(_cleanup(stack, components, per_agent), CLEANUP_TIMEOUT)
            live = LIVE_SESSIONS.ended()
            logger.debug("live calls in this process: %d", live)

    ctx.add_shutdown_callback(end_of_call)


async def publish_resume_token(room: Any, token: str | None) -> None:
    """Give the caller's app its resume token: the agent's attribute ``frontdesk.resume_token``.

    A web app keeps it and presents it (as its own participant attribute of the same name, or
    in its metadata JSON) when it reconnects; without it a web caller never resumes under
    ``trust = "token"``. A failure is logged, never raised: the call goes on.
    """
    if not token:
        return
    try:
        result = room.local_participant.set_attributes({TOKEN_ATTRIBUTE: token})
        if inspect.isawaitable(result):
            await result
    except Exception as exc:
        logger.warning("could not publish the resume token: %r", exc)


async def _cleanup(
    stack: contextlib.AsyncExitStack, components: Pipeline, per_agent: AgentPipelines
) -> None:
    """Close the state store's client, then the provider connections the call opened."""
    try:
        await stack.aclose()
    finally:
        await per_agent.aclose()
        await components.aclose()
