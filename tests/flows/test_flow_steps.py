"""Automatic steps and final agents in the less common orders: a final agent that still has a
field to collect, and an agent entered with its fields already known (it moves on at once)."""

from __future__ import annotations

import asyncio

from frontdesk.workflows.definition import parse_workflow
from tests.flows.support import closed, handoffs, open_call, said, say

SURVEY = """\
[workflow]
name = "survey"
start = "intro"

[caller_data.name]
description = "The caller's name"
ask = "What's your name?"

[caller_data.score]
description = "A score from 1 to 5"
pattern = '[1-5]'
ask = "From one to five, how did we do?"

[agents.intro]
instructions = "Take the caller's name."
greeting = "Hi! What's your name?"
collects = ["name"]
next = "check"

[agents.check]
instructions = "Check the name."
collects = ["name"]
next = "rate"
[[agents.check.handoffs]]
to = "rate"
when = "always"
say = "Thanks {name}."

[agents.rate]
instructions = "Ask for a score."
collects = ["score"]
final = true
end_call = "Thanks {name}, you gave us {score}. Goodbye!"
"""


async def test_a_known_field_moves_on_at_once_and_a_final_agent_collects_first() -> None:
    call, brain = await open_call(parse_workflow(SURVEY))
    ended = closed(call)
    try:
        run = await say(call, "Dana")
        # intro records the name and steps to check; check has it already and steps to rate,
        # with the route's say line; rate asks for its field before the call can end
        assert handoffs(run) == [("intro", "check"), ("check", "rate")]
        assert said(run) == ["Thanks Dana.", "From one to five, how did we do?"]
        assert "check" not in [r.agent for r in brain.requests]  # no model spoke for it
        assert call.finished is None
        run = await say(call, "4")
        assert said(run) == ["Thanks Dana, you gave us 4. Goodbye!"]
        assert call.finished == "final agent 'rate'"
        await asyncio.wait_for(ended.wait(), 10)
    finally:
        await call.aclose("test over")
