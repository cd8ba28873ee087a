"""The job side of the worker: prewarm, the entrypoint, drops and rejoins, the saved ending.

No LiveKit server exists here. The entrypoint runs in LiveKit's own fake job context
(``livekit.agents.testing.fake_job_context``) on LiveKit's console mock room
(``livekit.agents.ipc.mock_room``), whose one participant is ``mock_user``; ``start_call`` is a
recording stand-in whose arguments are bound against the real ``start_call`` signature. The
shutdown path (:func:`finish_call`) also runs against a *real* call of the session layer, in
text mode, persisted to the private redis-server of ``tests/conftest.py``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import pickle
from types import SimpleNamespace
from typing import Any

import pytest
from livekit import rtc
from livekit.agents import AgentServer, AgentSession, JobContext, JobExecutorType, JobProcess
from livekit.agents.ipc.mock_room import create_mock_room
from livekit.agents.metrics import LLMMetrics
from livekit.agents.testing import fake_job_context
from livekit.agents.voice.events import CloseEvent, CloseReason, MetricsCollectedEvent
from livekit.plugins import silero

from frontdesk.agents.offline_brain import OfflineBrain
from frontdesk.agents.pipeline import Pipeline
from frontdesk.errors import WorkerSetupError
from frontdesk.state import RedisSessionStore
from frontdesk.workflows.definition import Workflow
from frontdesk.workflows.runtime import CallMetrics, Persistence, start_call
from frontdesk.workflows.worker import (
    LIVE_SESSIONS,
    SAVE_TIMEOUT,
    SHUTDOWN_PROCESS_TIMEOUT,
    JobSetup,
    ReconnectWatch,
    SessionLoad,
    build_worker_options,
    entrypoint,
    finish_call,
    prewarm,
)
from frontdesk.workflows.worker import job as worker

from ..conftest import TEST_CALLER_SECRET
from .conftest import with_extra
from .test_decisions import remote_participant

CALLER = "mock_user"
"""The identity of the console mock room's participant."""


class FakeCall:
    """What ``start_call`` returns, reduced to what the worker uses."""

    def __init__(
        self,
        *,
        aclose_delay: float = 0.0,
        aclose_error: Exception | None = None,
        turns: int = 2,
        agents: tuple[str, ...] = ("receptionist", "support"),
        saved: bool = True,
    ) -> None:
        self.session: AgentSession[Any] = AgentSession()
        self.report = SimpleNamespace(caller_turns=turns, agents=list(agents), saved=saved)
        self.session_id = "s-1"
        self.resumed = False
        self.closed_with: str | None = None
        self.metrics: dict[str, Any] | None = None
        self._delay = aclose_delay
        self._error = aclose_error

    async def aclose(
        self, reason: str = "caller left", *, metrics: dict[str, Any] | None = None
    ) -> Any:
        self.closed_with = reason
        self.metrics = metrics
        await asyncio.sleep(self._delay)
        if self._error is not None:
            raise self._error
        return self.report


class Harness:
    """The entrypoint in a fake job: what start_call got, and every ctx.shutdown reason."""

    def __init__(
        self, monkeypatch: pytest.MonkeyPatch, call: FakeCall, *, real_persistence: bool = False
    ) -> None:
        self.call = call
        self.started: dict[str, Any] = {}
        self.shutdowns: list[str] = []
        self.room = create_mock_room.__wrapped__()  # a fresh mock, not the cached one

        async def recording_start_call(**kwargs: Any) -> FakeCall:
            inspect.signature(start_call).bind(**kwargs)  # the real signature accepts them
            self.started.update(kwargs)
            return call

        async def no_persistence(*_args: Any, **_kwargs: Any) -> None:
            return None

        monkeypatch.setattr(worker, "start_call", recording_start_call)
        if not real_persistence:
            monkeypatch.setattr(worker, "open_call_persistence", no_persistence)

    def room_handler(self, event: str) -> Any:
        [handler] = [c.args[1] for c in self.room.on.call_args_list if c.args[0] == event][-1:]
        return handler


@pytest.fixture
def offline_setup(workflow: Workflow) -> JobSetup:
    return JobSetup(workflow=workflow, profile_name="offline")


async def run_entrypoint(harness: Harness, setup: JobSetup, *, metadata: str = "") -> Any:
    with fake_job_context(room=harness.room, job_metadata=metadata, job_id="AJ_1") as ctx:
        ctx._on_shutdown = harness.shutdowns.append  # record ctx.shutdown(reason)
        prewarm(ctx.proc, setup=setup)
        await entrypoint(ctx)
        return ctx


# --------------------------------------------------------------------------- the entrypoint


async def test_entrypoint_starts_the_call_for_the_caller(
    monkeypatch: pytest.MonkeyPatch, offline_setup: JobSetup, caplog: pytest.LogCaptureFixture
) -> None:
    harness = Harness(monkeypatch, FakeCall(), real_persistence=True)
    live_before = LIVE_SESSIONS.count
    with caplog.at_level(logging.WARNING, logger="frontdesk.workflows.worker"):
        ctx = await run_entrypoint(
            harness, offline_setup, metadata='{"workflow": "acme-broadband"}'
        )

    started = harness.started
    assert started["workflow"] is offline_setup.workflow
    assert started["caller_identity"] == CALLER
    assert started["room"] is harness.room
    assert isinstance(started["components"].llm, OfflineBrain)
    # the worker's own open_call_persistence ran: no Redis configured, so an unpersisted call
    assert started["persistence"] is None
    assert "no Redis configured: this call is not persisted" in caplog.text
    assert started["agent_components"]("support") == Pipeline()
    options = started["room_options"]
    assert options.participant_identity == CALLER
    assert options.close_on_disconnect is False  # the reconnect watch decides
    assert LIVE_SESSIONS.count == live_before + 1
    assert len(ctx._shutdown_callbacks) == 1

    await ctx._shutdown_callbacks[0]("caller left")
    assert harness.call.closed_with == "caller left"
    assert LIVE_SESSIONS.count == live_before


async def test_a_configured_redis_persists_the_call_under_this_jobs_owner(
    monkeypatch: pytest.MonkeyPatch, offline_setup: JobSetup, redis_server: Any
) -> None:
    monkeypatch.setenv("FRONTDESK_REDIS_URL", redis_server.url)
    harness = Harness(monkeypatch, FakeCall(), real_persistence=True)
    ctx = await run_entrypoint(harness, offline_setup)
    persistence = harness.started["persistence"]
    assert isinstance(persistence, Persistence)
    assert isinstance(persistence.store, RedisSessionStore)
    assert persistence.owner == f"{ctx.worker_id}/AJ_1"  # worker and job: one owner per call
    assert await persistence.store.find_by_caller(CALLER) is None  # a live, reachable store
    await ctx._shutdown_callbacks[0]("caller left")


@pytest.mark.parametrize(
    ("turns", "agents", "saved", "shown"),
    [
        (2, ("receptionist", "support"), True, "2 turns, agents receptionist > support, "),
        (5, ("sales",), False, "5 turns, agents sales, "),
    ],
)
async def test_shutdown_saves_and_logs_a_summary_with_per_agent_metrics(
    monkeypatch: pytest.MonkeyPatch,
    offline_setup: JobSetup,
    caplog: pytest.LogCaptureFixture,
    turns: int,
    agents: tuple[str, ...],
    saved: bool,
    shown: str,
) -> None:
    harness = Harness(monkeypatch, FakeCall(turns=turns, agents=agents, saved=saved))
    ctx = await run_entrypoint(harness, offline_setup)
    metrics = LLMMetrics(
        label="openai.LLM",
        request_id="r",
        timestamp=0.0,
        duration=1.0,
        ttft=0.42,
        cancelled=False,
        completion_tokens=12,
        prompt_tokens=300,
        prompt_cached_tokens=0,
        total_tokens=312,
        tokens_per_second=20.0,
    )
    harness.call.session.emit("metrics_collected", MetricsCollectedEvent(metrics=metrics))
    with caplog.at_level(logging.INFO, logger="frontdesk.workflows.worker"):
        await ctx._shutdown_callbacks[0]("caller did not rejoin within 20s")
    # the call was closed with the shutdown's reason and the metrics the session emitted …
    assert harness.call.closed_with == "caller did not rejoin within 20s"
    assert harness.call.metrics is not None
    assert harness.call.metrics["totals"]["llm"]["requests"] == 1
    # … and the summary line reports what that close returned
    [summary] = [r.getMessage() for r in caplog.records if "summary" in r.getMessage()]
    assert summary.startswith(f"call s-1 summary: {shown}")
    state = "saved" if saved else "NOT SAVED"
    assert f", {state}; llm ttft 0.42s, tokens 300+12" in summary


async def test_caller_hanging_up_ends_the_call_at_once(
    monkeypatch: pytest.MonkeyPatch, offline_setup: JobSetup
) -> None:
    harness = Harness(monkeypatch, FakeCall())
    await run_entrypoint(harness, offline_setup)
    hang_up = remote_participant(CALLER, disconnect_reason=rtc.DisconnectReason.CLIENT_INITIATED)
    harness.room_handler("participant_disconnected")(hang_up)
    assert harness.shutdowns == ["caller left (CLIENT_INITIATED)"]


async def test_a_dropped_caller_gets_the_grace_period(
    monkeypatch: pytest.MonkeyPatch, workflow: Workflow
) -> None:
    quick = with_extra("").config.model_copy(
        update={"worker": workflow.config.worker.model_copy(update={"reconnect_grace": 0.05})}
    )
    setup = JobSetup(workflow=Workflow(config=quick), profile_name="offline")
    harness = Harness(monkeypatch, FakeCall())
    await run_entrypoint(harness, setup)
    drop = remote_participant(CALLER, disconnect_reason=rtc.DisconnectReason.SIGNAL_CLOSE)
    harness.room_handler("participant_disconnected")(drop)
    assert harness.shutdowns == []
    await asyncio.sleep(0.1)
    assert harness.shutdowns == ["caller did not rejoin within 0.05s"]


async def test_the_session_closing_ends_the_job(
    monkeypatch: pytest.MonkeyPatch, offline_setup: JobSetup
) -> None:
    harness = Harness(monkeypatch, FakeCall())
    await run_entrypoint(harness, offline_setup)
    harness.call.session.emit("close", CloseEvent(reason=CloseReason.ERROR))
    assert harness.shutdowns == ["session closed (error)"]


async def test_a_failing_call_setup_shuts_the_job_down(
    monkeypatch: pytest.MonkeyPatch, offline_setup: JobSetup, caplog: pytest.LogCaptureFixture
) -> None:
    harness = Harness(monkeypatch, FakeCall())

    async def broken(**_kwargs: Any) -> Any:
        raise RuntimeError("redis exploded")

    monkeypatch.setattr(worker, "start_call", broken)
    live_before = LIVE_SESSIONS.count
    with caplog.at_level(logging.ERROR, logger="frontdesk.workflows.worker"):
        ctx = await run_entrypoint(harness, offline_setup)
    assert harness.shutdowns == ["call setup failed"]
    assert ctx._shutdown_callbacks == []
    assert LIVE_SESSIONS.count == live_before
    assert "call setup failed in room" in caplog.text


async def test_a_room_closing_before_anyone_calls_closes_what_was_opened(
    monkeypatch: pytest.MonkeyPatch, offline_setup: JobSetup
) -> None:
    harness = Harness(monkeypatch, FakeCall())
    cleaned: list[object] = []

    async def cleanup(*opened: object) -> None:
        cleaned.extend(opened)

    async def nobody(**_kwargs: Any) -> Any:
        raise RuntimeError("room disconnected while waiting for participant")

    monkeypatch.setattr(worker, "_cleanup", cleanup)
    with fake_job_context(room=harness.room) as ctx:
        prewarm(ctx.proc, setup=offline_setup)
        monkeypatch.setattr(ctx, "wait_for_participant", nobody)
        with pytest.raises(RuntimeError, match="room disconnected"):
            await entrypoint(ctx)
    assert len(cleaned) == 3  # the exit stack, the call's components, the per-agent table
    assert harness.started == {}


async def test_entrypoint_without_prewarm_is_a_setup_error() -> None:
    room = create_mock_room.__wrapped__()
    with fake_job_context(room=room) as ctx, pytest.raises(WorkerSetupError, match="prewarm_fnc"):
        await entrypoint(ctx)


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        (["standard"], [rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD]),
        # the console's fake job always admits its standard caller as well
        (
            ["sip"],
            [
                rtc.ParticipantKind.PARTICIPANT_KIND_SIP,
                rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD,
            ],
        ),
    ],
)
async def test_the_entrypoint_waits_for_and_listens_to_the_configured_participant_kinds(
    monkeypatch: pytest.MonkeyPatch, workflow: Workflow, configured: list[str], expected: list[int]
) -> None:
    config = workflow.config.model_copy(
        update={
            "worker": workflow.config.worker.model_copy(update={"participant_kinds": configured})
        }
    )
    setup = JobSetup(workflow=Workflow(config=config), profile_name="offline")
    waited_for: list[object] = []
    wait = JobContext.wait_for_participant

    async def recording_wait(self: JobContext, **kwargs: Any) -> Any:
        waited_for.append(kwargs.get("kind"))
        return await wait(self, **kwargs)

    monkeypatch.setattr(JobContext, "wait_for_participant", recording_wait)
    harness = Harness(monkeypatch, FakeCall())
    await run_entrypoint(harness, setup)
    assert waited_for == [expected]
    assert harness.started["room_options"].participant_kinds == expected


# --------------------------------------------------------------------------- finish_call


async def test_a_save_that_fails_is_logged_with_the_session_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    call = FakeCall(aclose_error=ConnectionError("redis down"))
    with caplog.at_level(logging.INFO, logger="frontdesk.workflows.worker"):
        report = await finish_call(call, reason="caller left", metrics=CallMetrics(), started=0.0)
    assert report["saved"] is False
    assert "call s-1: saving the final state failed: ConnectionError('redis down')" in caplog.text
    assert "call s-1 summary: ? turns, agents -" in caplog.text
    assert "NOT SAVED" in caplog.text


async def test_a_save_that_hangs_is_cut_off_inside_the_shutdown_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert SAVE_TIMEOUT < SHUTDOWN_PROCESS_TIMEOUT
    call = FakeCall(aclose_delay=5.0)
    with caplog.at_level(logging.INFO, logger="frontdesk.workflows.worker"):
        report = await finish_call(
            call, reason="caller left", metrics=CallMetrics(), started=0.0, timeout=0.05
        )
    assert report["saved"] is False
    assert "call s-1: saving the final state timed out after 0.1s" in caplog.text


async def test_finish_call_saves_a_real_call(
    workflow: Workflow, store: RedisSessionStore, caplog: pytest.LogCaptureFixture
) -> None:
    """The session layer's own Call, text mode, persisted to a real redis-server."""
    persistence = Persistence(
        store=store,
        settings=workflow.config.state,
        caller_secret=TEST_CALLER_SECRET,
        owner="AW_test/AJ_1",
    )
    call = await start_call(
        workflow=workflow, caller_identity="+15551234567", persistence=persistence
    )
    metrics = CallMetrics()
    worker.attach_metrics(call.session, metrics)
    await call.session.run(user_input="hi, my internet is down")
    with caplog.at_level(logging.INFO, logger="frontdesk.workflows.worker"):
        report = await finish_call(call, reason="caller left", metrics=metrics, started=0.0)
    assert report["saved"] is True
    assert report["session_id"] == call.session_id
    assert report["turns"] == 1
    assert report["agents"] == ["receptionist", "support"]
    # the offline brain is an llm.LLM: LiveKit reports its metrics, per agent (both answered)
    assert set(report["metrics"]["agents"]) == {"receptionist", "support"}
    assert report["metrics"]["totals"]["llm"]["requests"] >= 2
    # what Redis now holds is this call, closed with this reason and these metrics
    stored = await store.load(call.session_id)
    assert stored.current_agent == "support"
    assert [item["id"] for item in stored.items] == [i.id for i in call.session.history.items]
    [record] = stored.calls
    assert (record.reason, record.caller_turns, record.agents) == (
        "caller left",
        1,
        ["receptionist", "support"],
    )
    assert record.metrics == report["metrics"]


# --------------------------------------------------------------------------- reconnect watch


def watch(grace: float) -> tuple[ReconnectWatch, list[str]]:
    ended: list[str] = []
    return ReconnectWatch(identity="+1555", grace=grace, end_call=ended.append), ended


async def test_a_rejoin_within_the_grace_keeps_the_call() -> None:
    watcher, ended = watch(0.1)
    watcher.participant_disconnected(
        remote_participant("+1555", disconnect_reason=rtc.DisconnectReason.SIGNAL_CLOSE)
    )
    assert watcher.waiting
    await asyncio.sleep(0.02)
    watcher.participant_connected(remote_participant("+1555"))
    assert not watcher.waiting
    await asyncio.sleep(0.15)
    assert ended == []


async def test_someone_else_leaving_or_joining_changes_nothing() -> None:
    watcher, ended = watch(0.05)
    watcher.participant_disconnected(
        remote_participant("someone", disconnect_reason=rtc.DisconnectReason.CLIENT_INITIATED)
    )
    watcher.participant_disconnected(remote_participant("+1555"))  # unknown reason: a drop
    watcher.participant_connected(remote_participant("someone"))
    await asyncio.sleep(0.1)
    assert ended == ["caller did not rejoin within 0.05s"]


@pytest.mark.parametrize(
    "reason",
    [
        rtc.DisconnectReason.CLIENT_INITIATED,
        rtc.DisconnectReason.ROOM_DELETED,
        rtc.DisconnectReason.USER_REJECTED,
        rtc.DisconnectReason.PARTICIPANT_REMOVED,
    ],
)
async def test_deliberate_leaves_end_the_call_at_once(reason: int) -> None:
    watcher, ended = watch(30)
    watcher.participant_disconnected(remote_participant("+1555", disconnect_reason=reason))
    assert ended == [f"caller left ({rtc.DisconnectReason.Name(reason)})"]  # type: ignore[arg-type]
    assert not watcher.waiting


async def test_zero_grace_ends_at_once_and_close_stops_the_timer() -> None:
    watcher, ended = watch(0)
    watcher.participant_disconnected(remote_participant("+1555"))
    assert ended == ["caller left (unknown reason)"]
    late, late_ended = watch(0.05)
    late.participant_disconnected(remote_participant("+1555"))
    late.close()
    await asyncio.sleep(0.1)
    assert late_ended == []


# --------------------------------------------------------------------------- worker options


def test_worker_options_follow_the_config(workflow: Workflow) -> None:
    tuned = with_extra("").config
    tuned = tuned.model_copy(
        update={
            "worker": tuned.worker.model_copy(
                update={"agent_name": "frontdesk-acme", "load_threshold": 0.6, "max_sessions": 8}
            )
        }
    )
    options = build_worker_options(Workflow(config=tuned), profile_name="offline")
    assert options.entrypoint_fnc is entrypoint
    assert options.agent_name == "frontdesk-acme"
    assert options.load_threshold == 0.6
    assert isinstance(options.load_fnc, SessionLoad)
    assert options.load_fnc.max_sessions == 8
    assert options.shutdown_process_timeout == SHUTDOWN_PROCESS_TIMEOUT
    # LiveKit's own constructor takes them (this is what cli.run_app does)
    server = AgentServer.from_server_options(options)
    assert server._agent_name == "frontdesk-acme"


def test_what_job_processes_receive_pickles(workflow: Workflow) -> None:
    """Job processes are started by a forkserver: entrypoint and prewarm travel pickled."""
    options = build_worker_options(workflow, profile_name="budget")
    entry, warm = pickle.loads(pickle.dumps((options.entrypoint_fnc, options.prewarm_fnc)))
    assert entry is entrypoint
    assert warm.keywords["setup"].workflow.identity == workflow.identity
    assert warm.keywords["setup"].profile_name == "budget"


def test_prewarm_loads_silero_once_when_the_profile_uses_it(workflow: Workflow) -> None:
    voice = JobProcess(executor_type=JobExecutorType.PROCESS, user_arguments=None, http_proxy=None)
    prewarm(voice, setup=JobSetup(workflow=workflow, profile_name="budget"))
    assert isinstance(voice.userdata[worker.VAD_KEY], silero.VAD)
    assert voice.userdata[worker.SETUP_KEY].profile_name == "budget"

    text = JobProcess(executor_type=JobExecutorType.PROCESS, user_arguments=None, http_proxy=None)
    prewarm(text, setup=JobSetup(workflow=workflow, profile_name="offline"))
    assert worker.VAD_KEY not in text.userdata
