"""What the caller hears when the model fails: retries, fallback chains, the error line, the end.

Faults are injected by the loopback server (HTTP 500s, hangs past the timeout) and each test
checks they landed (``server.faults_served``), so none passes without the fault it is about.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from frontdesk.workflows.definition import Workflow

from .conftest import ROOT, loopback_workflow, open_call
from .loopback_llm import LoopbackLLM, brain_responder

ERROR_LINE = "Sorry, I didn't catch that because of a problem on my side. Could you say it again?"
GOODBYE = "I'm sorry, we're having technical problems. Please call back in a few minutes. Goodbye."


def said(run: Any) -> list[str]:
    return [
        e.item.text_content
        for e in run.events
        if e.type == "message" and e.item.role == "assistant"
    ]


def base() -> Workflow:
    return loopback_workflow("http://unused")


async def test_one_failed_request_is_retried_and_the_caller_hears_a_normal_reply(serve) -> None:
    async with serve(base()) as server:
        workflow = loopback_workflow(
            server.base_url, profile_keys='llm_timeout = "3s"\nllm_retries = 2'
        )
        async with open_call(workflow) as call:
            server.fail_next(1, status=500)
            run = await call.session.run(user_input="my internet is down")
            assert server.faults_served == 1
            assert said(run)[0] == "Let me get you to support."
            assert ERROR_LINE not in said(run)
            assert call.session.current_agent.id == "support"


async def test_when_every_attempt_fails_the_caller_hears_the_error_line_and_the_call_goes_on(
    serve, caplog
) -> None:
    caplog.set_level(logging.ERROR)
    async with serve(base()) as server, open_call(loopback_workflow(server.base_url)) as call:
        server.fail_next(1, status=500)
        run = await call.session.run(user_input="my internet is down")
        assert server.faults_served == 1
        assert said(run) == [ERROR_LINE]  # verbatim
        # the turn is recorded: the caller's words are in the history
        users = [
            i.text_content
            for i in call.session.history.items
            if i.type == "message" and i.role == "user"
        ]
        assert users == ["my internet is down"]
        run = await call.session.run(user_input="my internet is down")
        assert said(run)[0] == "Let me get you to support."
        assert call.ended_reason is None
    assert "unrecoverable error" not in caplog.text


async def test_a_hang_past_the_timeout_is_a_failure_too(serve) -> None:
    async with serve(base()) as server:
        workflow = loopback_workflow(
            server.base_url, profile_keys='llm_timeout = "0.5s"\nllm_retries = 0'
        )
        async with open_call(workflow) as call:
            server.fail_next(1, hang=3.0)
            run = await asyncio.wait_for(call.session.run(user_input="hello"), 10)
            assert server.faults_served == 1
            assert said(run) == [ERROR_LINE]


async def test_a_fallback_chain_answers_from_the_next_model_when_the_first_fails(serve) -> None:
    async with serve(base()) as first, serve(base()) as second:
        workflow = loopback_workflow([first.base_url, second.base_url])
        async with open_call(workflow) as call:
            first.fail_next(10, status=500)
            run = await call.session.run(user_input="my internet is down")
            assert first.faults_served >= 1
            assert second.completions()  # the second model answered
            assert said(run)[0] == "Let me get you to support."
            assert ERROR_LINE not in said(run)


async def test_when_the_whole_chain_fails_the_caller_hears_the_error_line(serve) -> None:
    async with serve(base()) as first, serve(base()) as second:
        workflow = loopback_workflow([first.base_url, second.base_url])
        async with open_call(workflow) as call:
            first.fail_next(1, status=500)
            second.fail_next(1, status=503)
            run = await call.session.run(user_input="my internet is down")
            assert (first.faults_served, second.faults_served) == (1, 1)
            assert said(run) == [ERROR_LINE]


async def test_after_max_consecutive_errors_the_call_ends_politely_with_its_state_saved(
    serve, caplog, persistence: Any
) -> None:
    caplog.set_level(logging.ERROR)
    text = (
        (ROOT / "config.toml")
        .read_text()
        .replace("max_consecutive_errors = 3", "max_consecutive_errors = 2")
    )
    async with serve(base()) as server:
        workflow = loopback_workflow(server.base_url, text=text)
        async with open_call(workflow, caller="+15550001111", persistence=persistence) as call:
            server.fail_next(2, status=500)
            first = await call.session.run(user_input="hello?")
            assert said(first) == [ERROR_LINE]
            assert call.ended_reason is None
            second = await call.session.run(user_input="hello, are you there?")
            assert server.faults_served == 2
            assert said(second) == [GOODBYE]
            for _ in range(100):
                if call.ended_reason and not call.session._started:
                    break
                await asyncio.sleep(0.02)
            assert call.ended_reason == "ended after 2 failed model turns in a row"
            report = await call.aclose("model failures")
            assert report.saved
            stored = await persistence.store.load(call.session_id)
            texts = [
                item.get("content", [""])[0] for item in stored.items if item["type"] == "message"
            ]
            assert "hello, are you there?" in texts and GOODBYE in texts
    assert "unrecoverable error" not in caplog.text


async def test_the_loopback_server_really_fails(serve) -> None:
    """The faults above are real HTTP failures the plugin sees, not a test shortcut."""
    import aiohttp

    async with serve(brain_responder(base())) as server:
        assert isinstance(server, LoopbackLLM)
        server.fail_next(1, status=500)
        async with aiohttp.ClientSession() as http:
            response = await http.post(f"{server.base_url}/chat/completions", json={})
            assert response.status == 500
