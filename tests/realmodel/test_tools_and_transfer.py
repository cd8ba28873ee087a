"""Tools and the transfer to a human through the real OpenAI plugin: what the model is sent
(tool schemas, tool results) and what the caller hears, with the model on a loopback server,
the HTTP tool's API on another, and LiveKit's server API on a loopback stand-in."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from frontdesk.agents.transfer import CallLine
from frontdesk.workflows.definition import Workflow
from frontdesk.workflows.providers.text_mode import build_text_profile
from frontdesk.workflows.runtime import Call, start_call
from tests.tools.livekit_standin import API_KEY, API_SECRET, LiveKitStandIn
from tests.tools.support import TOOLS_CONFIG, FakeAcmeApi

from .conftest import PROFILE, loopback_workflow

SAY = "I'm connecting you to a colleague now. Please stay on the line."


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACME_TOKEN", "real-model-token")


def tools_text(api_url: str, *replacements: tuple[str, str]) -> str:
    text = TOOLS_CONFIG.read_text().replace("http://127.0.0.1:8099", api_url)
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def said(run: Any) -> list[str]:
    return [
        e.item.text_content
        for e in run.events
        if e.type == "message" and e.item.role == "assistant"
    ]


def tool_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in body["messages"] if m["role"] == "tool"]


def tool_calls_sent(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        call
        for m in body["messages"]
        if m["role"] == "assistant"
        for call in m.get("tool_calls") or []
    ]


def schema(body: dict[str, Any], name: str) -> dict[str, Any]:
    [tool] = [t["function"] for t in body["tools"] if t["function"]["name"] == name]
    return tool


@asynccontextmanager
async def a_call(workflow: Workflow, line: CallLine | None = None) -> AsyncIterator[Call]:
    profile = build_text_profile(workflow, PROFILE)
    call = await start_call(
        workflow=workflow, caller_identity="+15551230000", line=line, **profile.start_kwargs()
    )
    try:
        yield call
    finally:
        await call.aclose("test finished")
        await profile.aclose()


async def test_the_model_calls_a_python_tool_and_hears_its_result(serve) -> None:
    async with FakeAcmeApi() as acme:
        text = tools_text(acme.base_url)
        async with serve(loopback_workflow("http://unused", text=text)) as server:
            workflow = loopback_workflow(server.base_url, text=text)
            async with a_call(workflow) as call:
                await call.session.run(user_input="Account AC-48213.")
                before = len(server.completions())
                run = await call.session.run(user_input="Please book an engineer visit on friday.")
            asked, answered = server.completions()[before:]
    # the tool as the model sees it: its docstring and typed argument, no RunContext
    book = schema(asked, "book_slot")
    assert book["description"].startswith("Book an engineer visit on a weekday")
    assert list(book["parameters"]["properties"]) == ["day"]
    # the model's call, then its result sent back as the tool message of the same call
    [call_sent] = [c for c in tool_calls_sent(answered) if c["function"]["name"] == "book_slot"]
    assert json.loads(call_sent["function"]["arguments"]) == {"day": "friday"}
    [result] = [m for m in tool_messages(answered) if m["tool_call_id"] == call_sent["id"]]
    assert result["content"] == "Booked an engineer visit for AC-48213 on Friday at 14:00."
    assert said(run)[-1] == "Booked an engineer visit for AC-48213 on Friday at 14:00."


async def test_the_model_calls_an_http_tool_which_reaches_the_api_and_its_result_comes_back(
    serve,
) -> None:
    async with FakeAcmeApi(outages={"AC-48213": "fibre cut on Elm Street"}) as acme:
        text = tools_text(
            acme.base_url,
            ("auto = true", "auto = false"),
            ("[offline.tools]\n", '[offline.tools]\noutage_lookup = ["outage"]\n'),
        )
        async with serve(loopback_workflow("http://unused", text=text)) as server:
            workflow = loopback_workflow(server.base_url, text=text)
            async with a_call(workflow) as call:
                await call.session.run(user_input="Account AC-48213.")
                assert acme.seen == []  # not auto: nothing runs until the model asks
                before = len(server.completions())
                run = await call.session.run(user_input="Is there an outage near me?")
            asked, answered = server.completions()[before:]
    assert schema(asked, "outage_lookup")["parameters"]["properties"] == {}
    [request] = acme.seen
    assert request.path == "/outages/AC-48213"
    assert request.headers["Authorization"] == "Bearer real-model-token"
    [call_sent] = [c for c in tool_calls_sent(answered) if c["function"]["name"] == "outage_lookup"]
    [result] = [m for m in tool_messages(answered) if m["tool_call_id"] == call_sent["id"]]
    assert result["content"] == "fibre cut on Elm Street"
    assert "real-model-token" not in json.dumps(
        server.requests
    )  # the secret never reaches the model
    assert said(run)[-1] == "fibre cut on Elm Street"


async def test_the_real_model_takes_the_transfer_route_and_the_sip_transfer_is_requested(
    serve,
) -> None:
    ended: list[str] = []
    async with FakeAcmeApi() as acme, LiveKitStandIn() as livekit:
        text = tools_text(acme.base_url, ('mode = "warm"', 'mode = "cold"'))
        async with serve(loopback_workflow("http://unused", text=text)) as server:
            workflow = loopback_workflow(server.base_url, text=text)
            line = CallLine(
                room_name="room-9",
                caller_identity="sip-caller",
                caller_is_sip=True,
                url=livekit.url,
                api_key=API_KEY,
                api_secret=API_SECRET,
                end_call=ended.append,
            )
            async with a_call(workflow, line) as call:
                await call.session.run(user_input="Account AC-48213.")
                before = len(server.completions())
                run = await call.session.run(user_input="I'd like to speak to someone, please.")
                assert line.pending is not None
                await asyncio.wait_for(line.pending, 20)
                after = server.completions()[before:]
    [asked] = after  # one request: the transfer asks for no tool reply
    transfer = schema(asked, "transfer_to_human")
    assert "The caller asks for a person" in transfer["description"]
    assert said(run) == [SAY]
    [seen] = livekit.calls("TransferSIPParticipant")
    assert (seen.request.room_name, seen.request.participant_identity) == ("room-9", "sip-caller")
    assert seen.request.transfer_to == "tel:+15550100200"
    assert ended == ["transferred to a human (cold)"]


@pytest.mark.parametrize(
    ("outages", "expected", "closed"),
    [
        ({"AC-48213": "fibre cut on Elm Street"}, "outage_desk", "engineer"),
        ({}, "engineer", "outage_desk"),
    ],
    ids=["an outage", "no outage"],
)
async def test_the_lookups_result_decides_which_route_the_real_model_is_offered(
    serve, outages: dict[str, str], expected: str, closed: str
) -> None:
    from tests.tools.test_branching_on_results import ROUTES

    async with FakeAcmeApi(outages=outages) as acme:
        text = tools_text(acme.base_url, ("\n[offline.agents.support]", ROUTES))
        async with serve(loopback_workflow("http://unused", text=text)) as server:
            workflow = loopback_workflow(server.base_url, text=text)
            async with a_call(workflow) as call:
                await call.session.run(user_input="My internet is down. Account AC-48213.")
                before = len(server.completions())
                await call.session.run(user_input="ok, what now?")
                assert call.session.current_agent.id == expected
            asked = server.completions()[before]
    offered = {t["function"]["name"] for t in asked["tools"]}
    assert f"transfer_to_{expected}" in offered  # the route the stored result opened
    assert f"transfer_to_{closed}" not in offered  # the other one is never shown to the model
