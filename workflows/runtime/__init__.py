"""The call runtime: session assembly, persistence, the recorder, transcripts, metrics and scenarios."""

from __future__ import annotations

from frontdesk.workflows.runtime.metrics import (
    AgentUsage,
    CallMetrics,
    Latency,
)
from frontdesk.workflows.runtime.persistence import (
    REDIS_URL_ENV,
    configured_redis_url,
    connect_state_redis,
    open_persistence,
)
from frontdesk.workflows.runtime.recorder import (
    CLAIM_RETRY_MAX,
    SessionRecorder,
    meta_of,
    serialize_items,
)
from frontdesk.workflows.runtime.session import (
    CLOSE_FLUSH_TIMEOUT,
    SESSION_CLOSE_TIMEOUT,
    Call,
    CallReport,
    Persistence,
    ResumeLookup,
    cap_for_resume,
    find_resume_plan,
    open_state,
    start_call,
    valid_caller_data,
)
from frontdesk.workflows.runtime.simulate import (
    DEMO_SCENARIO,
    TURN_TIMEOUT,
    Reply,
    Scenario,
    ScenarioRunner,
    ScenarioTurn,
    TurnResult,
    check_expectations,
    load_scenario,
    parse_scenario,
    reply_of,
)
from frontdesk.workflows.runtime.transcript import (
    Transcript,
    TranscriptHandoff,
    TranscriptLine,
    build_transcript,
)

__all__ = [
    "CLAIM_RETRY_MAX",
    "CLOSE_FLUSH_TIMEOUT",
    "DEMO_SCENARIO",
    "REDIS_URL_ENV",
    "SESSION_CLOSE_TIMEOUT",
    "TURN_TIMEOUT",
    "AgentUsage",
    "Call",
    "CallMetrics",
    "CallReport",
    "Latency",
    "Persistence",
    "Reply",
    "ResumeLookup",
    "Scenario",
    "ScenarioRunner",
    "ScenarioTurn",
    "SessionRecorder",
    "Transcript",
    "TranscriptHandoff",
    "TranscriptLine",
    "TurnResult",
    "build_transcript",
    "cap_for_resume",
    "check_expectations",
    "configured_redis_url",
    "connect_state_redis",
    "find_resume_plan",
    "load_scenario",
    "meta_of",
    "open_persistence",
    "open_state",
    "parse_scenario",
    "reply_of",
    "serialize_items",
    "start_call",
    "valid_caller_data",
]
