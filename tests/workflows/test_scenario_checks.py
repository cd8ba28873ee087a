"""Scenario files are checked against their config before the call runs; turns count from 1
everywhere; `expect_data` values are typed and compared type and all."""

from __future__ import annotations

import datetime
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from frontdesk.workflows.cli import commands as cli
from frontdesk.workflows.cli import main
from frontdesk.workflows.definition import DEFAULT_CONFIG_PATH
from frontdesk.workflows.runtime import DEMO_SCENARIO, TurnResult, check_expectations, load_scenario
from frontdesk.workflows.runtime.scenario_checks import data_failure, same_value, scenario_config
from frontdesk.workflows.runtime.simulate import ScenarioTurn

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config.toml"
WHERE = f"in workflow 'acme-broadband' ({CONFIG})"

CALL = """\
caller = "+15551230000"

[[turn]]
say = "hi, my internet is down"
expect_agent = "support"

[[turn]]
say = "sure, it's AC-48213"
expect_data = { account_number = "AC-48213" }
"""

Simulate = Callable[..., tuple[int, str, str]]


@pytest.fixture
def simulate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Simulate:
    """``frontdesk simulate`` on a scenario text, in this process: (exit code, stdout, stderr).

    The scenario is written to ``tmp_path/<name>``; ``config`` is put at its top unless None.
    """
    monkeypatch.setattr(cli, "_setup_logging", lambda verbose: None)
    monkeypatch.chdir(tmp_path)

    def run(
        text: str, *args: str, config: Path | None = CONFIG, name: str = "call.toml"
    ) -> tuple[int, str, str]:
        header = f'config = "{config}"\n' if config is not None else ""
        (tmp_path / name).write_text(header + text)
        code = main(["simulate", name, "--no-state", *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def line_of(text: str, needle: str) -> int:
    """The line of ``needle`` in the scenario file (whose line 1 is the ``config`` line)."""
    return 1 + next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


# --------------------------------------------------------------------------- names


def test_an_unknown_agent_is_exit_2_with_its_line_and_a_suggestion_before_any_call(
    simulate: Simulate,
) -> None:
    text = CALL.replace('expect_agent = "support"', 'expect_agent = "suport"')
    code, out, err = simulate(text)
    assert code == 2
    assert out == ""  # no call ran: nothing was said
    assert err.strip() == (
        f"error: call.toml:{line_of(text, 'suport')} turn[1].expect_agent: unknown agent "
        f"'suport' {WHERE} (did you mean 'support'?)"
    )


def test_every_misnamed_agent_field_and_tool_is_listed_by_line(simulate: Simulate) -> None:
    text = (
        CALL.replace('expect_agent = "support"', 'expect_agent = "billing"')
        .replace("{ account_number =", "{ acount_number =")
        .replace(
            'expect_data = { acount_number = "AC-48213" }',
            'expect_data = { acount_number = "AC-48213" }\n'
            'expect_tool = { name = "transfer_to_sale" }',
        )
    )
    code, out, err = simulate(text)
    assert code == 2 and out == ""
    assert err.removeprefix("error: ").splitlines() == [
        f"call.toml:{line_of(text, 'billing')} turn[1].expect_agent: unknown agent 'billing' "
        f"{WHERE} (known: receptionist, support, sales, goodbye)",
        f"call.toml:{line_of(text, 'acount_number')} turn[2].expect_data.acount_number: unknown "
        f"caller_data field 'acount_number' {WHERE} (did you mean 'account_number'?)",
        f"call.toml:{line_of(text, 'transfer_to_sale')} turn[2].expect_tool.name: unknown tool "
        f"'transfer_to_sale' {WHERE}: it has no agent 'sale' (did you mean 'transfer_to_sales'?)",
    ]


def test_a_scenario_naming_only_known_things_runs(simulate: Simulate) -> None:
    code, out, err = simulate(CALL)
    assert code == 0, out + err
    assert "✓ 2 turns passed, 0 failed" in out


# --------------------------------------------------------------------------- which config


def test_a_scenario_without_config_and_no_config_toml_beside_it_is_an_error(
    simulate: Simulate,
) -> None:
    code, out, err = simulate(CALL, config=None)
    assert code == 2 and out == ""
    assert err.strip() == (
        "error: call.toml: the scenario names no config and there is no config.toml next to "
        'it: pass --config CONFIG, or add config = "path/to/config.toml" at the top of the '
        "scenario (relative to the scenario file)"
    )


def test_the_config_is_the_flag_then_the_scenarios_then_the_one_beside_it(
    simulate: Simulate, tmp_path: Path
) -> None:
    code, out, err = simulate(CALL, "--config", str(CONFIG), config=None)
    assert code == 0, out + err
    # a config.toml beside the scenario is used when the scenario names none
    (tmp_path / "config.toml").write_text(CONFIG.read_text().replace("support", "helpdesk"))
    code, out, err = simulate(CALL, config=None)
    assert code == 2
    assert "unknown agent 'support' in workflow 'acme-broadband' (config.toml)" in err
    # the scenario's own `config`, relative to the scenario file, wins over the one beside it
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "acme.toml").write_text(CONFIG.read_text())
    code, out, err = simulate(CALL, config=Path("real/acme.toml"))
    assert code == 0, out + err


def test_a_missing_config_file_names_the_scenario_line(simulate: Simulate, tmp_path: Path) -> None:
    code, _, err = simulate(CALL, config=Path("nope.toml"))
    assert code == 2
    assert err.strip().startswith(
        f"error: call.toml:1 config: no such config file 'nope.toml' (looked for "
        f"{tmp_path / 'nope.toml'}): pass --config CONFIG"
    )


def test_the_built_in_demo_scenario_runs_on_the_embedded_config() -> None:
    scenario = load_scenario(DEMO_SCENARIO)
    assert scenario_config(scenario, None).resolve() == DEFAULT_CONFIG_PATH.resolve()


def test_frontdesk_demo_and_a_misnamed_scenario_as_a_user_runs_them(tmp_path: Path) -> None:
    """Real processes: the demo still runs; a bad scenario exits 2 with no traceback."""
    bad = tmp_path / "bad.toml"
    bad.write_text(f'config = "{CONFIG}"\n[[turn]]\nsay = "hi"\nexpect_agent = "salse"\n')
    done = subprocess.run(
        [sys.executable, "-m", "frontdesk", "simulate", str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "bad.toml:4 turn[1].expect_agent: unknown agent 'salse'" in done.stderr
    assert "did you mean 'sales'?" in done.stderr and "Traceback" not in done.stderr


# --------------------------------------------------------------------------- turn numbers


def test_errors_and_output_number_the_same_turn_the_same_way(simulate: Simulate) -> None:
    third = '\n[[turn]]\nsay = "thanks"\nexpect_reply_contains = ["no such words"]\n'
    code, out, _ = simulate(CALL + third)
    assert code == 1
    assert "✗ turn 3: reply does not contain 'no such words'" in out

    misspelt = third.replace("expect_reply_contains", "expect_reply_contain")
    code, out, err = simulate(CALL + misspelt)
    assert code == 2 and out == ""
    line = line_of(CALL + misspelt, "expect_reply_contain =")
    assert err.startswith(
        f"error: call.toml:{line} turn[3].expect_reply_contain: unknown key (allowed: say, event,"
    )
    assert err.rstrip().endswith("did you mean 'expect_reply_contains'?)")

    both = CALL + third.replace('say = "thanks"', 'say = "thanks"\nevent = "disconnect"')
    code, _, err = simulate(both)
    assert code == 2
    headers = [n for n, text in enumerate(both.splitlines(), 2) if text == "[[turn]]"]
    line = headers[2]  # the third [[turn]] (line 1 of the file is `config`)
    assert f"call.toml:{line} turn[3]: a turn needs exactly one of 'say' or 'event'" in err


# --------------------------------------------------------------------------- typed expect_data


def test_typed_expectations_compare_type_and_value(simulate: Simulate) -> None:
    # the offline brain stores the postcode as it was said: the string "94103"
    turns = (
        '\n[[turn]]\nsay = "I want to upgrade my plan"\n'
        '[[turn]]\nsay = "94103"\nexpect_data = { postcode = 94103 }\n'
    )
    code, out, _ = simulate(CALL + turns)
    assert code == 1
    assert (
        '✗ turn 4: expected postcode = 94103 (integer), got "94103" (string): the types differ'
    ) in out
    code, out, err = simulate(CALL + turns.replace("= 94103 }", '= "94103" }'))
    assert code == 0, out + err


def test_an_expected_value_is_a_scalar_or_a_list(simulate: Simulate) -> None:
    code, _, err = simulate(
        CALL.replace('{ account_number = "AC-48213" }', "{ account_number = { a = 1 } }")
    )
    assert code == 2
    assert (
        "turn[2].expect_data.account_number: an expected value is a string, a number, a boolean, "
        "a date, a time or a list of them"
    ) in err


@pytest.mark.parametrize(
    ("depth", "problem"),
    [
        (30, "tables and arrays are nested more than 20 levels deep"),
        (5000, "not valid TOML: arrays or tables nested too deeply"),
    ],
)
def test_a_deeply_nested_expected_value_is_a_clear_error(
    simulate: Simulate, depth: int, problem: str
) -> None:
    nested = "[" * depth + "]" * depth
    code, out, err = simulate(CALL.replace('"AC-48213" }', nested + " }"))
    assert (code, out) == (2, "")
    assert err.strip() == f"error: call.toml: {problem}"


@pytest.mark.parametrize(
    ("expected", "stored", "same"),
    [
        (4, 4, True),
        (4, 4.0, True),
        (4, "4", False),
        ("4", 4, False),
        ("AC-48213", "AC-48213", True),
        (True, True, True),
        (True, 1, False),
        (1, True, False),
        (["a", 2], ["a", 2], True),
        (["a", 2], ["a", "2"], False),
        (["a"], ["a", "b"], False),
        (datetime.date(2014, 3, 9), "2014-03-09", True),
        (datetime.date(2014, 3, 9), "2014-03-10", False),
        (datetime.time(18, 30), "18:30:00", True),
    ],
)
def test_same_value_is_type_aware(expected: object, stored: object, same: bool) -> None:
    assert same_value(expected, stored) is same


def test_data_failures_say_what_was_expected_and_what_was_stored() -> None:
    assert data_failure("party_size", 4, {"party_size": 4}) is None
    assert data_failure("party_size", 4, {"party_size": "4"}) == (
        'expected party_size = 4 (integer), got "4" (string): the types differ'
    )
    assert data_failure("party_size", 4, {"party_size": 5}) == "expected party_size = 4, got 5"
    assert data_failure("party_size", 4, {}) == (
        "expected party_size = 4, but party_size was not recorded"
    )
    assert data_failure("vip", True, {"vip": "true"}) == (
        'expected vip = true (boolean), got "true" (string): the types differ'
    )
    assert data_failure("meds", ["a", "b"], {"meds": ["a"]}) == (
        'expected meds = ["a", "b"], got ["a"]'
    )


def test_check_expectations_reads_typed_stored_data() -> None:
    turn = ScenarioTurn(say="four of us", expect_data={"party_size": 4, "name": "Ann"})
    typed = TurnResult(turn=1, event="say", data={"party_size": 4, "name": "Ann"})
    assert check_expectations(turn, typed) == []
    as_text = TurnResult(turn=1, event="say", data={"party_size": "4", "name": "Ann"})
    assert check_expectations(turn, as_text) == [
        'expected party_size = 4 (integer), got "4" (string): the types differ'
    ]
