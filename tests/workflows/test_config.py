"""config.toml validation: key paths, lines, all errors at once, graph checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from frontdesk.errors import ConfigError
from frontdesk.workflows.definition import (
    DEFAULT_CONFIG_PATH,
    load_workflow,
    parse_duration,
    parse_workflow,
    render_graph,
)

ROOT = Path(__file__).resolve().parents[2]

MINIMAL = """\
[workflow]
name = "tiny"
start = "front"

[caller_data.email]
description = "Email address"
pattern = '[^@ ]+@[^@ ]+'

[agents.front]
instructions = "Greet and route."

[[agents.front.handoffs]]
to = "back"
when = "anything"

[agents.back]
instructions = "Help."
collects = ["email"]

[[agents.back.handoffs]]
to = "front"
when = "done"
"""


def _errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_workflow(text, source="config.toml")
    return info.value.problems


def test_default_config_is_valid_and_has_no_warnings() -> None:
    workflow = load_workflow(ROOT / "config.toml")
    assert workflow.name == "acme-broadband"
    assert set(workflow.config.agents) == {"receptionist", "support", "sales"}
    assert workflow.warnings == ()


def test_minimal_config_uses_offline_profile_and_default_state() -> None:
    workflow = parse_workflow(MINIMAL)
    assert workflow.config.providers.active == "offline"
    assert set(workflow.config.providers.profiles) == {"offline"}
    assert workflow.config.state.resume_window == 900.0


def test_unknown_route_target_names_key_path_line_and_suggestion() -> None:
    text = MINIMAL.replace('to = "back"', 'to = "bakc"')
    errors = _errors(text)
    line = text.splitlines().index('to = "bakc"') + 1
    assert errors[0] == (
        f"config.toml:{line} agents.front.handoffs[0].to: unknown agent 'bakc' (did you mean 'back'?)"
    )


def test_every_problem_is_reported_at_once() -> None:
    text = MINIMAL.replace('start = "front"', 'start = "frnt"').replace(
        'collects = ["email"]', 'collects = ["phone"]'
    )
    errors = _errors(text)
    assert any("workflow.start: unknown agent 'frnt'" in e for e in errors)
    assert any("agents.back.collects[0]: unknown caller_data field 'phone'" in e for e in errors)


def test_unknown_key_is_rejected_with_its_line() -> None:
    text = MINIMAL.replace('instructions = "Help."', 'instructions = "Help."\ngreetng = "hi"')
    (error,) = _errors(text)
    line = text.splitlines().index('greetng = "hi"') + 1
    assert error.startswith(f"config.toml:{line} agents.back.greetng: unknown key (allowed: ")
    assert error.endswith("; did you mean 'greeting'?)")


def test_schema_errors_in_several_tables_are_all_listed() -> None:
    text = MINIMAL.replace("pattern = '[^@ ]+@[^@ ]+'", "pattern = '[unclosed'").replace(
        'when = "done"', 'when = "done"\ncontext = "recent"'
    )
    errors = _errors(text)
    assert len(errors) == 2
    assert any("caller_data.email.pattern: pattern does not compile" in e for e in errors)
    assert any(
        "agents.back.handoffs[0].context: unknown context policy 'recent'" in e for e in errors
    )


def test_self_handoff_is_an_error() -> None:
    (error,) = _errors(MINIMAL.replace('to = "front"', 'to = "back"'))
    assert "agents.back.handoffs[0].to: agent 'back' cannot hand off to itself" in error


def test_unreachable_agent_is_an_error() -> None:
    text = MINIMAL + '\n[agents.island]\ninstructions = "alone"\n'
    (error,) = _errors(text)
    assert "agents.island: agent 'island' cannot be reached from 'front'" in error


def test_agent_with_no_way_back_is_only_a_warning() -> None:
    text = MINIMAL.replace('[[agents.back.handoffs]]\nto = "front"\nwhen = "done"\n', "")
    workflow = parse_workflow(text, source="config.toml")
    assert len(workflow.warnings) == 1
    assert "agent 'back' has no way back to 'front'" in workflow.warnings[0]


def test_invalid_toml_is_a_config_error_not_a_traceback() -> None:
    (error,) = _errors("[workflow\nname=")
    assert error.startswith("config.toml: not valid TOML")


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_workflow(tmp_path / "nope.toml")


def test_bad_agent_name_is_explained() -> None:
    errors = _errors(MINIMAL.replace("[agents.back]", "[agents.Back-Office]"))
    assert any("agents.Back-Office" in e and "not a valid name" in e for e in errors)


def test_identity_changes_when_content_changes() -> None:
    first = parse_workflow(MINIMAL)
    same = parse_workflow(MINIMAL + "\n# a comment only\n")
    changed = parse_workflow(MINIMAL.replace('instructions = "Help."', 'instructions = "Help!"'))
    assert first.identity == same.identity
    assert first.identity != changed.identity
    assert first.identity.startswith("tiny@")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("15m", 900.0), ("90s", 90.0), ("24h", 86400.0), ("250ms", 0.25), (12, 12.0)],
)
def test_durations_parse(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_bad_duration_names_the_key() -> None:
    errors = _errors(MINIMAL + '\n[state]\nresume_window = "soon"\n')
    assert any("state.resume_window" in e and "duration" in e for e in errors)


def test_graph_renders_every_route_as_mermaid_and_dot() -> None:
    config = load_workflow(ROOT / "config.toml").config
    routes = [(name, r.to) for name, a in config.agents.items() for r in a.handoffs]
    mermaid = render_graph(config, "mermaid")
    dot = render_graph(config, "dot")
    for source, target in routes:
        assert f"agent_{source} -->|" in mermaid and f"| agent_{target}" in mermaid
        assert f'"{source}" -> "{target}"' in dot
    assert mermaid.startswith("flowchart LR")
    assert dot.startswith('digraph "acme-broadband"')


def test_the_embedded_default_workflow_is_the_repository_config() -> None:
    """The wheel ships ``config.toml`` as the default; a moved link would ship nothing."""
    assert DEFAULT_CONFIG_PATH.read_text(encoding="utf-8") == (ROOT / "config.toml").read_text(
        encoding="utf-8"
    )
