"""Tools that do work, in real LiveKit sessions driven by the offline brain.

An HTTP outage lookup against a loopback API this test starts (run by Frontdesk, ``auto``, once
the account number is recorded), its failure line, retries, size bound and secret handling; and
the example's Python tools called by the model (``[offline.tools]`` examples).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from frontdesk.agents.tools import python_tool
from frontdesk.errors import ConfigError

from .conftest import OpenSession
from .support import FakeAcmeApi, tools_workflow

SECRET = "s3cr3t-token-value"


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACME_TOKEN", SECRET)


def spoken(result: Any) -> list[str]:
    return [
        event.item.text_content
        for event in result.events
        if event.type == "message" and event.item.role == "assistant"
    ]


async def test_the_outage_lookup_runs_once_the_account_is_known_and_its_result_is_answered(
    open_session: OpenSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with FakeAcmeApi(outages={"AC-48213": "fibre cut on Elm Street, fixed by 6pm"}) as api:
        workflow = tools_workflow(api.base_url)
        async with open_session(workflow) as (session, _):
            result = await session.run(user_input="My internet is down. Account AC-48213.")
        assert spoken(result)[-1] == (
            "Thanks. For account AC-48213 the outage status is: "
            "fibre cut on Elm Street, fixed by 6pm."
        )
        assert session.userdata.fields["outage_status"] == "fibre cut on Elm Street, fixed by 6pm"
        [request] = api.seen  # run once, by Frontdesk: the model never called it
        assert (request.method, request.path, request.query) == (
            "GET",
            "/outages/AC-48213",
            {"detail": "summary"},
        )
        assert request.headers["Authorization"] == f"Bearer {SECRET}"
        assert not any(
            call.name == "outage_lookup"
            for call in (e.item for e in result.events if e.type == "function_call")
        )
    assert SECRET not in caplog.text  # the secret reached the API, never the log


async def test_a_failing_lookup_is_retried_then_the_failure_line_is_spoken_and_the_call_goes_on(
    open_session: OpenSession, caplog: pytest.LogCaptureFixture
) -> None:
    async with FakeAcmeApi(failures=5) as api:
        workflow = tools_workflow(api.base_url)
        async with open_session(workflow) as (session, _):
            result = await session.run(user_input="No internet. Account AC-48213.")
            said = spoken(result)
            assert (
                "I'm sorry, I can't check the outage map right now, but I can still help." in said
            )
            assert len(api.seen) == 2  # retries = 1: two attempts, both landed on the API
            assert "outage_status" not in session.userdata.fields
            after = await session.run(user_input="Can I book an engineer visit on tuesday?")
            assert spoken(after)[-1].startswith("Booked an engineer visit for AC-48213 on Tuesday")
    assert "tool outage_lookup failed: HTTP 503" in caplog.text


async def test_one_5xx_is_retried_and_the_second_attempt_answers(open_session: OpenSession) -> None:
    async with FakeAcmeApi(failures=1, outages={"AC-48213": "none known"}) as api:
        async with open_session(tools_workflow(api.base_url)) as (session, _):
            await session.run(user_input="Account AC-48213 please.")
        assert len(api.seen) == 2
        assert session.userdata.fields["outage_status"] == "none known"


async def test_a_response_over_max_bytes_is_a_failure_not_stored(
    open_session: OpenSession, caplog: pytest.LogCaptureFixture
) -> None:
    async with FakeAcmeApi(huge=True) as api:
        async with open_session(tools_workflow(api.base_url)) as (session, _):
            await session.run(user_input="Account AC-48213.")
        assert "outage_status" not in session.userdata.fields
    assert "response larger than 65536 bytes" in caplog.text


async def test_a_timeout_counts_as_a_failure(
    open_session: OpenSession, caplog: pytest.LogCaptureFixture
) -> None:
    async with FakeAcmeApi(hang=3.0) as api:
        workflow = tools_workflow(
            api.base_url,
            replace=(('timeout = "2s"', 'timeout = "0.3s"'), ("retries = 1", "retries = 0")),
        )
        async with open_session(workflow) as (session, _):
            result = await session.run(user_input="Account AC-48213.")
        assert "I'm sorry, I can't check the outage map right now, but I can still help." in spoken(
            result
        )
    assert "tool outage_lookup failed: timeout after 0.3s" in caplog.text


async def test_the_model_calls_a_python_tool_which_records_caller_data(
    open_session: OpenSession,
) -> None:
    async with FakeAcmeApi() as api:
        async with open_session(tools_workflow(api.base_url)) as (session, _):
            await session.run(user_input="Account AC-48213.")
            result = await session.run(user_input="Please book an engineer visit on friday.")
        result.expect.contains_function_call(name="book_slot", arguments={"day": "friday"})
        assert spoken(result)[-1] == "Booked an engineer visit for AC-48213 on Friday at 14:00."
        assert session.userdata.fields["booking"] == "friday 14:00"


async def test_a_livekit_function_tool_is_used_as_is(open_session: OpenSession) -> None:
    async with FakeAcmeApi() as api:
        async with open_session(tools_workflow(api.base_url)) as (session, _):
            await session.run(user_input="Account AC-48213.")
            result = await session.run(user_input="Is anyone free on monday?")
        result.expect.contains_function_call(name="check_availability", arguments={"day": "monday"})
        assert session.userdata.fields["available"] == "true"


@pytest.mark.parametrize(
    ("reference", "problem"),
    [
        ("acme_tools:not_async", "acme_tools:not_async must be an async function"),
        ("acme_tools:nope", "module 'acme_tools' has no function 'nope' (callables:"),
        ("no_such_module_x:f", "cannot import module 'no_such_module_x': ModuleNotFoundError"),
    ],
)
def test_a_python_tool_that_cannot_be_used_is_a_config_error_with_its_key_path(
    reference: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as error:
        python_tool(reference, "tools.toml agents.support.tools[1]")
    assert error.value.problems[0].startswith(f"tools.toml agents.support.tools[1]: {problem}")
