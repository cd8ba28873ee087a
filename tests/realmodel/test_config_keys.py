"""The config keys of issue 12: [offline] fixtures, deprecations, style, error lines, llm chains."""

from __future__ import annotations

import logging
import subprocess

import pytest

from frontdesk.agents.flow_agent import AgentFactory
from frontdesk.agents.userdata import CallerData
from frontdesk.errors import ConfigError
from frontdesk.workflows.definition import DEFAULT_STYLE, load_workflow, parse_workflow
from frontdesk.workflows.runtime import start_call

from .conftest import ROOT

MINIMAL = """
[workflow]
name = "w"
start = "a"

[agents.a]
instructions = "Help."
reply = "Old place."

[[agents.a.handoffs]]
to = "b"
when = "the caller asks for b"
examples = ["bee"]

[agents.b]
instructions = "Help more."

[[agents.b.handoffs]]
to = "a"
when = "back"
"""

MOVED = """
[workflow]
name = "w"
start = "a"

[agents.a]
instructions = "Help."

[[agents.a.handoffs]]
to = "b"
when = "the caller asks for b"

[agents.b]
instructions = "Help more."

[[agents.b.handoffs]]
to = "a"
when = "back"

[offline.agents.a]
reply = "Old place."
examples = { b = ["bee"] }
"""


def test_old_offline_keys_keep_working_with_a_warning_naming_the_new_place(caplog) -> None:
    caplog.set_level(logging.WARNING)
    old = parse_workflow(MINIMAL, source="old.toml")
    assert old.warnings == (
        "old.toml:8 agents.a.reply: deprecated: move it to [offline.agents.a] reply "
        "(only the offline brain reads it)",
        "old.toml:13 agents.a.handoffs[0].examples: deprecated: move it to "
        "[offline.agents.a.examples] b = [...] (only the offline brain reads it)",
    )
    assert "old.toml:8 agents.a.reply: deprecated" in caplog.text
    new = parse_workflow(MOVED, source="new.toml")
    assert new.warnings == ()
    assert old.config.offline == new.config.offline
    assert old.config.offline.agent("a").reply == "Old place."
    assert old.config.offline.agent("a").examples == {"b": ("bee",)}
    # where the fixtures are written does not change the workflow's identity
    assert old.content_hash == new.content_hash


def test_offline_fixtures_are_outside_the_content_hash() -> None:
    base = parse_workflow(MOVED)
    edited = parse_workflow(MOVED.replace('reply = "Old place."', 'reply = "New words."'))
    assert edited.content_hash == base.content_hash
    changed = parse_workflow(MOVED.replace('instructions = "Help."', 'instructions = "Hi."'))
    assert changed.content_hash != base.content_hash


def test_offline_fixtures_must_name_agents_and_routes() -> None:
    with pytest.raises(ConfigError) as error:
        parse_workflow(
            MOVED + '\n[offline.agents.c]\nreply = "x"\n[offline.agents.b.examples]\nc = ["z"]\n',
            source="bad.toml",
        )
    problems = error.value.problems
    assert any("offline.agents.c: unknown agent 'c'" in p for p in problems)
    assert any("offline.agents.b.examples.c: agent 'b' has no route to 'c'" in p for p in problems)


def test_the_shipped_config_uses_the_new_places_and_its_copy_matches() -> None:
    workflow = load_workflow(ROOT / "config.toml")
    assert workflow.warnings == ()
    assert workflow.config.offline.agent("support").reply
    embedded = load_workflow()
    assert embedded.content_hash == workflow.content_hash
    shown = subprocess.run(
        ["git", "ls-files", "-s", "workflows/definition/default_config.toml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout
    assert (
        shown.startswith("120000")
        or (ROOT / "workflows/definition/default_config.toml").read_text()
        == (ROOT / "config.toml").read_text()
    )


def test_style_comes_before_every_agents_instructions() -> None:
    workflow = parse_workflow(MOVED)
    text = AgentFactory(workflow=workflow).instructions_for("b", CallerData(session_id="s"))
    assert text.startswith(DEFAULT_STYLE + "\n\nHelp more.")
    own = parse_workflow(MOVED.replace('start = "a"', 'start = "a"\nstyle = "Be brief."'))
    text = AgentFactory(workflow=own).instructions_for("b", CallerData(session_id="s"))
    assert text.startswith("Be brief.\n\nHelp more.")
    none = parse_workflow(MOVED.replace('start = "a"', 'start = "a"\nstyle = ""'))
    assert (
        AgentFactory(workflow=none)
        .instructions_for("b", CallerData(session_id="s"))
        .startswith("Help more.")
    )


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ("max_consecutive_errors = 0", "workflow.max_consecutive_errors: Input should be"),
        ('error_line = ""', "workflow.error_line: String should have at least 1 character"),
    ],
)
def test_error_settings_are_validated_with_their_line(change: str, problem: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_workflow(MOVED.replace('start = "a"', f'start = "a"\n{change}'), source="e.toml")
    assert any(p.startswith("e.toml:5 ") and problem in p for p in error.value.problems)


def test_an_llm_may_be_a_fallback_chain_and_errors_name_its_element() -> None:
    chain = MOVED + (
        '\n[providers.two]\nllm = [{ provider = "openai", model = "a" }, '
        '{ provider = "openai", model = "b" }]\nllm_timeout = "4s"\n'
    )
    profile = parse_workflow(chain).config.providers.profiles["two"]
    assert [model.model for model in profile.llm_chain] == ["a", "b"]
    assert profile.llm_timeout == 4.0
    with pytest.raises(ConfigError) as error:
        parse_workflow(chain.replace('model = "b" }', 'modle = "b" }'), source="c.toml")
    assert any(
        p.startswith("c.toml:25 providers.two.llm[1].modle: unknown key (allowed: provider, model,")
        for p in error.value.problems
    )
    with pytest.raises(ConfigError) as error:
        parse_workflow(
            MOVED + '\n[providers.one]\nllm = { provider = "openai", modle = "x" }\n',
            source="c.toml",
        )
    assert any(
        p.startswith("c.toml:25 providers.one.llm.modle: unknown key (allowed: provider, model,")
        for p in error.value.problems
    )


async def test_a_verbatim_line_naming_an_unknown_field_is_not_spoken_with_a_hole() -> None:
    text = MOVED.replace(
        'instructions = "Help."', 'instructions = "Help."\ngreeting = "Hi {name}."'
    )
    workflow = parse_workflow(text)
    call = await start_call(workflow=workflow)
    try:
        events = call.opening.events if call.opening is not None else []
        said = [e.item.text_content for e in events if e.type == "message"]
        assert said and all("{name}" not in line and "that" not in line for line in said)
    finally:
        await call.aclose()
