"""Typed caller data in real calls: LiveKit ``AgentSession``s in text mode on the offline brain.

The booking line (booking.toml) collects an integer, a date, a time, a phone number, an enum
with synonyms, a boolean and a list; its payment agent a card number and a security code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from livekit.agents import AgentSession

from frontdesk.agents.fields import make_record_tool
from frontdesk.agents.offline_brain import OfflineBrain
from frontdesk.agents.prompt import read_call_context
from frontdesk.agents.userdata import CallerData
from frontdesk.workflows.definition import Workflow, load_workflow, parse_workflow
from tests.agents.conftest import OpenSession

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def booking() -> Workflow:
    return load_workflow(HERE / "booking.toml")


def reply(run: Any) -> str:
    return " ".join(
        e.item.text_content
        for e in run.events
        if e.type == "message" and e.item.role == "assistant"
    )


def tool_outputs(run: Any) -> list[tuple[str, str, bool]]:
    return [
        (e.item.name, e.item.output, e.item.is_error)
        for e in run.events
        if e.type == "function_call_output"
    ]


async def test_values_in_the_utterance_that_brought_the_caller_are_stored_typed(
    booking: Workflow, open_session: OpenSession
) -> None:
    async with open_session(booking) as (session, _):
        run = await session.run(user_input="I'd like to book a table for four on March 9th 2014")
        assert session.userdata.fields == {"party_size": 4, "day": "2014-03-09"}
        assert type(session.userdata.fields["party_size"]) is int
        assert reply(run).endswith("What time will you arrive?")


async def test_a_value_given_out_of_order_is_recorded_before_the_earlier_fields(
    booking: Workflow, open_session: OpenSession
) -> None:
    async with open_session(booking) as (session, _):
        await session.run(user_input="I'd like to book a table for four on March 9th 2014")
        await session.run(user_input="at 7pm, and my number is 555 123 4567")
        assert session.userdata.fields["arrival"] == "19:00"
        assert session.userdata.fields["phone"] == "5551234567"
        # nothing of the seating yet: it is asked next, not guessed
        assert "seating" not in session.userdata.fields


async def test_a_party_size_out_of_bounds_is_refused_with_a_message_the_caller_can_act_on(
    booking: Workflow, open_session: OpenSession
) -> None:
    async with open_session(booking) as (session, _):
        await session.run(user_input="I'd like to book a table")
        run = await session.run(user_input="we are 13")
        said = reply(run)
        assert "the party size must be between 1 and 12" in said
        assert said.endswith("How many people is the table for?")
        assert "party_size" not in session.userdata.fields
        await session.run(user_input="twelve then")
        assert session.userdata.fields["party_size"] == 12


async def test_an_enum_takes_a_synonym_and_its_refusal_lists_the_choices(
    booking: Workflow, open_session: OpenSession
) -> None:
    async with open_session(booking) as (session, _):
        await session.run(user_input="book a table for 2 tomorrow")
        await session.run(user_input="8pm, call me on 555 000 1111")
        run = await session.run(user_input="by the window")
        assert "must be one of: inside, terrace" in reply(run)
        assert "look like" not in reply(run)
        await session.run(user_input="outside please")
        assert session.userdata.fields["seating"] == "terrace"
        await session.run(user_input="no")
        assert session.userdata.fields["highchair"] is False
        run = await session.run(user_input="nuts and shellfish")
        assert session.userdata.fields["allergies"] == ["nuts", "shellfish"]
        assert "Booked: 2 people" in reply(run)


async def test_a_correction_overwrites_the_value_and_the_tool_says_so(
    booking: Workflow, open_session: OpenSession
) -> None:
    async with open_session(booking) as (session, _):
        await session.run(user_input="book a table for four on March 9th 2014")
        run = await session.run(user_input="actually make it 5")
        assert session.userdata.fields["party_size"] == 5
        assert (
            "record_party_size",
            "Updated party_size from 4 to 5 (the caller corrected it).",
            False,
        ) in tool_outputs(run)
        run = await session.run(user_input="no, it's March 10th 2014")
        assert session.userdata.fields["day"] == "2014-03-10"
        assert reply(run).endswith("What time will you arrive?")


async def test_a_refused_card_number_is_never_taken_for_the_security_code(
    booking: Workflow, open_session: OpenSession
) -> None:
    """The old brain read every earlier message: the '111' of a refused card became the CVV."""
    async with open_session(booking, start="payment") as (session, _):
        await session.run(user_input="hello, I'd like to pay")
        run = await session.run(user_input="my card is 4111 1111 1111 111")
        assert "not a valid card" in reply(run)
        run = await session.run(user_input="sorry, 4111111111111111")
        assert session.userdata.fields == {"card": "4111111111111111"}
        assert reply(run).endswith("And the three-digit security code?")
        await session.run(user_input="737")
        assert session.userdata.fields["cvv"] == "737"


async def test_the_call_context_block_shows_typed_values_as_json(
    booking: Workflow, open_session: OpenSession
) -> None:
    async with open_session(booking) as (session, _):
        await session.run(user_input="book a table for four on March 9th 2014")
        await session.run(user_input="7pm, 555 123 4567, on the terrace")
        agent = session.current_agent
        instructions = agent.instructions
        assert "- party_size: 4\n" in instructions
        assert '- day: "2014-03-09"' in instructions
        assert "(one of: inside, terrace)" in instructions or "seating" in session.userdata.fields
        assert "(yes or no)" in instructions  # the highchair is still needed, typed
        context = read_call_context(instructions)
        assert context is not None and context.known["party_size"] == 4


CONFIRMING = """[workflow]
name = "survey"
start = "desk"

[caller_data.email]
description = "The caller's email address"
type = "email"
confirm = true
ask = "What's your email address?"

[caller_data.age]
description = "The caller's age"
type = "integer"
min = 18
max = 120
ask = "How old are you?"

[agents.desk]
instructions = "Collect the email address, then the age."
collects = ["email", "age"]

[offline.agents.desk]
reply = "Thanks, we'll write to {email}."
"""


async def test_a_confirmed_field_is_read_back_and_stored_only_once_the_caller_agrees(
    open_session: OpenSession,
) -> None:
    workflow = parse_workflow(CONFIRMING, source="survey.toml")
    async with open_session(workflow) as (session, _):
        await session.run(user_input="hello")
        run = await session.run(user_input="it's ann dot lee at example dot com")
        assert "email" not in session.userdata.fields
        assert reply(run) == "email ann.lee@example.com, is that right?"
        run = await session.run(user_input="no")
        assert "email" not in session.userdata.fields
        assert reply(run).endswith("What's your email address?")
        run = await session.run(user_input="ann.li@example.com")
        assert reply(run) == "email ann.li@example.com, is that right?"
        run = await session.run(user_input="yes that's right")
        assert session.userdata.fields == {"email": "ann.li@example.com"}
        assert reply(run).endswith("How old are you?")
        run = await session.run(user_input="I'm seventeen")
        assert "the age must be between 18 and 120" in reply(run)
        await session.run(user_input="forty two")
        assert session.userdata.fields["age"] == 42


async def test_the_record_tool_schema_carries_the_type_and_constraints(booking: Workflow) -> None:
    async def recorded(_: Any) -> None:
        return None

    tool = make_record_tool("party_size", booking.field("party_size"), on_recorded=recorded)
    parameters = tool.info.raw_schema["parameters"]["properties"]["party_size"]
    assert parameters["type"] == "integer"
    assert (parameters["minimum"], parameters["maximum"]) == (1, 12)
    seating = make_record_tool("seating", booking.field("seating"), on_recorded=recorded)
    assert seating.info.raw_schema["parameters"]["properties"]["seating"]["enum"] == [
        "inside",
        "terrace",
    ]


async def test_typed_values_survive_the_json_round_trip_of_the_stored_state(
    booking: Workflow,
) -> None:
    from frontdesk.state.models import SessionState

    data = CallerData(session_id="s")
    data.fields = {"party_size": 4, "highchair": False, "allergies": ["nuts"], "day": "2014-03-09"}
    state = SessionState(
        session_id="s",
        workflow="bistro",
        workflow_hash="h",
        current_agent="bookings",
        caller_data=dict(data.fields),
        created_at=1.0,
        updated_at=1.0,
    )
    again = SessionState.model_validate_json(state.model_dump_json())
    assert again.caller_data == data.fields
    assert type(again.caller_data["party_size"]) is int
    assert json.loads(state.model_dump_json())["caller_data"]["highchair"] is False


def test_the_brain_is_deterministic_about_what_it_records(booking: Workflow) -> None:
    assert OfflineBrain(workflow=booking).model == "frontdesk-offline-brain"
    assert AgentSession is not None


async def test_the_default_workflow_takes_its_plan_by_synonym_after_the_postcode(
    open_session: OpenSession,
) -> None:
    workflow = load_workflow(HERE.parents[1] / "config.toml")
    async with open_session(workflow) as (session, _):
        await session.run(user_input="I'd like a faster plan")
        run = await session.run(user_input="94103")
        assert "Which one would you like?" in reply(run)
        run = await session.run(user_input="the gig one, please")
        assert session.userdata.fields == {"postcode": "94103", "plan": "gigabit"}
        assert reply(run) == (
            "The gigabit plan it is for 94103. You'll get a confirmation by text."
        )
        run = await session.run(user_input="hmm, the platinum one")
        assert session.userdata.fields["plan"] == "gigabit"  # no correction to an unknown plan
