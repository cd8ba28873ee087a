"""Route conditions (``if``): a tiny parser, type checks against the fields, three-valued truth."""

from __future__ import annotations

import builtins

import pytest

from frontdesk.errors import ConfigError
from frontdesk.workflows.definition import parse_workflow
from frontdesk.workflows.definition.conditions import (
    And,
    Compare,
    ConditionError,
    FieldRef,
    Literal_,
    Member,
    Not,
    check_condition,
    evaluate,
    fields_of,
    holds,
    parse_condition,
)

TYPES = {"age": "integer", "status": "enum", "vip": "boolean", "name": "string", "dob": "date"}
CHOICES = {"status": ("married", "single")}


def test_a_comparison_parses_into_a_tree() -> None:
    assert parse_condition("age >= 18") == Compare(">=", FieldRef("age"), Literal_(18))


def test_and_binds_tighter_than_or_and_not_applies_to_one_operand() -> None:
    tree = parse_condition("not vip and status in ['married', 'single',]")
    assert tree == And(
        Not(parse_condition("vip")), Member(FieldRef("status"), ("married", "single"))
    )
    assert fields_of(parse_condition("age > 1 or (vip and age < 3)")) == ["age", "vip"]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("age >=", "at column 7: expected a field name or a value"),
        ("age >= 18 )", "at column 11: expected 'and', 'or' or the end"),
        ("age @ 3", "at column 5: unexpected '@ 3'"),
        ("name == 'Chad", "at column 9: a text literal is not closed"),
        ("1 == 2", "needs a field on one side"),
        ("", "the condition is empty"),
        ("(" * 30 + "vip" + ")" * 30, "nested more than 20 levels deep"),
    ],
)
def test_a_syntax_error_says_where(text: str, where: str) -> None:
    with pytest.raises(ConditionError, match=None) as raised:
        parse_condition(text)
    assert where in str(raised.value)


def test_it_is_never_evaluated_as_python(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("eval/exec must never run")

    monkeypatch.setattr(builtins, "eval", refuse)
    monkeypatch.setattr(builtins, "exec", refuse)
    with pytest.raises(ConditionError):
        parse_condition("__import__('os').system('true')")
    assert holds(parse_condition("age >= 18"), {"age": 20}, TYPES)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("age >= 'x'", "'age' is an integer field: compare it with a number, not 'x'"),
        ("name > 'b'", "'>' needs a number, date or time field; 'name' is a string field"),
        ("status == 'maried'", "'maried' is not a choice of 'status' (did you mean 'married'?)"),
        ("vip == 1", "'vip' is a boolean field: compare it with true or false"),
        ("age", "'age' alone is a test of a boolean field"),
        ("agee >= 18", "unknown field 'agee' (did you mean 'age'?)"),
        ("dob < '9 March'", "write the date as 'YYYY-MM-DD'"),
        ("name == 18", "compare it with quoted text, not 18"),
    ],
)
def test_type_errors_name_the_field_and_what_is_allowed(text: str, problem: str) -> None:
    problems = check_condition(parse_condition(text), TYPES, CHOICES)
    assert any(problem in found for found in problems), problems


def test_well_typed_conditions_have_no_problems() -> None:
    for text in ("age >= 18 and vip", "status in ['married']", "dob < '2000-01-01'", "not vip"):
        assert check_condition(parse_condition(text), TYPES, CHOICES) == []


def test_numbers_stored_as_text_compare_as_numbers() -> None:
    condition = parse_condition("age >= 18")
    assert evaluate(condition, {"age": "20"}, TYPES) is True
    assert evaluate(condition, {"age": "9"}, TYPES) is False
    assert evaluate(condition, {"age": 18}, TYPES) is True


def test_a_field_not_recorded_yet_makes_a_comparison_unknown_whichever_way_it_is_written() -> None:
    for text in ("age >= 18", "not (age < 18)", "age >= 18 or age < 18"):
        assert evaluate(parse_condition(text), {}, TYPES) is None
        assert not holds(parse_condition(text), {}, TYPES)
    # Kleene: a known false side decides an `and`, a known true side an `or`
    assert evaluate(parse_condition("vip and age > 1"), {"vip": False}, TYPES) is False
    assert evaluate(parse_condition("vip or age > 1"), {"vip": True}, TYPES) is True


def test_text_and_choices_compare_without_case() -> None:
    assert holds(parse_condition("status == 'married'"), {"status": "Married"}, TYPES)
    assert holds(parse_condition("status not in ['single']"), {"status": "married"}, TYPES)


BASE = """\
[workflow]
name = "t"
start = "front"

[caller_data.age]
description = "Age"

[agents.front]
instructions = "x"
collects = ["age"]

[[agents.front.handoffs]]
to = "back"
when = "x"
{route}

[agents.back]
instructions = "x"
final = true
end_call = "Bye."
"""


def test_validate_refuses_a_condition_that_does_not_parse_at_its_key() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_workflow(BASE.format(route='if = "age >= "'), source="c.toml")
    assert raised.value.problems == [
        "c.toml:15 agents.front.handoffs[0].if: not a valid condition: at column 8: expected a "
        "field name or a value (a number, 'text', true or false), found the end"
    ]


def test_validate_type_checks_a_condition_against_the_declared_fields() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_workflow(BASE.format(route='if = "age >= 18"'), source="c.toml")
    (problem,) = raised.value.problems
    assert problem.startswith("c.toml:15 agents.front.handoffs[0].if: 'age' is a string field")
    # a field declares no type yet: it is text, and text comparisons pass
    assert parse_workflow(BASE.format(route="if = \"age == '18'\"")).agent("front")


def test_validate_checks_requires_and_clear_name_declared_fields() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_workflow(BASE.format(route='requires = ["agee"]\nclear = ["nope"]'), source="c.toml")
    assert raised.value.problems == [
        "c.toml:15 agents.front.handoffs[0].requires[0]: unknown caller_data field 'agee' "
        "(did you mean 'age'?)",
        "c.toml:16 agents.front.handoffs[0].clear[0]: unknown caller_data field 'nope' "
        "(known: age)",
    ]


def test_a_declared_type_and_choices_are_read_whatever_form_they_take() -> None:
    from types import SimpleNamespace

    from frontdesk.workflows.definition.flow_checks import field_choices, field_type

    untyped = SimpleNamespace()
    assert field_type(untyped) == "string"  # type: ignore[arg-type]
    assert field_type(SimpleNamespace(type="integer")) == "integer"  # type: ignore[arg-type]
    listed = SimpleNamespace(choices=["married", "single"])
    assert field_choices(listed) == ("married", "single")  # type: ignore[arg-type]
    tabled = SimpleNamespace(choices={"married": ["wed"], "single": []})
    assert field_choices(tabled) == ("married", "single")  # type: ignore[arg-type]
