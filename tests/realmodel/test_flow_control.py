"""Flow control under the real OpenAI client (loopback server): guards, next, final agents.

The clinic flow (tests/flows/clinic.toml) on a ``[providers.loopback]`` profile: every request
goes through ``livekit-plugins-openai``, so what the model is sent here is what a production
model is sent.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from frontdesk.workflows.definition import parse_workflow
from tests.flows.conftest import CLINIC

from .conftest import loopback_config, open_call

GOODBYE = "You're booked on the basic plan, Chad. Goodbye!"


def _clinic(base_url: str) -> Any:
    return parse_workflow(loopback_config(base_url, text=CLINIC.read_text()), source="clinic.toml")


def _tools(body: dict[str, Any]) -> set[str]:
    return {tool["function"]["name"] for tool in body.get("tools") or []}


def _agent(body: dict[str, Any]) -> str:
    """The agent whose instructions a request carries (its call-context line)."""
    for message in body["messages"]:
        content = message.get("content")
        text = content if isinstance(content, str) else json.dumps(content)
        if message["role"] in ("system", "developer") and 'You are the "' in text:
            return text.split('You are the "', 1)[1].split('"', 1)[0]
    return "?"


def _said(run: Any) -> list[str]:
    return [
        e.item.text_content
        for e in run.events
        if e.type == "message" and e.item.role == "assistant"
    ]


async def _say(call: Any, text: str) -> Any:
    return await asyncio.wait_for(call.session.run(user_input=text), 20)


async def test_a_guarded_transfer_tool_is_absent_from_the_request_until_its_field_is_recorded(
    serve,
) -> None:
    async with (
        serve(_clinic("http://unused")) as server,
        open_call(_clinic(server.base_url)) as call,
    ):
        await _say(call, "Chad")
        await _say(call, "yes this is Chad")
        before = server.completions()
        assert before and all("transfer_to_booking" not in _tools(b) for b in before)
        assert call.session.current_agent.id == "intake"
        await _say(call, "1983-01-01")
        seen = len(server.completions())
        run = await _say(call, "yes")
        decision = server.completions()[seen]
        assert "transfer_to_booking" in _tools(decision)
        assert call.session.current_agent.id == "booking"
        assert _said(run)[0] == "Thanks Chad, let's get you booked."


async def test_next_hands_off_without_a_request_to_decide_it(serve) -> None:
    async with (
        serve(_clinic("http://unused")) as server,
        open_call(_clinic(server.base_url)) as call,
    ):
        for line in ("Chad", "1983-01-01", "yes", "premium", "I have a question"):
            await _say(call, line)
        assert call.session.current_agent.id == "advisor"
        seen = len(server.completions())
        run = await _say(call, "does it cover dental")
        turn = server.completions()[seen:]
        # the advisor's request records the question; the next is booking's reply: no
        # request of the advisor's model between them decides the handoff
        assert [_agent(body) for body in turn] == ["advisor", "booking"]
        assert call.session.current_agent.id == "booking"
        assert "plan" not in call.userdata.fields  # the route's clear
        assert _said(run)[0] == "Let's pick your plan again, Chad."


async def test_a_final_agents_line_is_spoken_verbatim_and_the_session_ends(serve) -> None:
    async with (
        serve(_clinic("http://unused")) as server,
        open_call(_clinic(server.base_url)) as call,
    ):
        closed = asyncio.Event()
        call.session.on("close", lambda _: closed.set())
        for line in ("Chad", "1983-01-01", "yes", "basic"):
            await _say(call, line)
        seen = len(server.completions())
        run = await _say(call, "that's all")
        turn = server.completions()[seen:]
        assert [_agent(body) for body in turn] == ["booking"]  # the transfer, nothing more
        assert _said(run) == [GOODBYE]
        assert not any(GOODBYE in json.dumps(body) for body in server.completions())
        assert call.finished == "final agent 'done'"
        await asyncio.wait_for(closed.wait(), 10)
