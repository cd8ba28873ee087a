"""`frontdesk validate` reports every problem of a config in one run, each as
``file:line key.path: message``, sorted by line; "unknown key" lists the keys allowed there."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from frontdesk.workflows.cli import commands as cli
from frontdesk.workflows.cli import main
from frontdesk.workflows.definition.checks import allowed_keys, unknown_key_message
from frontdesk.workflows.definition.schema import (
    AgentConfig,
    ComponentConfig,
    ProviderProfile,
    ResumeSection,
    Route,
    StateSection,
    WorkerSection,
    WorkflowConfig,
)
from frontdesk.workflows.definition.tools import HttpTool

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """\
[workflow]
name = "tiny"
start = "front"

[caller_data.email]
description = "Email address"

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

AGENT_KEYS = ", ".join(AgentConfig.model_fields)


Validate = Callable[[str], tuple[int, list[str]]]


@pytest.fixture
def validate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Validate:
    """``frontdesk validate`` on a config text, in this process: (exit code, stderr lines)."""
    monkeypatch.setattr(cli, "_setup_logging", lambda verbose: None)
    monkeypatch.chdir(tmp_path)

    def run(text: str) -> tuple[int, list[str]]:
        (tmp_path / "config.toml").write_text(text)
        code = main(["validate", "config.toml"])
        err = capsys.readouterr().err
        lines = err.removeprefix("error: ").splitlines()
        return code, lines

    return run


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def test_schema_and_cross_reference_problems_come_in_one_run_sorted_by_line(
    validate: Validate,
) -> None:
    text = CONFIG.replace('to = "back"', 'to = "bakc"').replace("collects =", "colects =")
    code, problems = validate(text)
    assert code == 2
    assert problems == [
        f"config.toml:{line_of(text, 'bakc')} agents.front.handoffs[0].to: "
        "unknown agent 'bakc' (did you mean 'back'?)",
        f"config.toml:{line_of(text, '[agents.back]')} agents.back: "
        "agent 'back' cannot be reached from 'front'",
        f"config.toml:{line_of(text, 'colects')} agents.back.colects: unknown key "
        f"(allowed: {AGENT_KEYS}; did you mean 'collects'?)",
    ]


def test_a_cross_reference_is_checked_while_another_table_has_a_schema_error(
    validate: Validate,
) -> None:
    # the schema error comes later in the file than the route: sorting puts the route first
    text = CONFIG.replace('start = "front"', 'start = "frnt"').replace(
        'collects = ["email"]', 'collects = ["emial"]\ngreeting = 5'
    )
    code, problems = validate(text)
    assert code == 2
    assert problems == [
        f"config.toml:{line_of(text, 'frnt')} workflow.start: "
        "unknown agent 'frnt' (did you mean 'front'?)",
        f"config.toml:{line_of(text, 'emial')} agents.back.collects[0]: "
        "unknown caller_data field 'emial' (did you mean 'email'?)",
        f"config.toml:{line_of(text, 'greeting = 5')} agents.back.greeting: "
        "Input should be a valid string",
    ]


def test_what_was_taken_out_to_check_the_rest_is_never_reported(validate: Validate) -> None:
    """An agent lacking its instructions is still an agent routes may lead to (and its own
    routes are still checked); a route whose target is not a valid name does not make its
    target 'unreachable'."""
    text = (
        CONFIG.replace('instructions = "Help."', 'instructons = "Help."')
        .replace('to = "back"', 'to = "Back"')
        .replace('to = "front"', 'to = "frnt"')
    )
    code, problems = validate(text)
    assert code == 2
    assert problems == [
        f"config.toml:{line_of(text, 'Back')} agents.front.handoffs[0].to: 'Back' is not a valid "
        "name: use lowercase letters, digits and '_', starting with a letter (at most 40 characters)",
        f"config.toml:{line_of(text, '[agents.back]')} agents.back.instructions: "
        "required key is missing",
        f"config.toml:{line_of(text, 'instructons')} agents.back.instructons: unknown key "
        f"(allowed: {AGENT_KEYS}; did you mean 'instructions'?)",
        f"config.toml:{line_of(text, 'frnt')} agents.back.handoffs[0].to: "
        "unknown agent 'frnt' (did you mean 'front'?)",
    ]


def test_a_config_with_only_cross_reference_problems_lists_them_by_line(validate: Validate) -> None:
    text = CONFIG.replace('to = "front"', 'to = "frnt"').replace('start = "front"', 'start = "x"')
    code, problems = validate(text)
    assert code == 2
    lines = [int(problem.split(" ", 1)[0].split(":")[1]) for problem in problems]
    assert lines == sorted(lines) and len(problems) >= 2
    assert problems[0].startswith(f"config.toml:{line_of(text, 'start')} workflow.start:")


@pytest.mark.parametrize(
    ("section", "typo", "model", "hint"),
    [
        ("[[agents.front.handoffs]]\nto = 'back'\nwehn = 'x'\n", "wehn", Route, "when"),
        ("[state]\nttll = 5\n", "ttll", StateSection, "ttl"),
        ("[state.resume]\nlockot = 5\n", "lockot", ResumeSection, "lockout"),
        ("[worker]\nmax_sesions = 5\n", "max_sesions", WorkerSection, "max_sessions"),
        (
            "[providers.p]\nllm = { provider = 'openai' }\nllm_timout = 4\n",
            "llm_timout",
            ProviderProfile,
            "llm_timeout",
        ),
        (
            "[providers.p]\nllm = { provider = 'openai', modle = 'x' }\n",
            "modle",
            ComponentConfig,
            "model",
        ),
        (
            "[tools.lookup]\ndescription = 'd'\nurl = 'https://x.test'\nstoreas = 'email'\n",
            "storeas",
            HttpTool,
            "store_as",
        ),
        ("[workfow]\n", "workfow", WorkflowConfig, "workflow"),
    ],
)
def test_unknown_key_lists_the_keys_of_its_table_from_the_model(
    validate: Validate,
    section: str,
    typo: str,
    model: type[BaseModel],
    hint: str,
) -> None:
    code, problems = validate(CONFIG + "\n" + section)
    assert code == 2
    [problem] = [p for p in problems if f"{typo}: " in p]
    allowed = ", ".join(allowed_keys(model))
    assert problem.endswith(f": unknown key (allowed: {allowed}; did you mean '{hint}'?)"), problem
    assert f"config.toml:{line_of(CONFIG + chr(10) + section, typo)} " in problem


def test_allowed_keys_follow_the_models_not_a_list_kept_by_hand() -> None:
    class Leaf(BaseModel):
        model_config = ConfigDict(extra="forbid")
        colour: str = "red"
        size: int = 1

    class Root(BaseModel):
        model_config = ConfigDict(extra="forbid")
        leaves: dict[str, tuple[Leaf, ...]] = {}
        single: Leaf | None = None

    assert unknown_key_message(Root, ("leaves", "a", 2, "color")) == (
        "unknown key (allowed: colour, size; did you mean 'colour'?)"
    )
    assert unknown_key_message(Root, ("single", "zzz")) == "unknown key (allowed: colour, size)"
    assert unknown_key_message(Root, ("singel",)) == (
        "unknown key (allowed: leaves, single; did you mean 'single'?)"
    )
    # a key a model leaves out of its output (the scenario's own `source`) is not offered
    from frontdesk.workflows.runtime.simulate import Scenario

    assert "source" not in allowed_keys(Scenario) and "turn" in allowed_keys(Scenario)


BROKEN_INPUTS = {
    "not-toml": 'name = "unclosed\n',
    "agents-not-a-table": '[workflow]\nname = "x"\nstart = "a"\nagents = 5\n',
    "workflow-an-array": 'workflow = [1, 2]\n[agents.a]\ninstructions = "x"\n',
    "nothing": "",
    "wrong-types": CONFIG.replace('name = "tiny"', "name = 5").replace(
        'when = "done"', "when = []\ncontext = 3"
    ),
    "deep": CONFIG
    + "[providers.deep]\nllm = { provider = 'openai', options = { x = "
    + "[" * 400
    + "]" * 400
    + " } }\n",
}


def test_any_input_gives_a_clear_error_and_no_traceback(tmp_path: Path) -> None:
    for name, text in BROKEN_INPUTS.items():
        (tmp_path / f"{name}.toml").write_text(text)
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\nfrom frontdesk.workflows.cli import main\n"
            "for name in sys.argv[1:]:\n"
            "    print('exit', name, main(['validate', name]), file=sys.stderr)\n",
            *(f"{name}.toml" for name in BROKEN_INPUTS),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert "Traceback" not in output and "internal error" not in output, output
    for name in BROKEN_INPUTS:
        assert f"exit {name}.toml 2" in done.stderr, output
        assert f"error: {name}.toml" in done.stderr, output
    assert "nested" in done.stderr
    wrong = [line for line in done.stderr.splitlines() if "wrong-types.toml:" in line]
    assert any("workflow.name: Input should be a valid string" in line for line in wrong)
    assert any("handoffs[0].when: Input should be a valid string" in line for line in wrong)
    assert any("handoffs[0].context: Input should be a valid string" in line for line in wrong)
