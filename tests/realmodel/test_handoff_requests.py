"""What the real OpenAI client sends around a handoff, and what the caller hears.

The model is a loopback server (tests/realmodel/loopback_llm.py); every request goes through
``livekit-plugins-openai`` exactly as in production, so these tests are the contract a real
provider path must meet.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from frontdesk.agents.prompt import HANDOFF_NOTE_MARKER, OPENING_NOTE_MARKER, SUMMARY_NOTE_HEADER
from frontdesk.workflows.definition import DEFAULT_STYLE

from .conftest import ROOT, loopback_workflow, open_call
from .loopback_llm import Answer, ToolCall, brain_responder

RECEPTIONIST = "You are the receptionist of Acme Broadband"
SUPPORT = "You are Acme Broadband's support agent"
SALES = "You are Acme Broadband's sales agent"
GREETING = "Thanks for calling Acme Broadband, how can I help?"


def said(run: Any) -> list[str]:
    return [
        e.item.text_content
        for e in run.events
        if e.type == "message" and e.item.role == "assistant"
    ]


def system_text(body: dict[str, Any]) -> str:
    return "\n".join(
        m["content"] if isinstance(m["content"], str) else json.dumps(m["content"])
        for m in body["messages"]
        if m["role"] in ("system", "developer")
    )


def user_texts(body: dict[str, Any]) -> list[str]:
    return [m["content"] for m in body["messages"] if m["role"] == "user"]


def tool_schema(body: dict[str, Any], name: str) -> dict[str, Any]:
    [tool] = [t for t in body["tools"] if t["function"]["name"] == name]
    return tool["function"]


async def test_a_handoff_turn_is_one_transfer_request_and_one_reply(serve) -> None:
    async with serve(loopback_workflow("http://unused")) as server:
        workflow = loopback_workflow(server.base_url)
        async with open_call(workflow) as call:
            assert server.completions() == []  # the greeting is spoken verbatim: no request
            run = await call.session.run(user_input="hi, my internet is down")
            transfer, reply = server.completions()  # exactly two requests in series

            assert call.session.current_agent.id == "support"
            assert said(run)[0] == "Let me get you to support."  # the route's say, verbatim
            assert "account number" in said(run)[1].lower()

            assert {"transfer_to_support", "transfer_to_sales"} <= {
                t["function"]["name"] for t in transfer["tools"]
            }
            # the new agent's request: its own instructions only, the caller's words, no greeting
            assert SUPPORT in system_text(reply)
            assert RECEPTIONIST not in system_text(reply)
            assert user_texts(reply)[-1] == "hi, my internet is down"
            assert HANDOFF_NOTE_MARKER in system_text(reply)
            assert OPENING_NOTE_MARKER not in system_text(reply)
            assert "Let me get you to support." not in json.dumps(reply["messages"])
            assert {t["function"]["name"] for t in reply["tools"]} == {
                "record_account_number",
                "transfer_to_sales",
                "transfer_to_receptionist",
            }


async def test_tool_schemas_name_the_field_and_carry_its_pattern_and_example(serve) -> None:
    base = loopback_workflow("http://unused")
    async with serve(base) as server, open_call(loopback_workflow(server.base_url)) as call:
        await call.session.run(user_input="my internet is down")
        body = server.completions()[-1]
    record = tool_schema(body, "record_account_number")
    spec = base.field("account_number")
    assert record["parameters"]["required"] == ["account_number"]
    parameter = record["parameters"]["properties"]["account_number"]
    assert parameter["type"] == "string"
    assert parameter["pattern"] == spec.pattern
    assert parameter["examples"] == ["AC-12345"]
    assert spec.description in parameter["description"]
    transfer = tool_schema(body, "transfer_to_sales")
    assert transfer["parameters"]["properties"] == {}
    assert "upgrade" in transfer["description"]
    # one tool call per response unless the profile says otherwise
    assert body.get("parallel_tool_calls") is False


async def test_every_agent_is_told_it_is_on_a_voice_call(serve) -> None:
    async with (
        serve(loopback_workflow("http://unused")) as server,
        open_call(loopback_workflow(server.base_url)) as call,
    ):
        await call.session.run(user_input="hello")
        await call.session.run(user_input="my internet is down")
    assert len(server.completions()) >= 3
    for body in server.completions():
        first = body["messages"][0]
        assert first["role"] in ("system", "developer")
        assert first["content"].startswith(DEFAULT_STYLE)


def _variant(old: str, new: str) -> str:
    text = (ROOT / "config.toml").read_text()
    assert old in text
    return text.replace(old, new, 1)


async def test_a_record_and_a_transfer_in_one_response_both_take_effect(serve) -> None:
    text = _variant(
        'greeting = "Thanks for calling',
        'collects = ["account_number"]\ngreeting = "Thanks for calling',
    )
    base = loopback_workflow("http://unused", text=text)
    brain = brain_responder(base)
    scripted = [
        Answer(
            tool_calls=(
                ToolCall("record_account_number", {"account_number": "AC-55555"}),
                ToolCall("transfer_to_support"),
            )
        )
    ]

    def respond(body: dict[str, Any]) -> Answer:
        return scripted.pop(0) if scripted else brain(body)

    async with serve(respond) as server:
        workflow = loopback_workflow(server.base_url, text=text)
        async with open_call(workflow) as call:
            run = await call.session.run(user_input="my internet is down, account AC-55555")
            assert call.userdata.fields == {"account_number": "AC-55555"}
            assert call.session.current_agent.id == "support"
            # no tool reply from the receptionist: the transfer and support's reply
            _, reply = server.completions()
            assert '- account_number: "AC-55555"' in system_text(reply)
            assert said(run)[0] == "Let me get you to support."
            assert all("account number?" not in line for line in said(run))


async def test_two_transfers_in_one_response_honour_exactly_the_first(serve, caplog) -> None:
    base = loopback_workflow("http://unused")
    brain = brain_responder(base)
    scripted = [Answer(tool_calls=(ToolCall("transfer_to_support"), ToolCall("transfer_to_sales")))]

    def respond(body: dict[str, Any]) -> Answer:
        return scripted.pop(0) if scripted else brain(body)

    caplog.set_level(logging.WARNING)
    async with serve(respond) as server, open_call(loopback_workflow(server.base_url)) as call:
        run = await call.session.run(user_input="my internet is down and I want a new plan")
        assert call.session.current_agent.id == "support"
        assert [(h.from_agent, h.to_agent) for h in call.userdata.handoff_trail] == [
            ("receptionist", "support")
        ]
        outputs = {e.item.name: e.item for e in run.events if e.type == "function_call_output"}
        assert not outputs["transfer_to_support"].is_error
        refused = outputs["transfer_to_sales"]
        assert refused.is_error
        assert "already transfers the caller to support" in refused.output
        assert len(server.completions()) == 2
    assert "expected to receive only one" not in caplog.text
    assert "already transfers the caller to support" in caplog.text


async def test_a_summary_handoff_reaches_the_next_agent_as_a_system_note(serve) -> None:
    text = _variant(
        'when = "The caller needs something neither support nor sales handles"\ncontext = "summary"',
        'when = "The caller needs something neither support nor sales handles"\n'
        'context = "summary"\nsummary_prompt = "Write one line for the front desk."',
    )
    async with (
        serve(loopback_workflow("http://unused", text=text)) as server,
        open_call(loopback_workflow(server.base_url, text=text)) as call,
    ):
        await call.session.run(user_input="my internet is down")
        await call.session.run(user_input="it's AC-48213")
        before = len(server.completions())
        await call.session.run(user_input="actually I need something else")
        assert call.session.current_agent.id == "receptionist"
        transfer, summary_request, reply = server.completions()[before:]
    assert "transfer_to_receptionist" in json.dumps(transfer["tools"])
    assert "Write one line for the front desk." in summary_request["messages"][0]["content"]
    assert RECEPTIONIST in system_text(reply)
    assert SUPPORT not in system_text(reply)
    notes = [m for m in reply["messages"] if SUMMARY_NOTE_HEADER in json.dumps(m)]
    assert [m["role"] for m in notes] == ["system"]
    assert not any(
        m["role"] == "assistant" and "Summary of the call" in json.dumps(m)
        for m in reply["messages"]
    )
    assert user_texts(reply)[-1] == "actually I need something else"


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        ({"value": "AC-48213"}, "takes one argument named 'account_number' (got 'value')"),
        ({"account_number": 48213}, "'account_number' must be a string, got int"),
        ({"account_number": "AC-48213", "note": "x"}, "takes only 'account_number'"),
        # truncated JSON: LiveKit repairs it to an empty value
        ('{"account_number": ', "No account number was given"),
    ],
)
async def test_wrong_record_arguments_get_an_error_saying_what_was_wrong(
    serve, caplog, arguments: Any, complaint: str
) -> None:
    base = loopback_workflow("http://unused")
    brain = brain_responder(base)
    sent = False

    def respond(body: dict[str, Any]) -> Answer:
        nonlocal sent
        if user_texts(body)[-1:] == ["it is AC-48213"] and not sent:
            sent = True
            return Answer(tool_calls=(ToolCall("record_account_number", arguments),))
        return brain(body)

    caplog.set_level(logging.INFO, logger="frontdesk")
    async with serve(respond) as server, open_call(loopback_workflow(server.base_url)) as call:
        await call.session.run(user_input="my internet is down")
        run = await call.session.run(user_input="it is AC-48213")
        [output] = [e.item for e in run.events if e.type == "function_call_output"]
        assert output.is_error
        assert complaint in output.output
        assert "account_number" not in call.userdata.fields or arguments == {}
        # the model sees the complaint in its next request
        tool_messages = [m for m in server.completions()[-1]["messages"] if m["role"] == "tool"]
        assert any(complaint in m["content"] for m in tool_messages)
    assert complaint in caplog.text
