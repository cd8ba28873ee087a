"""``{field}`` templates: one syntax, one implementation, checked at validate time."""

from __future__ import annotations

import pytest

from frontdesk.agents import tools as agent_tools
from frontdesk.agents.prompt import fill_template, fill_verbatim
from frontdesk.errors import ConfigError
from frontdesk.workflows.definition import parse_workflow, templates
from frontdesk.workflows.definition import tools as definition_tools
from frontdesk.workflows.definition.templates import check, fill, placeholders, required_names


def test_a_placeholder_is_filled_from_caller_data() -> None:
    assert fill("Hi {name}!", {"name": "Chad"}) == "Hi Chad!"


def test_a_default_is_used_while_the_field_is_unknown() -> None:
    assert fill("Hi {name|there}!", {}) == "Hi there!"
    assert fill("Thanks{name|}.", {}) == "Thanks."
    assert fill("Hi {name|there}!", {"name": "Chad"}) == "Hi Chad!"


def test_a_missing_value_without_default_makes_the_line_unfillable() -> None:
    assert fill("Account {account_number}.", {}) is None
    assert fill("Account {account_number}.", {}, fallback="that") == "Account that."


def test_a_withheld_value_is_never_filled_in_even_when_known() -> None:
    values = {"account_number": "AC-48213"}
    assert fill("For {account_number|your account}.", values, withheld={"account_number"}) == (
        "For your account."
    )
    assert fill("For {account_number}.", values, withheld={"account_number"}) is None


def test_typed_values_are_spoken_as_words() -> None:
    assert fill("{size} people, {vip}, {meds}", {"size": 4, "vip": True, "meds": ["a", "b"]}) == (
        "4 people, yes, a, b"
    )


def test_placeholders_name_their_defaults() -> None:
    found = placeholders("{a} {b|x} {env.TOKEN}")
    assert [(p.name, p.default, p.is_env) for p in found] == [
        ("a", None, False),
        ("b", "x", False),
        ("env.TOKEN", None, True),
    ]
    assert required_names("{a} {b|x} {a}") == ["a"]


def test_check_names_a_typo_with_the_closest_field() -> None:
    assert check("Hi {nmae}", ["name", "age"]) == ["unknown field 'nmae' (did you mean 'name'?)"]
    assert check("Hi {zzz}", ["name"]) == ["unknown field 'zzz' (declared fields: name)"]
    assert check("Hi {name|there}", ["name"]) == []


def test_env_placeholders_are_refused_outside_http_tools() -> None:
    assert "only allowed in HTTP tools" in check("{env.SECRET}", [])[0]
    assert check("{env.SECRET}", [], allow_env=True) == []


def test_prompt_helpers_and_http_tools_share_the_one_implementation() -> None:
    assert definition_tools.TEMPLATE_FIELD is templates.PLACEHOLDER
    assert fill_verbatim("Hi {name|there}", {}) == "Hi there"
    assert fill_template("Hi {name}", {}) == "Hi that"
    # HTTP tools: {field}, {field|default} and {env.X}
    url = agent_tools.fill(
        "https://x.test/{account}?t={env.T}&r={region|eu}", {"account": "AC-1"}, {"T": "s3"}
    )
    assert url == "https://x.test/AC-1?t=s3&r=eu"
    with pytest.raises(agent_tools.ToolFailure, match="missing caller data: account"):
        agent_tools.fill("https://x.test/{account}", {}, {})


CONFIG = """\
[workflow]
name = "t"
start = "front"

[caller_data.name]
description = "The caller's name"
ask = "What's your name?"

[agents.front]
instructions = "Greet {name|the caller}."
greeting = "Hello {nmae}!"
collects = ["name"]

[[agents.front.handoffs]]
to = "back"
when = "x"
say = "Over to you, {name|there} {ag}."

[agents.back]
instructions = "x"
resume = "Welcome back {naem}."

[[agents.back.handoffs]]
to = "front"
when = "x"
"""


def test_validate_reports_every_template_typo_with_file_line_and_key_path() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_workflow(CONFIG, source="flow.toml")
    problems = raised.value.problems
    assert "flow.toml:11 agents.front.greeting: unknown field 'nmae' (did you mean 'name'?)" in (
        problems
    )
    assert any(
        p.startswith("flow.toml:17 agents.front.handoffs[0].say: unknown field 'ag'")
        for p in problems
    ), problems
    assert "flow.toml:21 agents.back.resume: unknown field 'naem' (did you mean 'name'?)" in (
        problems
    )
    assert len(problems) == 3


def test_a_config_whose_templates_name_declared_fields_loads() -> None:
    fixed = CONFIG.replace("{nmae}", "{name}").replace(" {ag}", "").replace("{naem}", "{name}")
    assert parse_workflow(fixed).agent("front").greeting == "Hello {name}!"
