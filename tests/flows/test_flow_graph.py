"""The graph checks and drawings know about final agents and automatic steps."""

from __future__ import annotations

import pytest

from frontdesk.errors import ConfigError
from frontdesk.workflows.definition import Workflow, parse_workflow, render_graph

LINEAR = """\
[workflow]
name = "survey"
start = "intro"

[caller_data.score]
description = "A score"

[agents.intro]
instructions = "x"
next = "ask"

[agents.ask]
instructions = "x"
collects = ["score"]

[[agents.ask.handoffs]]
to = "thanks"
when = "done"
requires = ["score"]

[agents.thanks]
instructions = "x"
final = true
end_call = "Thanks, goodbye."
"""


def test_a_linear_flow_ending_on_a_final_agent_has_no_way_back_warnings() -> None:
    workflow = parse_workflow(LINEAR)
    assert workflow.warnings == ()  # `ask` is reached by `next` only, and leads to `thanks`


def test_an_agent_that_leads_to_no_final_agent_is_still_warned_about() -> None:
    dead_end = LINEAR.replace('final = true\nend_call = "Thanks, goodbye."\n', "")
    warnings = parse_workflow(dead_end, source="s.toml").warnings
    assert warnings[0].startswith(
        "s.toml:12 agents.ask: agent 'ask' has no way back to 'intro' and leads to no final agent"
    )


def test_the_drawing_shows_next_steps_and_final_agents(clinic: Workflow) -> None:
    mermaid = render_graph(clinic.config)
    assert '  agent_advisor -.->|"next"| agent_booking' in mermaid
    assert 'agent_done["done<br/>final: ends the call"]' in mermaid
    dot = render_graph(clinic.config, "dot")
    assert '"advisor" -> "booking" [label="next", style=dashed];' in dot


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ('next = "ask"', "s.toml:10 agents.intro.next: unknown agent 'aks'"),
        (
            "final = true\n",
            "s.toml:23 agents.thanks.end_call: a closing line alone needs final = true",
        ),
    ],
)
def test_next_and_end_call_mistakes_are_reported_at_their_key(change: str, problem: str) -> None:
    replacement = 'next = "aks"' if change.startswith("next") else ""
    with pytest.raises(ConfigError) as raised:
        parse_workflow(LINEAR.replace(change, replacement, 1), source="s.toml")
    assert any(found.startswith(problem) for found in raised.value.problems), raised.value.problems


def test_a_final_agent_without_a_closing_line_is_an_error_at_final() -> None:
    text = LINEAR.replace('end_call = "Thanks, goodbye."\n', "")
    with pytest.raises(ConfigError) as raised:
        parse_workflow(text, source="s.toml")
    assert raised.value.problems == [
        "s.toml:23 agents.thanks.final: a final agent needs end_call: the line said verbatim "
        'before the call ends, e.g. end_call = "Thanks for calling. Goodbye!"'
    ]
