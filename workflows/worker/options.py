"""LiveKit ``WorkerOptions`` wired to Frontdesk's entrypoint, dispatch, load and prewarm."""

from __future__ import annotations

import functools

from livekit.agents import WorkerOptions

from frontdesk import telemetry
from frontdesk.workflows.definition import Workflow
from frontdesk.workflows.providers import active_profile_name
from frontdesk.workflows.worker.dispatch import request_job
from frontdesk.workflows.worker.job import (
    SHUTDOWN_PROCESS_TIMEOUT,
    JobSetup,
    entrypoint,
    prewarm,
)
from frontdesk.workflows.worker.load import SessionLoad


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
