"""Live reload: a worker follows its config file; new calls get a valid change, calls in
progress (and callers who drop and resume) keep the version they started with, and an invalid
change is logged with its key paths and never replaces the good one.

Real calls in text mode on the private redis-server, a real config file rewritten on disk, and
the entrypoint in LiveKit's fake job context (as ``test_entrypoint`` runs it).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from frontdesk.state import RedisSessionStore
from frontdesk.workflows.definition import Workflow, WorkflowConfig, load_workflow
from frontdesk.workflows.runtime import Call, Persistence, open_persistence, start_call
from frontdesk.workflows.worker import JobSetup
from frontdesk.workflows.worker import reload as live
from frontdesk.workflows.worker.reload import WorkflowSource
from tests.conftest import config_without_sensitive_fields

from ..conftest import TEST_CALLER_SECRET
from .test_entrypoint import FakeCall, Harness, run_entrypoint

ROOT = Path(__file__).resolve().parents[2]
CALLER = "+15551230000"
V1_SAY = "Let me get you to support."
V2_SAY = "Connecting you to our support team now."
V1_RESUME = "Welcome back. We were checking your line for account {account_number}."
V2_RESUME = "Hello again. Still on account {account_number}, is that right?"


def write_config(
    path: Path, *, say: str = V1_SAY, resume: str = V1_RESUME, extra: str = ""
) -> None:
    # the account number not sensitive: a resumed caller hears the version's resume line (with
    # the shipped config it is withheld until they repeat it: tests/security)
    text = config_without_sensitive_fields()
    text = text.replace(f'say = "{V1_SAY}"', f'say = "{say}"', 1)
    text = text.replace(f'resume = "{V1_RESUME}"', f'resume = "{resume}"', 1)
    path.write_text(text + extra)


def said(events: Any) -> list[str]:
    return [
        event.item.text_content
        for event in events
        if event.type == "message" and event.item.role == "assistant"
    ]


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    write_config(path)
    return path


@pytest.fixture
def source(config_file: Path) -> WorkflowSource:
    return WorkflowSource(config_file, load_workflow(config_file), min_interval=0.0)


def test_a_valid_change_becomes_the_workflow_of_new_calls(
    source: WorkflowSource, config_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = source.current()
    write_config(config_file, say=V2_SAY)
    second = source.current()
    assert first.content_hash != second.content_hash
    assert second.agent("receptionist").handoffs[0].say == V2_SAY
    assert f"config reloaded from {config_file}: {first.identity} -> {second.identity}" in (
        caplog.text
    )


def test_an_invalid_change_is_logged_with_its_key_path_and_never_replaces_the_good_one(
    source: WorkflowSource, config_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = source.current()
    text = config_file.read_text().replace('to = "support"', 'to = "suport"', 1)
    config_file.write_text(text)
    line = text.splitlines().index('to = "suport"') + 1
    assert source.current() is good
    assert source.current() is good  # and stays so, logged once
    assert caplog.text.count("NOT applied") == 1
    assert f"{config_file}:{line} agents.receptionist.handoffs[0].to: unknown agent 'suport'" in (
        caplog.text
    )
    assert source.rejected and "suport" in source.rejected[0]
    write_config(config_file, say=V2_SAY)  # fixed: the next valid version applies
    assert source.current().agent("receptionist").handoffs[0].say == V2_SAY
    assert source.rejected == []


def test_a_change_naming_a_python_tool_that_does_not_import_is_rejected(
    source: WorkflowSource, config_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = source.current()
    text = config_file.read_text().replace(
        "[agents.sales]\n", '[agents.sales]\ntools = ["no_such_module_zz:f"]\n', 1
    )
    config_file.write_text(text)
    assert source.current() is good
    assert "agents.sales.tools[0]: cannot import module 'no_such_module_zz'" in caplog.text


def test_an_unchanged_file_rewritten_is_not_a_reload(
    source: WorkflowSource, config_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = source.current()
    config_file.write_text(config_file.read_text())
    assert source.current() is first
    assert "reloaded" not in caplog.text


async def test_each_job_runs_the_workflow_of_the_config_file_as_it_is_when_the_call_starts(
    monkeypatch: pytest.MonkeyPatch, config_file: Path
) -> None:
    monkeypatch.setattr(live, "MIN_INTERVAL", 0.0)
    setup = JobSetup(
        workflow=load_workflow(config_file), profile_name="offline", config_path=str(config_file)
    )
    first = Harness(monkeypatch, FakeCall())
    await run_entrypoint(first, setup)
    write_config(config_file, say=V2_SAY)
    second = Harness(monkeypatch, FakeCall())
    await run_entrypoint(second, setup)
    config_file.write_text("[workflow]\nname = 'broken'\n")  # invalid: the good one stays
    third = Harness(monkeypatch, FakeCall())
    await run_entrypoint(third, setup)
    says = [
        harness.started["workflow"].agent("receptionist").handoffs[0].say
        for harness in (first, second, third)
    ]
    assert says == [V1_SAY, V2_SAY, V2_SAY]


# --------------------------------------------------------------------------- real calls


@pytest.fixture
def persistence(redis_client: Any, make_store: Callable[..., RedisSessionStore]) -> Persistence:
    from frontdesk.state.versions import RedisWorkflowVersions

    settings = load_workflow(ROOT / "config.toml").config.state
    return Persistence(
        store=make_store(redis_client, key_prefix="frontdesk"),
        settings=settings,
        caller_secret=TEST_CALLER_SECRET,
        versions=RedisWorkflowVersions(redis_client, key_prefix="frontdesk", ttl=settings.ttl),
    )


async def call(workflow: Workflow, persistence: Persistence) -> Call:
    return await start_call(workflow=workflow, caller_identity=CALLER, persistence=persistence)


async def test_a_call_in_progress_keeps_its_version_while_new_calls_get_the_change(
    source: WorkflowSource, config_file: Path, persistence: Persistence
) -> None:
    running = await call(source.current(), persistence)
    try:
        write_config(config_file, say=V2_SAY)  # the config changes during the call
        newer = await start_call(workflow=source.current(), caller_identity="+15559990000")
        try:
            heard_new = await newer.session.run(user_input="my internet is down")
            heard_running = await running.session.run(user_input="my internet is down")
        finally:
            await newer.aclose("caller hung up")
        assert V2_SAY in said(heard_new.events)
        assert V1_SAY in said(heard_running.events)
        assert V2_SAY not in said(heard_running.events)
    finally:
        await running.aclose("caller hung up")


async def test_a_caller_who_drops_resumes_on_the_version_their_call_started_with(
    source: WorkflowSource,
    config_file: Path,
    persistence: Persistence,
    redis_client: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    first = await call(source.current(), persistence)
    v1 = source.current()
    await first.session.run(user_input="my internet is down")
    await first.session.run(user_input="it's AC-48213")
    await first.aclose("caller dropped")
    assert await redis_client.exists(f"frontdesk:wf:{v1.content_hash}")  # the version is kept

    write_config(config_file, resume=V2_RESUME)
    v2 = source.current()
    assert v2.content_hash != v1.content_hash
    back = await call(v2, persistence)
    try:
        assert back.resumed
        opening = said(back.opening.events if back.opening else [])
        assert opening[0] == V1_RESUME.format(account_number="AC-48213")
        assert "resumed on the workflow version it started with" in caplog.text
    finally:
        await back.aclose("caller dropped")

    # the version expires (no live session kept it): the current one's rules apply
    await redis_client.delete(f"frontdesk:wf:{v1.content_hash}")
    # the resumed call stored its session under v1 again; it is gone now
    again = await call(v2, persistence)
    try:
        assert again.resumed  # the agent still exists in v2: resumed on it, with v2's line
        opening = said(again.opening.events if again.opening else [])
        assert opening[0] == V2_RESUME.format(account_number="AC-48213")
    finally:
        await again.aclose("caller hung up")


async def test_a_resumed_call_whose_version_is_gone_and_agent_removed_restarts_at_the_start(
    source: WorkflowSource, config_file: Path, persistence: Persistence, redis_client: Any
) -> None:
    first = await call(source.current(), persistence)
    v1 = source.current()
    await first.session.run(user_input="I'd like to upgrade my plan")  # -> sales
    assert first.session.current_agent.id == "sales"
    await first.aclose("caller dropped")
    await redis_client.delete(f"frontdesk:wf:{v1.content_hash}")
    # v2 has no sales agent (and no route to it)
    config_file.write_text(_without_sales(config_file.read_text()))
    v2 = source.current()
    assert "sales" not in v2.config.agents
    back = await call(v2, persistence)
    try:
        assert back.plan is not None and back.plan.kind == "restart_at_start"
        assert back.session.current_agent.id == v2.start
    finally:
        await back.aclose("caller hung up")


def _without_sales(text: str) -> str:
    """The default config without the sales agent, its routes and its offline fixtures."""
    import tomllib

    from tests.reliability.toml_writer import dumps

    data = tomllib.loads(text)
    del data["agents"]["sales"]
    for agent in data["agents"].values():
        agent["handoffs"] = [r for r in agent.get("handoffs", []) if r["to"] != "sales"]
    data.get("offline", {}).get("agents", {}).pop("sales", None)
    for fixture in data.get("offline", {}).get("agents", {}).values():
        fixture.get("examples", {}).pop("sales", None)
    return dumps(data)


async def test_open_persistence_keeps_versions_in_the_configured_redis(
    redis_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    workflow = load_workflow(ROOT / "config.toml")
    monkeypatch.setenv("FRONTDESK_REDIS_URL", redis_server.url)
    async with open_persistence(workflow, allow_embedded=False) as persistence:
        assert persistence.versions is not None
        first = await start_call(
            workflow=workflow, caller_identity="+15557770000", persistence=persistence
        )
        await first.aclose("caller hung up")
        kept = await persistence.versions.get(workflow.content_hash)
    assert kept is not None and b'"receptionist"' in kept


async def test_a_kept_version_not_signed_with_the_state_secret_is_never_used(
    source: WorkflowSource,
    config_file: Path,
    persistence: Persistence,
    redis_client: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = await call(source.current(), persistence)
    v1 = source.current()
    await first.session.run(user_input="my internet is down")
    await first.session.run(user_input="it's AC-48213")
    await first.aclose("caller dropped")
    signature, _, body = (await redis_client.get(f"frontdesk:wf:{v1.content_hash}")).partition(
        b"\n"
    )
    # someone with write access to Redis (but not the secret) plants a consistent version:
    # a document, stored under its own content hash, that the session now names
    forged = body.replace(b"Welcome back. We were checking", b"Welcome back. We were CHECKING")
    planted = Workflow(config=WorkflowConfig.model_validate_json(forged))
    await redis_client.set(f"frontdesk:wf:{planted.content_hash}", signature + b"\n" + forged)
    await redis_client.hset(
        f"frontdesk:s:{{{first.session_id}}}:meta",
        "workflow_hash",
        json.dumps(planted.content_hash),
    )
    write_config(config_file, resume=V2_RESUME)
    back = await call(source.current(), persistence)
    try:
        opening = said(back.opening.events if back.opening else [])
        assert opening[0] == V2_RESUME.format(account_number="AC-48213")  # the current one
        assert "is not signed with the state secret; not used" in caplog.text
    finally:
        await back.aclose("caller hung up")
