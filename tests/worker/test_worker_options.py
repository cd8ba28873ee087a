"""The ``WorkerOptions`` handed to LiveKit carry our job-request answer and our prewarm.

Checked through LiveKit's own ``AgentServer`` (what ``cli.run_app`` builds from the options), so a
callback missing from the options shows up as LiveKit's default taking its place.
"""

from __future__ import annotations

from typing import Any

from livekit.agents import AgentServer, JobExecutorType, JobProcess

from frontdesk.workflows.definition import Workflow
from frontdesk.workflows.worker import JobSetup, build_worker_options, job_setup

from .test_decisions import job_request


async def test_livekit_asks_our_request_fnc_which_answers_by_the_workflows_dispatch_rules(
    workflow: Workflow,
) -> None:
    server = AgentServer.from_server_options(build_worker_options(workflow, profile_name="offline"))
    answer = server._request_fnc
    assert answer is not None
    answers: list[tuple[str, Any]] = []
    await answer(job_request('{"workflow": "acme-broadband"}', answers))
    await answer(job_request('{"workflow": "someone-elses-line"}', answers))
    assert [kind for kind, _ in answers] == ["accept", "reject"]
    assert answers[0][1].attributes == {"frontdesk.workflow": "acme-broadband"}
    assert answers[1] == ("reject", False)  # not terminated: another worker may serve it


def test_livekit_prewarms_each_job_process_with_the_workflow_and_profile(
    workflow: Workflow,
) -> None:
    server = AgentServer.from_server_options(build_worker_options(workflow, profile_name="offline"))
    assert server.setup_fnc is not None
    proc = JobProcess(executor_type=JobExecutorType.PROCESS, user_arguments=None, http_proxy=None)
    server.setup_fnc(proc)
    setup = job_setup(proc.userdata)
    assert isinstance(setup, JobSetup)
    assert setup.workflow is workflow
    assert setup.profile_name == "offline"


async def test_a_request_whose_metadata_cannot_be_read_is_rejected_not_left_hanging(
    workflow: Workflow, monkeypatch: Any
) -> None:
    from frontdesk.workflows.worker import dispatch

    def broken(_metadata: str, _workflow: Workflow) -> Any:
        raise RuntimeError("unexpected")

    monkeypatch.setattr(dispatch, "decide_job", broken)
    answers: list[tuple[str, Any]] = []
    await dispatch.request_job(
        job_request('{"workflow": "acme-broadband"}', answers), workflow=workflow
    )
    assert answers == [("reject", False)]


def test_livekit_serves_metrics_on_the_deployments_port_which_wins_over_the_configs(
    workflow: Workflow, monkeypatch: Any
) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.delenv("FRONTDESK_PROMETHEUS_PORT", raising=False)
    assert not isinstance(
        build_worker_options(workflow, profile_name="offline").prometheus_port, int
    )
    monkeypatch.setenv("FRONTDESK_PROMETHEUS_PORT", "9471")
    options = build_worker_options(workflow, profile_name="offline")
    assert options.prometheus_port == 9471
    assert "frontdesk-prometheus-9471" in str(options.prometheus_multiproc_dir)
    worker = workflow.config.worker.model_copy(update={"metrics_port": 9000})
    both = Workflow(config=workflow.config.model_copy(update={"worker": worker}))
    assert build_worker_options(both, profile_name="offline").prometheus_port == 9471
    monkeypatch.delenv("FRONTDESK_PROMETHEUS_PORT")
    assert build_worker_options(both, profile_name="offline").prometheus_port == 9000
