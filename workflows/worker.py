"""The LiveKit worker: which jobs to take, how loaded we are, and one call per job.

Everything here plugs into LiveKit's own worker (``WorkerOptions`` run by ``cli.run_app``, so its
modes ``dev``, ``start``, ``console``, ``connect`` and ``download-files`` all work). What Frontdesk
adds, and why:

- **Dispatch by workflow.** Several workflows can share one LiveKit project. A job's metadata
  (a JSON object) may name the ``workflow`` or ``agent_type`` it wants; this worker accepts only
  the names in ``[worker] serves``, and rejects the others *without terminating them*, so a worker
  that does serve them gets the job. Malformed metadata is rejected with a log line, never an
  exception (a request handler that raises leaves LiveKit waiting for an answer).
- **Load by live calls, not CPU.** A voice call is mostly waiting on providers, so CPU says little
  about capacity; ``load = live calls / [worker] max_sessions`` does.
- **Caller identity.** SIP callers are known by their phone number (``sip.phoneNumber``), which
  is what lets a dropped phone call resume; web callers by their participant identity.
- **Short drops.** A caller whose connection drops has ``[worker] reconnect_grace`` seconds to
  rejoin the same room before the call ends; a caller who hangs up ends it at once.
- **A saved ending.** The shutdown callback saves the final state well inside LiveKit's process
  shutdown timeout and logs a one-line summary with per-agent latency and usage.

The pure decisions (:func:`compute_load`, :func:`decide_job`, :func:`caller_identity`,
:func:`check_credentials`) are plain functions, tested without a LiveKit server.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import gc
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlparse

from livekit import rtc
from livekit.agents import AutoSubscribe, JobContext, JobProcess, JobRequest, WorkerOptions, cli

# LiveKit requires plugins to register on the main thread: importing them here (the worker's
# module is imported on the main thread of the worker and of every job process) guarantees it,
# and lets `download-files` and the forkserver preload see them.
from livekit.plugins import cartesia, deepgram, openai, silero  # noqa: F401

from frontdesk import telemetry
from frontdesk.errors import StateError, WorkerSetupError
from frontdesk.workflows.config import ProviderProfile, Workflow, load_workflow
from frontdesk.workflows.metrics import CallMetrics
from frontdesk.workflows.providers import (
    Components,
    active_profile_name,
    agent_overrides,
    build_components,
    ensure_env,
    load_vad,
)

if TYPE_CHECKING:
    from livekit.agents import AgentServer, AgentSession
    from livekit.agents.voice.events import CloseEvent, MetricsCollectedEvent

    from frontdesk.agents.flow_agent import AgentComponents
    from frontdesk.workflows.session import Persistence

logger = logging.getLogger("frontdesk.worker")

LIVEKIT_ENV = ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET")
"""What a worker needs to register with LiveKit (Cloud or a self-hosted livekit-server)."""

_CREDENTIAL_FLAGS = {
    "--url": "LIVEKIT_URL",
    "--api-key": "LIVEKIT_API_KEY",
    "--api-secret": "LIVEKIT_API_SECRET",
}
"""LiveKit's CLI flags that stand in for the variables (``start --url wss://…``)."""

MAX_METADATA_BYTES = 64 * 1024
"""Job metadata longer than this is rejected unparsed: it is a routing hint, not a payload."""

SIP_PHONE_ATTRIBUTE = "sip.phoneNumber"
"""LiveKit SIP's participant attribute holding the caller's phone number."""

PARTICIPANT_KINDS: dict[str, rtc.ParticipantKind.ValueType] = {
    "standard": rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD,
    "sip": rtc.ParticipantKind.PARTICIPANT_KIND_SIP,
}
"""``[worker] participant_kinds`` names → LiveKit's participant kinds."""

DELIBERATE_LEAVE_REASONS: frozenset[int] = frozenset(
    {
        rtc.DisconnectReason.CLIENT_INITIATED,
        rtc.DisconnectReason.ROOM_DELETED,
        rtc.DisconnectReason.USER_REJECTED,
        rtc.DisconnectReason.PARTICIPANT_REMOVED,
        rtc.DisconnectReason.ROOM_CLOSED,
    }
)
"""Disconnects that are a hang-up or a removal, not a network drop: no point waiting for a
rejoin. The first three are those on which LiveKit's own ``close_on_disconnect`` closes a
session; a removed participant (moderation, a completed SIP transfer) or a closed room does not
come back either. ``DUPLICATE_IDENTITY`` is *not* here: it is the caller rejoining."""

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


# --------------------------------------------------------------------------- pure decisions


def compute_load(live: int, max_sessions: int) -> float:
    """``live / max_sessions`` clamped to 0..1 (LiveKit compares it with ``load_threshold``)."""
    if max_sessions <= 0:
        return 1.0
    return min(1.0, max(0.0, live / max_sessions))


@dataclass(frozen=True)
class JobDecision:
    """Whether to take a job, why (for the log), and which served name it asked for."""

    accept: bool
    reason: str
    workflow_name: str | None = None


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def served_names(workflow: Workflow) -> tuple[str, ...]:
    """``[worker] serves``, or the workflow's own name when that is empty."""
    return workflow.config.worker.serves or (workflow.name,)


def decide_job(metadata: str, workflow: Workflow) -> JobDecision:
    """Accept or reject a job by its metadata; never raises.

    No metadata, or a JSON object naming neither ``workflow`` nor ``agent_type``: accept with
    this worker's workflow (automatic dispatch sends jobs without metadata). A name given must
    be one this worker serves. Anything that is not a JSON object of strings is rejected.
    """
    if not isinstance(metadata, str):
        return JobDecision(False, f"metadata is not text ({type(metadata).__name__})")
    if (
        len(metadata) > MAX_METADATA_BYTES
        or len(metadata.encode("utf-8", "replace")) > MAX_METADATA_BYTES
    ):
        return JobDecision(False, f"metadata is too large (more than {MAX_METADATA_BYTES} bytes)")
    if not metadata.strip():
        return JobDecision(True, "no metadata: default workflow", workflow.name)
    try:
        data = json.loads(metadata)
    except (ValueError, RecursionError) as exc:
        return JobDecision(False, f"metadata is not valid JSON ({_short(str(exc))})")
    if not isinstance(data, dict):
        return JobDecision(False, f"metadata must be a JSON object, got {_json_type(data)}")
    serves = served_names(workflow)
    requested: list[tuple[str, str]] = []
    for key in ("workflow", "agent_type"):
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            return JobDecision(
                False, f"metadata '{key}' must be a non-empty string, got {_json_type(value)}"
            )
        requested.append((key, value))
    if not requested:
        return JobDecision(True, "metadata names no workflow: default workflow", workflow.name)
    for key, value in requested:
        if value not in serves:
            return JobDecision(
                False, f"{key} {_short(value)} is not served here (serves: {', '.join(serves)})"
            )
    key, value = requested[0]
    return JobDecision(True, f"{key} '{value}' is served here", value)


def _json_type(value: object) -> str:
    names = {
        dict: "object",
        list: "array",
        str: "string",
        bool: "boolean",
        int: "number",
        float: "number",
    }
    return "null" if value is None else names.get(type(value), type(value).__name__)


def caller_identity(participant: object) -> str:
    """Who is calling: a SIP caller's phone number, else the participant identity.

    The phone number is only trusted on SIP participants: it is an attribute, and a web
    participant allowed to set its own attributes could otherwise claim someone else's number
    (and resume their session).
    """
    kind = getattr(participant, "kind", None)
    attributes = getattr(participant, "attributes", None)
    if kind == rtc.ParticipantKind.PARTICIPANT_KIND_SIP and isinstance(attributes, Mapping):
        phone = attributes.get(SIP_PHONE_ATTRIBUTE)
        if isinstance(phone, str) and phone.strip():
            return phone.strip()
    identity = getattr(participant, "identity", "")
    return identity if isinstance(identity, str) else ""


def check_credentials(env: Mapping[str, str]) -> None:
    """Raise :class:`WorkerSetupError` naming every missing LiveKit variable (or a bad URL)."""
    missing = [name for name in LIVEKIT_ENV if not env.get(name, "").strip()]
    if missing:
        raise WorkerSetupError(
            f"LiveKit credentials missing: {', '.join(missing)} "
            "(set them in the environment, or pass --url/--api-key/--api-secret)"
        )
    url = urlparse(env["LIVEKIT_URL"].strip())
    if url.scheme not in ("ws", "wss", "http", "https") or not url.netloc:
        raise WorkerSetupError(
            f"LIVEKIT_URL must look like wss://<project>.livekit.cloud or ws://localhost:7880, "
            f"got {_short(env['LIVEKIT_URL'])}"
        )


def participant_kinds(
    names: Iterable[str], *, console: bool = False
) -> list[rtc.ParticipantKind.ValueType]:
    """LiveKit kinds for ``[worker] participant_kinds``; the console's caller is always accepted."""
    kinds = [PARTICIPANT_KINDS[name] for name in names]
    if console and rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD not in kinds:
        kinds.append(rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD)
    return kinds


# --------------------------------------------------------------------------- load


class LiveSessions:
    """The live calls of this process (thread-safe: LiveKit runs ``load_fnc`` in an executor)."""

    def __init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()

    @property
    def count(self) -> int:
        with self._lock:
            return self._count

    def started(self) -> int:
        with self._lock:
            self._count += 1
            return self._count

    def ended(self) -> int:
        with self._lock:
            self._count = max(0, self._count - 1)
            return self._count


LIVE_SESSIONS = LiveSessions()
"""Incremented and decremented by :func:`entrypoint` around each call."""


class SessionLoad:
    """``load_fnc``: live calls over ``[worker] max_sessions``, logged when it changes.

    LiveKit calls it in the worker's main process, while calls run in job processes (one call per
    process), so the figure there is LiveKit's own count of running jobs; :data:`LIVE_SESSIONS`
    covers calls running in this very process (the thread executor used by ``console``).
    LiveKit Cloud's hosted agents ignore a custom ``load_fnc``.
    """

    def __init__(self, *, max_sessions: int) -> None:
        self.max_sessions = max_sessions
        self._last: float | None = None
        self._lock = threading.Lock()

    def __call__(self, server: AgentServer) -> float:
        live = max(len(server.active_jobs), LIVE_SESSIONS.count)
        return self.report(live)

    def report(self, live: int) -> float:
        load = compute_load(live, self.max_sessions)
        with self._lock:
            changed, self._last = load != self._last, load
        if changed:
            logger.info("worker load %.2f (%d/%d live calls)", load, live, self.max_sessions)
        return load


# --------------------------------------------------------------------------- the worker


@dataclass(frozen=True)
class JobSetup:
    """What every job process needs, handed to it through ``prewarm_fnc`` (so it is pickled)."""

    workflow: Workflow
    profile_name: str

    @property
    def profile(self) -> ProviderProfile:
        return self.workflow.config.providers.profiles[self.profile_name]


def prewarm(proc: JobProcess, *, setup: JobSetup) -> None:
    """Once per job process: keep the workflow and, if the profile uses it, load Silero's VAD.

    Loading the VAD here means no call waits for it; the model ships in the plugin's wheel.
    Last, ``gc.freeze()`` moves the ~160k objects that imports leave alive out of the garbage
    collector's sight: without it a full collection in the middle of a resume costs 10-20 ms
    (measured on a 1,000-item session load: p99 18-27 ms → 8 ms).
    """
    proc.userdata[SETUP_KEY] = setup
    vad_config = setup.profile.vad
    if vad_config is not None and vad_config.provider == "silero":
        proc.userdata[VAD_KEY] = load_vad(vad_config, path=f"providers.{setup.profile_name}.vad")
    gc.freeze()


async def request_job(request: JobRequest, *, workflow: Workflow) -> None:
    """``request_fnc``: answer every job request, by :func:`decide_job`."""
    try:
        decision = decide_job(request.job.metadata, workflow)
    except Exception as exc:  # decide_job does not raise; an unanswered request would hang
        decision = JobDecision(False, f"could not read the job request ({exc!r})")
    where = f"job {request.id} (room {request.room.name!r})"
    if decision.accept:
        logger.info("accepting %s: %s", where, decision.reason)
        await request.accept(attributes={"frontdesk.workflow": workflow.name})
    else:
        logger.info("rejecting %s: %s", where, decision.reason)
        # terminate=False: another worker that serves this workflow may take it
        await request.reject(terminate=False)


def build_worker_options(workflow: Workflow, *, profile_name: str | None = None) -> WorkerOptions:
    """LiveKit ``WorkerOptions`` for ``workflow``, running ``profile_name`` (default: the active)."""
    name = profile_name or active_profile_name(workflow)
    worker = workflow.config.worker
    return WorkerOptions(
        entrypoint_fnc=entrypoint,
        prewarm_fnc=functools.partial(
            prewarm, setup=JobSetup(workflow=workflow, profile_name=name)
        ),
        request_fnc=functools.partial(request_job, workflow=workflow),
        load_fnc=SessionLoad(max_sessions=worker.max_sessions),
        load_threshold=worker.load_threshold,
        agent_name=worker.agent_name,
        shutdown_process_timeout=SHUTDOWN_PROCESS_TIMEOUT,
        **telemetry.worker_options(worker.metrics_port),
    )


# --------------------------------------------------------------------------- one call


class ReconnectWatch:
    """Ends the call when the caller leaves, after a grace period if it looks like a drop.

    Wire :meth:`participant_disconnected` and :meth:`participant_connected` to the room's events.
    A hang-up (:data:`DELIBERATE_LEAVE_REASONS`) ends the call at once; any other disconnect
    waits ``grace`` seconds, and the same identity rejoining cancels the wait.
    """

    def __init__(self, *, identity: str, grace: float, end_call: Callable[[str], None]) -> None:
        self.identity = identity
        self.grace = grace
        self._end_call = end_call
        self._timer: asyncio.Task[None] | None = None
        self._dropped_at = 0.0
        self._closed = False

    @property
    def waiting(self) -> bool:
        return self._timer is not None and not self._timer.done()

    def participant_disconnected(self, participant: rtc.RemoteParticipant) -> None:
        if self._closed or participant.identity != self.identity:
            return
        reason = getattr(participant, "disconnect_reason", None)
        reason_name = _reason_name(reason)
        if reason in DELIBERATE_LEAVE_REASONS or self.grace <= 0:
            self._end(f"caller left ({reason_name})")
            return
        if self.waiting:
            return
        logger.info(
            "caller %s dropped (%s); waiting up to %gs for them to rejoin",
            self.identity,
            reason_name,
            self.grace,
        )
        self._dropped_at = time.monotonic()
        self._timer = asyncio.get_running_loop().create_task(self._expire(), name="reconnect_grace")

    def participant_connected(self, participant: rtc.RemoteParticipant) -> None:
        if participant.identity != self.identity or not self.waiting:
            return
        assert self._timer is not None
        self._timer.cancel()
        self._timer = None
        logger.info(
            "caller %s rejoined after %.1fs", self.identity, time.monotonic() - self._dropped_at
        )

    async def _expire(self) -> None:
        await asyncio.sleep(self.grace)
        self._timer = None
        self._end(f"caller did not rejoin within {self.grace:g}s")

    def _end(self, reason: str) -> None:
        if not self._closed:
            self._closed = True
            self._end_call(reason)

    def close(self) -> None:
        """Stop watching (the call is ending anyway)."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _reason_name(reason: object) -> str:
    if isinstance(reason, int):
        with contextlib.suppress(ValueError):
            return rtc.DisconnectReason.Name(reason)  # type: ignore[arg-type]
    return "unknown reason"


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


class CallLike(Protocol):
    """What the shutdown callback uses of :class:`frontdesk.workflows.session.Call`."""

    @property
    def session_id(self) -> str: ...

    @property
    def resumed(self) -> bool: ...

    def aclose(
        self, reason: str = ..., *, metrics: dict[str, Any] | None = ...
    ) -> Awaitable[Any]: ...


async def finish_call(
    call: CallLike,
    *,
    reason: str,
    metrics: CallMetrics,
    started: float,
    timeout: float = SAVE_TIMEOUT,
) -> dict[str, Any]:
    """Save the call's final state within ``timeout`` and log its one-line summary.

    Returns the call report (session id, turns, agents, duration, metrics, ``saved``). A save
    that fails or times out is logged with the session id, so the missing state can be traced;
    it never raises, since a shutdown callback that raises only hides the log line.
    """
    report: Any = None
    try:
        report = await asyncio.wait_for(call.aclose(reason, metrics=metrics.as_dict()), timeout)
    except TimeoutError:
        logger.error(
            "call %s: saving the final state timed out after %.1fs", call.session_id, timeout
        )
    except Exception as exc:
        logger.error("call %s: saving the final state failed: %r", call.session_id, exc)
    saved = bool(getattr(report, "saved", False))
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
        "saved" if saved else "NOT SAVED",
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


class AgentComponentsTable:
    """Per-agent components for ``start_call(agent_components=...)``: each agent's overrides.

    Built when the call is set up (not at handoff time), so a broken override fails before the
    caller hears anything; slots an agent does not override reuse the call's instances. Call it
    with an agent name; :meth:`aclose` closes what it built.
    """

    def __init__(self, *, workflow: Workflow, components: Components) -> None:
        from frontdesk.agents.flow_agent import AgentComponents

        profile = workflow.config.providers.profiles[components.profile]
        self._empty = AgentComponents()
        self._built: dict[str, AgentComponents] = {}
        self._owned: list[Components] = []
        for name, agent in agent_overrides(workflow).items():
            own = build_components(
                profile,
                agent_override=agent,
                workflow=workflow,
                profile_name=components.profile,
                base=components,
            )
            self._built[name] = AgentComponents(
                stt=own.stt if agent.stt else None,
                llm=own.llm if agent.llm else None,
                tts=own.tts if agent.tts else None,
            )
            self._owned.append(
                Components(
                    stt=own.stt if agent.stt else None,
                    llm=own.llm if agent.llm else None,
                    tts=own.tts if agent.tts else None,
                )
            )

    def __call__(self, name: str) -> AgentComponents:
        return self._built.get(name, self._empty)

    async def aclose(self) -> None:
        for owned in self._owned:
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
    from frontdesk.workflows.persistence import configured_redis_url, open_persistence

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


def _start_call() -> Callable[..., Awaitable[Any]]:
    """The session layer's ``start_call`` (imported late: it pulls in the agents and state)."""
    from frontdesk.workflows.session import start_call

    return start_call


async def entrypoint(ctx: JobContext) -> None:
    """One call: connect, wait for the caller, start (or resume) the session, watch it end."""
    from livekit.agents.voice.room_io import RoomOptions

    setup = job_setup(ctx.proc.userdata)
    workflow = setup.workflow
    settings = workflow.config.worker
    decision = decide_job(ctx.job.metadata, workflow)
    # built before connecting: a bad key or setting fails here, not mid-call
    components = build_components(
        setup.profile,
        workflow=workflow,
        profile_name=setup.profile_name,
        prewarmed_vad=ctx.proc.userdata.get(VAD_KEY),
    )
    per_agent = AgentComponentsTable(workflow=workflow, components=components)

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
    logger.info(
        "call for %s in room %s (workflow %s, profile %s)",
        caller or participant.identity,
        ctx.room.name,
        decision.workflow_name or workflow.name,
        setup.profile_name,
    )

    try:
        persistence = await open_call_persistence(stack, workflow, owner=owner_id(ctx))
        call = await _start_call()(
            workflow=workflow,
            caller_identity=caller or None,
            components=components,
            agent_components=per_agent,
            persistence=persistence,
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

    live = LIVE_SESSIONS.started()
    logger.debug("live calls in this process: %d", live)
    started = time.monotonic()
    metrics = CallMetrics()
    attach_metrics(call.session, metrics)

    watch = ReconnectWatch(
        identity=participant.identity,
        grace=settings.reconnect_grace,
        end_call=ctx.shutdown,
    )
    ctx.room.on("participant_disconnected", watch.participant_disconnected)
    ctx.room.on("participant_connected", watch.participant_connected)

    def on_close(event: CloseEvent) -> None:
        ctx.shutdown(reason=f"session closed ({event.reason.value})")

    call.session.on("close", on_close)

    async def end_of_call(reason: str) -> None:
        watch.close()
        try:
            await finish_call(call, reason=reason, metrics=metrics, started=started)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(_cleanup(stack, components, per_agent), CLEANUP_TIMEOUT)
            live = LIVE_SESSIONS.ended()
            logger.debug("live calls in this process: %d", live)

    ctx.add_shutdown_callback(end_of_call)


async def _cleanup(
    stack: contextlib.AsyncExitStack, components: Components, per_agent: AgentComponentsTable
) -> None:
    """Close the state store's client, then the provider connections the call opened."""
    try:
        await stack.aclose()
    finally:
        await per_agent.aclose()
        await components.aclose()


# --------------------------------------------------------------------------- the command

LIVEKIT_MODES = ("console", "start", "dev", "connect", "download-files")
_NEEDS_LIVEKIT = frozenset({"start", "dev", "connect"})
_RUNS_CALLS = frozenset({"start", "dev", "connect", "console"})


def _mode(argv: list[str]) -> str | None:
    return next((arg for arg in argv if not arg.startswith("-")), None)


def _env_with_flags(argv: list[str], env: Mapping[str, str]) -> dict[str, str]:
    """``env`` plus the credentials given as LiveKit CLI flags (``--url X`` or ``--url=X``)."""
    merged = dict(env)
    for index, arg in enumerate(argv):
        flag, _, inline = arg.partition("=")
        if flag in _CREDENTIAL_FLAGS:
            value = inline or (argv[index + 1] if index + 1 < len(argv) else "")
            if value and not value.startswith("-"):
                merged[_CREDENTIAL_FLAGS[flag]] = value
    return merged


def preflight(workflow: Workflow, mode: str | None, *, env: Mapping[str, str]) -> str:
    """Every check that can fail before the worker connects; returns the profile name.

    ``console`` and ``download-files`` need no LiveKit credentials (the console runs a local fake
    job); every mode that runs calls needs the profile's provider keys, and ``start`` (production)
    needs a configured Redis, because an unpersisted production call cannot resume.
    """
    if mode in _NEEDS_LIVEKIT:
        check_credentials(env)
    profile_name = active_profile_name(workflow, env=env)
    if mode in _RUNS_CALLS:
        profile = workflow.config.providers.profiles[profile_name]
        ensure_env(profile, profile_name=profile_name, workflow=workflow, env=env)
        if profile.llm.provider == "offline":
            try:
                import frontdesk.agents.offline_brain  # noqa: F401
            except ImportError as exc:
                raise WorkerSetupError(f"the offline brain is not available ({exc})") from None
    if mode == "start":
        from frontdesk.workflows.persistence import REDIS_URL_ENV

        if not (env.get(REDIS_URL_ENV, "").strip() or workflow.config.state.redis_url.strip()):
            raise WorkerSetupError(
                f"`worker start` needs Redis for resumable calls: set {REDIS_URL_ENV} or "
                f"state.redis_url in {workflow.source}"
            )
    return profile_name


def run_worker(argv: list[str], workflow_path: str | None) -> int:
    """``frontdesk worker <LiveKit mode> [options]``: check, then hand over to LiveKit's CLI.

    ``argv`` is what follows ``worker`` (``start``, ``dev``, ``console --text``, ``--help``…).
    Setup problems raise :class:`WorkerSetupError` / :class:`ConfigError` before anything
    connects; LiveKit's own exit code is returned.
    """
    workflow = load_workflow(workflow_path)
    mode = _mode(argv)
    wants_help = "--help" in argv or mode is None
    if wants_help:
        profile_name = _profile_for_help(workflow)
    else:
        profile_name = preflight(workflow, mode, env=_env_with_flags(argv, os.environ))
    options = build_worker_options(workflow, profile_name=profile_name)
    saved_argv = sys.argv
    sys.argv = ["frontdesk worker", *argv]
    try:
        cli.run_app(options)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = saved_argv
    return 0


def _profile_for_help(workflow: Workflow) -> str:
    """Help must work even with a bad ``FRONTDESK_PROFILE``: nothing runs."""
    try:
        return active_profile_name(workflow)
    except WorkerSetupError:
        return "offline"
