"""Resume and the demo with the real OpenAI client: verbatim lines are the same whatever the brain."""

from __future__ import annotations

import json
from typing import Any

from frontdesk.agents.prompt import OPENING_NOTE_MARKER, RESUME_NOTE_MARKER
from frontdesk.workflows.providers.text_mode import build_text_profile
from frontdesk.workflows.runtime import Persistence
from frontdesk.workflows.runtime.simulate import DEMO_SCENARIO, ScenarioRunner, load_scenario
from tests.conftest import config_without_sensitive_fields

from .conftest import PROFILE, loopback_workflow, open_call

CALLER = "+15551230000"
RESUME_LINE = "Welcome back. We were checking your line for account AC-48213."
GREETING = "Thanks for calling Acme Broadband, how can I help?"


def opening(call: Any) -> list[str]:
    events = call.opening.events if call.opening is not None else []
    return [
        e.item.text_content for e in events if e.type == "message" and e.item.role == "assistant"
    ]


def system_text(body: dict[str, Any]) -> str:
    return "\n".join(m["content"] for m in body["messages"] if m["role"] in ("system", "developer"))


async def test_a_resumed_caller_hears_the_resume_line_verbatim_and_the_model_knows_them(
    serve, persistence: Persistence
) -> None:
    # the account number not sensitive: a caller resumed by number hears it in the resume line
    # (with the shipped config it is withheld until they repeat it: tests/security)
    plain = config_without_sensitive_fields()
    async with serve(loopback_workflow("http://unused", text=plain)) as server:
        workflow = loopback_workflow(server.base_url, text=plain)
        async with open_call(workflow, caller=CALLER, persistence=persistence) as call:
            await call.session.run(user_input="hi, my internet is down")
            await call.session.run(user_input="sure, it's AC-48213")
        before = len(server.completions())
        async with open_call(workflow, caller=CALLER, persistence=persistence) as call:
            assert call.resumed
            assert opening(call) == [RESUME_LINE]  # verbatim, fields filled
            assert len(server.completions()) == before  # nothing was asked of the model
            await call.session.run(user_input="is it fixed yet?")
            body = server.completions()[before]
    system = system_text(body)
    assert "You are Acme Broadband's support agent" in system
    assert "You are the receptionist" not in system
    assert '- account_number: "AC-48213"' in system
    assert OPENING_NOTE_MARKER not in system
    assert [m["content"] for m in body["messages"] if m["role"] == "user"][-1] == "is it fixed yet?"
    # the greeting was heard once, on the first call: it is history, not a new request
    assert json.dumps(body["messages"]).count(GREETING) <= 1


async def test_a_resume_line_naming_an_unknown_field_is_left_to_the_model(
    serve, persistence: Persistence
) -> None:
    async with serve(loopback_workflow("http://unused")) as server:
        workflow = loopback_workflow(server.base_url)
        async with open_call(workflow, caller=CALLER, persistence=persistence) as call:
            await call.session.run(user_input="hi, my internet is down")  # no account yet
        before = len(server.completions())
        async with open_call(workflow, caller=CALLER, persistence=persistence) as call:
            assert call.resumed
            said = opening(call)
            [body] = server.completions()[before:]
    assert RESUME_NOTE_MARKER in system_text(body)
    assert all("account that" not in line for line in said)
    assert said and "account number" in said[-1].lower()


async def _play_demo(persistence: Persistence, *, profile: Any = None, workflow: Any) -> list[Any]:
    scenario = load_scenario(DEMO_SCENARIO)
    runner = ScenarioRunner(workflow=workflow, persistence=persistence, profile=profile)
    return await runner.run(scenario)


async def test_the_demo_passes_offline_and_its_verbatim_lines_are_identical_on_a_real_client(
    serve, persistence: Persistence, redis_client: Any
) -> None:
    async with serve(loopback_workflow("http://unused")) as server:
        workflow = loopback_workflow(server.base_url)
        offline = await _play_demo(persistence, workflow=workflow)
        assert all(result.ok for result in offline), [r.failures for r in offline]
        await redis_client.flushall()
        profile = build_text_profile(workflow, PROFILE)
        try:
            real = await _play_demo(persistence, profile=profile, workflow=workflow)
        finally:
            await profile.aclose()
        assert server.completions()  # the real client did the talking
    assert all(result.ok for result in real), [r.failures for r in real]
    verbatim = {"Let me get you to support.", "Sales can help with that. One moment."}
    offline_lines = [line for result in offline for line in result.lines]
    real_lines = [line for result in real for line in result.lines]
    assert {text for _, text in offline_lines} >= verbatim
    assert [line for line in real_lines if line[1] in verbatim] == [
        line for line in offline_lines if line[1] in verbatim
    ]
    # the cooperative model decides as the offline brain does: every line is the same
    assert real_lines == offline_lines
