"""A refused ``record_<field>`` value is explained in a sentence, whatever the field declares."""

from __future__ import annotations

import pytest

from frontdesk.agents.fields import MAX_VALUE_LENGTH, refusal
from frontdesk.workflows.definition import CallerField

FULL = CallerField(
    description="Account number",
    pattern=r"AC-\d{5}",
    ask="What is your account number?",
    example="AC-48213",
)
BARE = CallerField(description="A reference the caller reads out")


@pytest.mark.parametrize(
    ("spec", "value", "expected"),
    [
        (
            FULL,
            "it's AC-123",
            '"it\'s AC-123" is not a valid account number. It must look like '
            "AC-48213. Ask again: What is your account number?",
        ),
        (
            FULL,
            "",
            "No account number was given. It must look like AC-48213. Ask again: "
            "What is your account number?",
        ),
        (BARE, "", "No account number was given."),
        (
            BARE,
            "x" * (MAX_VALUE_LENGTH + 1),
            f"That is too long for the account number "
            f"({MAX_VALUE_LENGTH + 1} characters; at most {MAX_VALUE_LENGTH}).",
        ),
        (
            FULL,
            "AC\x00-1\n2",
            '"AC -1 2" is not a valid account number. It must look like '
            "AC-48213. Ask again: What is your account number?",
        ),
    ],
)
def test_each_refusal_reads_as_a_sentence(spec: CallerField, value: str, expected: str) -> None:
    assert refusal("account_number", spec, value) == expected


def test_long_values_are_cut_in_the_message() -> None:
    message = refusal("postcode", CallerField(description="p", pattern=r"\d{5}"), "9" * 60)
    assert message == f'"{"9" * 40}…" is not a valid postcode.'
