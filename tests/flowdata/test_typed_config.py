"""``[caller_data.<field>]`` type keys: a bad key or value is a ``file:line key.path`` error listing
what is allowed; a field without ``type`` is a string, as before."""

from __future__ import annotations

import pytest

from frontdesk.errors import ConfigError
from frontdesk.workflows.definition import load_workflow, parse_workflow
from tests.agents.conftest import ROOT

BASE = """[workflow]
name = "x"
start = "a"

[caller_data.party]
description = "d"
{extra}

[agents.a]
instructions = "hi"
collects = ["party"]
"""


def problems(extra: str) -> str:
    with pytest.raises(ConfigError) as error:
        parse_workflow(BASE.format(extra=extra), source="config.toml")
    return str(error.value)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ('type = "integr"', "config.toml:7 caller_data.party.type: Input should be 'string', "),
        (
            'type = "integer"\nchoices = ["a"]',
            "config.toml:8 caller_data.party.choices: 'choices' is only for type = \"enum\"",
        ),
        ('type = "enum"', 'caller_data.party.choices: type = "enum" needs choices = ['),
        (
            'type = "enum"\nchoices = ["a", "b"]\nsynonyms = { c = ["x"] }',
            "config.toml:9 caller_data.party.synonyms: synonyms for 'c', which is not a choice "
            "(choices: 'a', 'b')",
        ),
        (
            'type = "enum"\nchoices = ["a", "A"]',
            "caller_data.party.choices: choice 'A' is listed twice",
        ),
        (
            'type = "date"\nmin = 1',
            "config.toml:8 caller_data.party.min: 'min' applies to types integer, list, number, "
            "not 'date'",
        ),
        (
            'type = "integer"\nmin = 5\nmax = 1',
            "caller_data.party.max: max (1) is smaller than min (5)",
        ),
        (
            'type = "integer"\nsensitive = true',
            "caller_data.party.sensitive: a sensitive field must hold text (types address, date,",
        ),
        ('items = "integer"', "caller_data.party.items: 'items' is only for type = \"list\""),
        (
            'type = "integer"\npattern = "\\\\d+"',
            "caller_data.party.pattern: 'pattern' applies to types address, email, name, phone, "
            "string, not 'integer'",
        ),
    ],
)
def test_a_bad_type_key_is_named_with_its_line_and_what_is_allowed(
    extra: str, expected: str
) -> None:
    assert expected in problems(extra)


def test_a_field_without_a_type_is_a_string_with_its_pattern_as_before() -> None:
    workflow = parse_workflow(BASE.format(extra="pattern = 'AC-\\d{5}'"), source="config.toml")
    spec = workflow.field("party")
    assert spec.type == "string" and spec.accepts("AC-12345") and not spec.accepts("AC-1")
    assert spec.normalise(" AC-12345 ") == "AC-12345"


def test_the_default_workflow_uses_typed_fields() -> None:
    workflow = load_workflow(ROOT / "workflows" / "definition" / "default_config.toml")
    types = {spec.type for spec in workflow.config.caller_data.values()}
    assert types - {"string"}, "the default workflow declares no typed field"
