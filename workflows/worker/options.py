"""LiveKit ``WorkerOptions`` wired to Frontdesk's entrypoint, dispatch, load and prewarm."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping

from livekit.agents import WorkerOptions

from frontdesk import telemetry
from frontdesk.errors import WorkerSetupError
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

PROMETHEUS_PORT_ENV = "FRONTDESK_PROMETHEUS_PORT"
"""When set, LiveKit serves Prometheus metrics on this port (``lk_agents_worker_load`` is the
load an autoscaler follows; see deploy/k8s/worker-hpa.yaml)."""


def prometheus_port(env: Mapping[str, str]) -> int | None:
    """The port of ``FRONTDESK_PROMETHEUS_PORT``, None when unset; a bad value stops the worker."""
    raw = env.get(PROMETHEUS_PORT_ENV, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise WorkerSetupError(f"{PROMETHEUS_PORT_ENV}={raw!r}: expected a port number (1-65535)")
    return int(raw)


def build_worker_options(
    workflow: Workflow, *, profile_name: str | None = None, config_path: str | None = None
) -> WorkerOptions:
    """LiveKit ``WorkerOptions`` for ``workflow``, running ``profile_name`` (default: the active).

    With ``config_path`` every job process follows that file (live reload,
    :mod:`frontdesk.workflows.worker.reload`)."""
    name = profile_name or active_profile_name(workflow)
    worker = workflow.config.worker
    # FRONTDESK_PROMETHEUS_PORT (the deployment's) wins over [worker] metrics_port
    port = prometheus_port(os.environ)
    metrics = telemetry.worker_options(port if port is not None else worker.metrics_port)
    return WorkerOptions(
        entrypoint_fnc=entrypoint,
        prewarm_fnc=functools.partial(
            prewarm,
            setup=JobSetup(workflow=workflow, profile_name=name, config_path=config_path),
        ),
        request_fnc=functools.partial(request_job, workflow=workflow),
        load_fnc=SessionLoad(max_sessions=worker.max_sessions),
        load_threshold=worker.load_threshold,
        agent_name=worker.agent_name,
        shutdown_process_timeout=SHUTDOWN_PROCESS_TIMEOUT,
        **metrics,
    )
