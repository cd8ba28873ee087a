"""``--profile`` for simulate/chat/demo, and scenario expectations that hold for real models."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from frontdesk.errors import WorkerSetupError
from frontdesk.workflows.cli import main
from frontdesk.workflows.providers import ensure_env, text_mode_profile
from frontdesk.workflows.providers.text_mode import build_text_profile, text_profile_name
from frontdesk.workflows.runtime.simulate import OFFLINE_JUDGE_SKIP, ScenarioRunner, parse_scenario

from .conftest import KEY_ENV, PROFILE, ROOT, loopback_config, loopback_workflow
from .loopback_llm import brain_responder, is_judge_request

SCENARIO = """
[[turn]]
say = "hi, my internet is down"
expect_agent = "support"
expect_intent = "asks the caller for their account number"

[[turn]]
say = "sure, it's AC-48213"
expect_tool = { name = "record_account_number", arguments = { account_number = "AC-48213" } }
"""


async def _run(scenario_text: str, workflow: Any, profile: Any = None) -> list[Any]:
    runner = ScenarioRunner(workflow=workflow, persistence=None, profile=profile)
    return await runner.run(parse_scenario(scenario_text))


async def test_expect_intent_is_skipped_offline_with_a_clear_line_never_passed(caplog) -> None:
    results = await _run(SCENARIO, loopback_workflow("http://unused"))
    first, second = results
    assert first.skipped == [OFFLINE_JUDGE_SKIP]
    assert "offline profile has no model to judge it" in caplog.text
    assert first.ok and second.ok  # the other expectations were checked and held
    assert second.tools == [
        {"name": "record_account_number", "arguments": {"account_number": "AC-48213"}}
    ]


@pytest.mark.parametrize("verdict", [True, False])
async def test_expect_intent_is_judged_by_livekits_judge_with_the_profile_model(
    serve, verdict: bool
) -> None:
    judged: list[tuple[str, str]] = []

    def judge(intent: str, message: str) -> bool:
        judged.append((intent, message))
        return verdict

    base = loopback_workflow("http://unused")
    async with serve(brain_responder(base, judge=judge)) as server:
        workflow = loopback_workflow(server.base_url)
        profile = build_text_profile(workflow, PROFILE)
        try:
            first, _ = await _run(SCENARIO, workflow, profile)
        finally:
            await profile.aclose()
        judge_requests = [body for body in server.requests if is_judge_request(body)]
    assert len(judge_requests) == 1 and judge_requests[0]["tool_choice"] == "required"
    assert judged == [
        (
            "asks the caller for their account number",
            "Could you read me your account number? It starts with AC.",
        )
    ]
    assert first.skipped == []
    assert first.ok is verdict
    if not verdict:
        assert any("intent not met" in failure for failure in first.failures)


async def test_expect_tool_fails_naming_the_calls_that_were_made() -> None:
    wrong = SCENARIO.replace('account_number = "AC-48213" }', 'account_number = "AC-99999" }')
    _, second = await _run(wrong, loopback_workflow("http://unused"))
    assert not second.ok
    [failure] = second.failures
    assert 'expected tool call record_account_number({"account_number": "AC-99999"})' in failure
    assert 'calls made: record_account_number({"account_number": "AC-48213"})' in failure


def test_profile_choice_is_flag_then_environment_then_offline() -> None:
    workflow = loopback_workflow("http://unused")
    assert text_profile_name(workflow, None, env={}) == "offline"
    assert text_profile_name(workflow, None, env={"FRONTDESK_PROFILE": PROFILE}) == PROFILE
    assert text_profile_name(workflow, "offline", env={"FRONTDESK_PROFILE": PROFILE}) == "offline"
    with pytest.raises(WorkerSetupError, match=r"--profile: unknown provider profile 'nope'"):
        text_profile_name(workflow, "nope", env={})


def test_a_missing_key_is_the_same_error_as_the_worker_gives(monkeypatch) -> None:
    monkeypatch.delenv(KEY_ENV)
    workflow = loopback_workflow("http://127.0.0.1:9/v1")
    with pytest.raises(WorkerSetupError) as text_mode:
        build_text_profile(workflow, PROFILE)
    profile = workflow.config.providers.profiles[PROFILE]
    with pytest.raises(WorkerSetupError) as worker:
        ensure_env(text_mode_profile(profile), profile_name=PROFILE, workflow=workflow)
    assert str(text_mode.value) == str(worker.value)
    assert str(text_mode.value) == f"profile '{PROFILE}' llm (openai) needs {KEY_ENV}"


def test_simulate_with_a_profile_lacking_its_key_exits_with_that_error(
    monkeypatch, tmp_path: Path, capsys
) -> None:
    monkeypatch.delenv(KEY_ENV)
    config = tmp_path / "config.toml"
    config.write_text(loopback_config("http://127.0.0.1:9/v1"))
    scenario = tmp_path / "call.toml"
    scenario.write_text(SCENARIO)
    code = main(["simulate", str(scenario), "--config", str(config), "--profile", PROFILE])
    assert code == WorkerSetupError.exit_code
    assert f"needs {KEY_ENV}" in capsys.readouterr().err


async def test_simulate_runs_on_the_profile_named_by_frontdesk_profile(
    serve, tmp_path: Path
) -> None:
    async with serve(loopback_workflow("http://unused")) as server:
        config = tmp_path / "config.toml"
        config.write_text(loopback_config(server.base_url))
        scenario = tmp_path / "call.toml"
        scenario.write_text(SCENARIO)
        env = {**os.environ, "FRONTDESK_PROFILE": PROFILE, KEY_ENV: "dummy"}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "frontdesk",
            "simulate",
            str(scenario),
            "--config",
            str(config),
            "--no-state",
            "--json",
            env=env,
            cwd=str(ROOT),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 120)
        assert process.returncode == 0, err.decode()
        assert server.completions()  # the profile's model drove the call, not the offline brain
    turns = [json.loads(line) for line in out.decode().splitlines()]
    assert [turn["agent"] for turn in turns] == ["support", "support"]
    assert "skipped" not in turns[0]  # judged by the profile's model


async def test_an_agents_llm_override_drives_that_agent_under_the_profile(serve) -> None:
    from .conftest import open_call

    async with (
        serve(loopback_workflow("http://unused")) as main_model,
        serve(loopback_workflow("http://unused")) as support_model,
    ):
        text = (
            (ROOT / "config.toml")
            .read_text()
            .replace(
                'collects = ["account_number"]',
                f'collects = ["account_number"]\nllm = {{ base_url = "{support_model.base_url}" }}',
                1,
            )
        )
        workflow = loopback_workflow(main_model.base_url, text=text)
        async with open_call(workflow) as call:
            await call.session.run(user_input="my internet is down")
            await call.session.run(user_input="it's AC-48213")
    receptionist = [b for b in main_model.completions() if "receptionist" in json.dumps(b)]
    assert receptionist and all(
        "support agent" not in b["messages"][0]["content"] for b in main_model.completions()
    )
    assert len(support_model.completions()) >= 2
    assert all(
        "You are Acme Broadband's support agent" in b["messages"][0]["content"]
        for b in support_model.completions()
    )
