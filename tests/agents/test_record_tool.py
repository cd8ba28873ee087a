"""The ``record_<field>`` tool's own rules, called as LiveKit calls it: (arguments, context).

The context is reduced to what the tool reads (``userdata``) and ``on_recorded`` records its
calls; the same tool inside a real session is covered by ``test_handoffs.py``.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from livekit.agents import ToolError

from frontdesk.agents.fields import MAX_VALUE_LENGTH, make_record_tool
from frontdesk.agents.userdata import CallerData
from frontdesk.workflows.definition import CallerField

ACCOUNT = CallerField(
    description="Customer account number",
    pattern=r"AC-\d{5}",
    example="AC-48213",
    ask="Could you read me your account number?",
)


def tool_for(field: CallerField) -> tuple[Any, SimpleNamespace, list[dict[str, str]]]:
    seen: list[dict[str, str]] = []

    async def on_recorded(context: Any) -> None:
        seen.append(dict(context.userdata.fields))

    context = SimpleNamespace(userdata=CallerData(session_id="s-1"))
    return make_record_tool("account_number", field, on_recorded=on_recorded), context, seen


async def test_a_valid_value_is_stored_then_the_agent_is_told() -> None:
    tool, context, seen = tool_for(ACCOUNT)
    assert (
        await tool({"account_number": "  AC-48213 "}, context)
        == "Recorded account_number = AC-48213."
    )
    assert context.userdata.fields == {"account_number": "AC-48213"}
    assert seen == [{"account_number": "AC-48213"}]  # on_recorded sees the stored value


async def test_a_correction_says_what_changed_and_the_same_value_again_does_not() -> None:
    tool, context, _ = tool_for(ACCOUNT)
    await tool({"account_number": "AC-48213"}, context)
    assert await tool({"account_number": "AC-11111"}, context) == (
        "Updated account_number from AC-48213 to AC-11111 (the caller corrected it)."
    )
    assert (
        await tool({"account_number": "AC-11111"}, context) == "Recorded account_number = AC-11111."
    )


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("AC-1", '"AC-1"'),
        ("A" * 40, '"' + "A" * 40 + '"'),  # 40 characters: shown whole
        ("B" * 41, '"' + "B" * 40 + '…"'),  # longer: cut to 40, marked
    ],
)
async def test_a_refusal_shows_the_value_cut_to_40_characters_and_says_what_to_ask(
    value: str, shown: str
) -> None:
    tool, context, seen = tool_for(ACCOUNT)
    with pytest.raises(ToolError) as refused:
        await tool({"account_number": value}, context)
    assert refused.value.message == (
        f"{shown} is not a valid account number. It must look like AC-48213. "
        "Ask again: Could you read me your account number?"
    )
    assert context.userdata.fields == {} and seen == []


@pytest.mark.parametrize(
    ("value", "refusal"),
    [
        (None, r"^'account_number' must be a string, got NoneType None\.$"),
        (42, r"^'account_number' must be a string, got int 42\.$"),
        ("", r"^No account number was given\.$"),
        ("   ", r"^No account number was given\.$"),
        ("x" * (MAX_VALUE_LENGTH + 1), r"^That is too long for the account number"),
    ],
)
async def test_a_missing_blank_or_overlong_value_is_refused_even_without_a_pattern(
    value: object, refusal: str
) -> None:
    tool, context, _ = tool_for(CallerField(description="anything"))
    with pytest.raises(ToolError, match=refusal):
        await tool({"account_number": value}, context)
    assert context.userdata.fields == {}


async def test_a_value_of_the_longest_allowed_length_is_accepted() -> None:
    tool, context, _ = tool_for(CallerField(description="anything"))
    await tool({"account_number": "y" * MAX_VALUE_LENGTH}, context)
    assert context.userdata.fields == {"account_number": "y" * MAX_VALUE_LENGTH}
