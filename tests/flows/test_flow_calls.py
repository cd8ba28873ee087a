"""Flows shaped by caller data, on real AgentSessions in text mode (offline brain).

The clinic flow (tests/flows/clinic.toml): intake → booking needs the birthday (``requires``);
booking → advisor only for premium (``if``); the advisor moves back to booking by itself once
the question is recorded (``next``, clearing the plan on the way); done is final.
"""

from __future__ import annotations

import asyncio

from frontdesk.workflows.definition import Workflow, parse_workflow
from tests.flows.conftest import clinic_variant
from tests.flows.support import closed, eventually, handoffs, offered, open_call, said, say


async def _at_booking(clinic: Workflow) -> tuple:
    call, brain = await open_call(clinic)
    await say(call, "Chad")
    await say(call, "1983-01-01")
    run = await say(call, "yes")
    assert handoffs(run) == [("intake", "booking")]
    return call, brain


async def test_a_guarded_route_is_not_offered_until_its_field_is_recorded(clinic: Workflow) -> None:
    call, brain = await open_call(clinic)
    try:
        assert "transfer_to_booking" not in offered(call)
        await say(call, "Chad")
        # "yes" is the route's example, but the birthday is not in: the brain cannot take it
        run = await say(call, "yes this is Chad")
        assert handoffs(run) == []
        assert call.session.current_agent.id == "intake"
        assert all("transfer_to_booking" not in r.tools for r in brain.requests)
        await say(call, "1983-01-01")
        assert "transfer_to_booking" in offered(call)
        before = len(brain.requests)
        run = await say(call, "yes")
        assert "transfer_to_booking" in brain.requests[before].tools
        assert handoffs(run) == [("intake", "booking")]
        assert said(run)[0] == "Thanks Chad, let's get you booked."  # the route's say, filled
    finally:
        await call.aclose("test over")


async def test_without_requires_the_same_words_leave_intake_before_the_birthday() -> None:
    unguarded = clinic_variant('requires = ["birthday"]\n', "")
    call, _ = await open_call(unguarded)
    try:
        await say(call, "Chad")
        run = await say(call, "yes this is Chad")
        assert handoffs(run) == [("intake", "booking")]
        assert "birthday" not in call.userdata.fields
    finally:
        await call.aclose("test over")


async def test_a_condition_opens_a_route_only_for_the_data_it_names(clinic: Workflow) -> None:
    call, _ = await _at_booking(clinic)
    try:
        await say(call, "basic")
        assert "transfer_to_advisor" not in offered(call)
        run = await say(call, "I have a question")
        assert handoffs(run) == []
        assert "transfer_to_done" in offered(call)
    finally:
        await call.aclose("test over")
    call, _ = await _at_booking(clinic)
    try:
        await say(call, "premium")
        assert "transfer_to_advisor" in offered(call)
        run = await say(call, "I have a question")
        assert handoffs(run) == [("booking", "advisor")]
    finally:
        await call.aclose("test over")


async def test_next_moves_on_without_a_model_request_and_clears_on_the_way(
    clinic: Workflow,
) -> None:
    call, brain = await _at_booking(clinic)
    try:
        await say(call, "premium")
        await say(call, "I have a question")
        before = len(brain.requests)
        run = await say(call, "does it cover dental")
        assert handoffs(run) == [("advisor", "booking")]
        # the advisor's one request recorded the question; the next one is booking's reply
        assert [r.agent for r in brain.requests[before:]] == ["advisor", "booking"]
        assert call.userdata.fields["question"] == "does it cover dental"
        assert "plan" not in call.userdata.fields  # the route's clear
        assert said(run) == [
            "Let's pick your plan again, Chad.",
            "Would you like the basic or the premium plan?",
        ]
    finally:
        await call.aclose("test over")


async def test_a_final_agent_says_its_line_verbatim_and_the_call_ends(clinic: Workflow) -> None:
    call, brain = await _at_booking(clinic)
    ended = closed(call)
    try:
        await say(call, "basic")
        run = await say(call, "that's all")
        assert handoffs(run) == [("booking", "done")]
        assert said(run) == ["You're booked on the basic plan, Chad. Goodbye!"]
        assert "done" not in [r.agent for r in brain.requests]  # no model spoke for it
        assert call.finished == "final agent 'done'"
        await asyncio.wait_for(ended.wait(), 10)
    finally:
        await call.aclose("test over")


LOOP = """\
[workflow]
name = "loop"
start = "a"
max_handoffs_per_turn = 3
loop_fallback = "Sorry, one moment."

[agents.a]
instructions = "x"
next = "b"

[agents.b]
instructions = "x"
next = "a"
"""


async def test_the_loop_guard_stops_automatic_steps_that_go_round() -> None:
    call, _ = await open_call(parse_workflow(LOOP))
    try:
        # the first agent's step waits for the session to have started: after the opening
        await eventually(lambda: any(i.type == "message" for i in call.session.history.items))
        trail = [(h.from_agent, h.to_agent) for h in call.userdata.handoff_trail]
        assert trail == [("a", "b"), ("b", "a"), ("a", "b")]
        lines = [i.text_content for i in call.session.history.items if i.type == "message"]
        assert lines[0] == "Sorry, one moment."
        assert call.session.current_agent.id == "b"
    finally:
        await call.aclose("test over")


END_CALL = """\
[workflow]
name = "desk"
start = "desk"

[caller_data.name]
description = "The caller's name"
ask = "What's your name?"

[agents.desk]
instructions = "Help {name|the caller}."
greeting = "Hello {name|there}. What's your name?"
collects = ["name"]
end_call = { say = "Goodbye {name|}!", when = "The caller says goodbye" }

[offline.agents.desk.examples]
end_call = ["bye"]
"""


async def test_an_end_call_tool_says_the_closing_line_and_ends_the_call() -> None:
    workflow = parse_workflow(END_CALL)
    call, brain = await open_call(workflow)
    ended = closed(call)
    try:
        assert said(call.opening) == ["Hello there. What's your name?"]
        await say(call, "Dana")
        assert "Help Dana." in call.session.current_agent.instructions
        assert "end_call" in brain.requests[-1].tools
        run = await say(call, "ok bye")
        assert said(run) == ["Goodbye Dana!"]
        assert call.finished == "desk: end_call"
        await asyncio.wait_for(ended.wait(), 10)
    finally:
        await call.aclose("test over")
