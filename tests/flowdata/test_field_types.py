"""Typed caller data: what each field type accepts and how a value is normalised (pure functions)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from frontdesk.workflows.definition import CallerField
from frontdesk.workflows.definition.field_types import (
    FieldValueError,
    as_text,
    find_value,
    json_schema,
    normalise,
)

TODAY = dt.date(2026, 12, 3)


def field(**rules: Any) -> CallerField:
    return CallerField(description="a field", **rules)


PARTY = field(type="integer", min=1, max=12)
STATUS = field(type="enum", choices=("single", "married"), synonyms={"married": ("wed", "spouse")})


def value(spec: CallerField, raw: object) -> object:
    return normalise(spec, raw, label="party size", today=TODAY)


@pytest.mark.parametrize(
    ("spec", "raw", "stored"),
    [
        (PARTY, "4", 4),
        (PARTY, "four", 4),
        (PARTY, 4, 4),
        (PARTY, "Four people", 4),
        (PARTY, "twelve", 12),
        (PARTY, "a dozen", 12),
        (field(type="number"), "300000", 300000),
        (field(type="number"), "three hundred thousand", 300000),
        (field(type="number"), "300k", 300000),
        (field(type="number"), "1,200.50", 1200.5),
        (field(type="date"), "March 9th 2014", "2014-03-09"),
        (field(type="date"), "January 1st 1983", "1983-01-01"),
        (field(type="date"), "the 9th of March, 2014", "2014-03-09"),
        (field(type="date"), "9 March 2014", "2014-03-09"),
        (field(type="date"), "2014-03-09", "2014-03-09"),
        (field(type="date"), "3/9/2014", "2014-03-09"),
        (field(type="date"), "january first nineteen eighty three", "1983-01-01"),
        (field(type="date"), "march ninth", "2027-03-09"),  # next occurrence
        (field(type="date"), "tomorrow", "2026-12-04"),
        (field(type="dob"), "January 1st 1983", "1983-01-01"),
        (field(type="time"), "7pm", "19:00"),
        (field(type="time"), "7:30 p.m.", "19:30"),
        (field(type="time"), "19:30", "19:30"),
        (field(type="time"), "seven thirty pm", "19:30"),
        (field(type="time"), "noon", "12:00"),
        (STATUS, "Married", "married"),
        (STATUS, "wed", "married"),
        (STATUS, "I'm single", "single"),
        (field(type="boolean"), "yes", True),
        (field(type="boolean"), "nope", False),
        (field(type="boolean"), True, True),
        (field(type="list"), "aspirin, ibuprofen and insulin", ["aspirin", "ibuprofen", "insulin"]),
        (field(type="list", items="integer"), ["1", "two"], [1, 2]),
        (field(type="email"), "john dot smith at example dot com", "john.smith@example.com"),
        (field(type="phone"), "+1 (555) 123-4567", "+15551234567"),
        (field(type="phone"), "five five five one two three four", "5551234"),
        (field(type="name"), "my name is chad smith", "Chad Smith"),
        (field(type="address"), "12 High Street, Springfield", "12 High Street, Springfield"),
    ],
)
def test_a_value_is_stored_normalised_with_its_json_type(
    spec: CallerField, raw: object, stored: object
) -> None:
    result = value(spec, raw)
    assert result == stored and type(result) is type(stored)


@pytest.mark.parametrize(
    ("spec", "raw", "message"),
    [
        (PARTY, "13", "the party size must be between 1 and 12"),
        (PARTY, 0, "the party size must be between 1 and 12"),
        (PARTY, "2.5", "the party size must be a whole number between 1 and 12"),
        (PARTY, "lots", "the party size must be a whole number between 1 and 12"),
        (PARTY, True, "the party size must be a whole number between 1 and 12"),
        (STATUS, "divorced", "the party size must be one of: single, married"),
        (STATUS, "not married", "the party size must be one of: single, married"),
        (field(type="boolean"), "maybe", "the party size must be yes or no"),
        (field(type="dob"), "March 9", "the party size needs the year as well"),
        (field(type="dob"), "2030-01-01", "must be a date in the past"),
        (field(type="date"), "someday", "must be a date, such as March 9 2014"),
        (field(type="time"), "later", "must be a time of day"),
        (field(type="list", max=2), "a, b, c", "must be a list of at most 2 items"),
        (field(type="phone"), "12", "must be a phone number of 7 to 15 digits"),
        (field(type="email"), "nope", "must be an email address"),
    ],
)
def test_a_refused_value_says_what_is_allowed(spec: CallerField, raw: object, message: str) -> None:
    with pytest.raises(FieldValueError, match=message):
        value(spec, raw)


def test_an_enum_refusal_lists_the_choices_never_an_example() -> None:
    with pytest.raises(FieldValueError) as refused:
        value(STATUS, "widowed")
    assert "single, married" in str(refused.value) and "look like" not in str(refused.value)


@pytest.mark.parametrize(
    ("spec", "utterance", "found"),
    [
        (PARTY, "a table for four on March 9th 2014 at 7pm", 4),
        (PARTY, "on March 9th at 7:30, for 6 of us", 6),
        (PARTY, "my number is 555 123 4567", None),  # out of bounds: not taken
        (field(type="date"), "a table for four on March 9th 2014 at 7pm", "2014-03-09"),
        (field(type="time"), "a table for four on March 9th 2014 at 7pm", "19:00"),
        (field(type="phone"), "at 7pm, and my number is 555 123 4567", "5551234567"),
        (STATUS, "we got wed last year", "married"),
        (field(type="boolean"), "yes please", True),
        (field(type="email"), "it's ann@example.org thanks", "ann@example.org"),
        (field(type="name"), "hi, my name is Ann Lee", "Ann Lee"),
        (field(type="address"), "12 High Street", None),  # free text: only as an answer
    ],
)
def test_the_offline_brain_finds_a_value_of_each_type_inside_an_utterance(
    spec: CallerField, utterance: str, found: object
) -> None:
    assert find_value(spec, utterance, label="x", today=TODAY) == found


def test_the_json_schema_carries_the_type_and_the_constraints() -> None:
    assert json_schema(PARTY, "d") == {
        "description": "d",
        "type": "integer",
        "minimum": 1,
        "maximum": 12,
    }
    enum = json_schema(STATUS, "d")
    assert enum["type"] == "string" and enum["enum"] == ["single", "married"]
    assert "wed, spouse mean married" in str(enum["description"])
    listed = json_schema(field(type="list", items="integer", min=1, max=3), "d")
    assert listed["type"] == "array" and listed["minItems"] == 1 and listed["maxItems"] == 3
    assert listed["items"] == {"description": "one integer item", "type": "integer"}
    assert json_schema(field(type="date"), "d")["format"] == "date"
    assert json_schema(field(type="boolean"), "d")["type"] == "boolean"


@pytest.mark.parametrize(
    ("stored", "spoken"), [(4, "4"), (2.5, "2.5"), (True, "yes"), (["a", "b"], "a, b")]
)
def test_a_typed_value_is_spoken_as_a_person_would_say_it(stored: object, spoken: str) -> None:
    assert as_text(stored) == spoken


def test_normalising_a_stored_value_again_changes_nothing() -> None:
    for spec, raw in [(PARTY, "four"), (STATUS, "spouse"), (field(type="date"), "March 9th 2014")]:
        once = value(spec, raw)
        assert value(spec, once) == once
