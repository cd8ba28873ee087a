"""The LiveKit worker: dispatch, load, the reconnect watch, one call per job, options and the command."""

from __future__ import annotations

from frontdesk.workflows.worker.command import (
    LIVEKIT_ENV,
    LIVEKIT_MODES,
    check_credentials,
    preflight,
    run_worker,
)
from frontdesk.workflows.worker.dispatch import (
    MAX_METADATA_BYTES,
    PARTICIPANT_KINDS,
    SIP_PHONE_ATTRIBUTE,
    JobDecision,
    caller_identity,
    decide_job,
    participant_kinds,
    request_job,
    served_names,
    short_repr,
)
from frontdesk.workflows.worker.job import (
    CLEANUP_TIMEOUT,
    SAVE_TIMEOUT,
    SETUP_KEY,
    SHUTDOWN_PROCESS_TIMEOUT,
    VAD_KEY,
    AgentPipelines,
    JobSetup,
    attach_metrics,
    current_agent_id,
    entrypoint,
    finish_call,
    job_setup,
    open_call_persistence,
    owner_id,
    prewarm,
)
from frontdesk.workflows.worker.load import (
    LIVE_SESSIONS,
    LiveSessions,
    SessionLoad,
    compute_load,
)
from frontdesk.workflows.worker.options import (
    build_worker_options,
)
from frontdesk.workflows.worker.reconnect import (
    DELIBERATE_LEAVE_REASONS,
    ReconnectWatch,
)

__all__ = [
    "CLEANUP_TIMEOUT",
    "DELIBERATE_LEAVE_REASONS",
    "LIVEKIT_ENV",
    "LIVEKIT_MODES",
    "LIVE_SESSIONS",
    "MAX_METADATA_BYTES",
    "PARTICIPANT_KINDS",
    "SAVE_TIMEOUT",
    "SETUP_KEY",
    "SHUTDOWN_PROCESS_TIMEOUT",
    "SIP_PHONE_ATTRIBUTE",
    "VAD_KEY",
    "AgentPipelines",
    "JobDecision",
    "JobSetup",
    "LiveSessions",
    "ReconnectWatch",
    "SessionLoad",
    "attach_metrics",
    "build_worker_options",
    "caller_identity",
    "check_credentials",
    "compute_load",
    "current_agent_id",
    "decide_job",
    "entrypoint",
    "finish_call",
    "job_setup",
    "open_call_persistence",
    "owner_id",
    "participant_kinds",
    "preflight",
    "prewarm",
    "request_job",
    "run_worker",
    "served_names",
    "short_repr",
]
