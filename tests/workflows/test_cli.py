"""The `frontdesk` command as a user runs it: exit codes, messages, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from frontdesk.workflows.cli import commands as cli
from frontdesk.workflows.cli import main

ROOT = Path(__file__).resolve().parents[2]

PASSING = """\
caller = "+15551230000"

[[turn]]
say = "hi, my internet is down"
expect_agent = "support"
expect_reply_contains = ["account number"]

[[turn]]
say = "sure, it's AC-48213"
expect_data = { account_number = "AC-48213" }
"""


def frontdesk(
    *args: str, cwd: Path = ROOT, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "frontdesk", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
    )


def test_validate_default_config_exits_zero() -> None:
    done = frontdesk("validate", "config.toml")
    assert done.returncode == 0, done.stderr
    assert "acme-broadband" in done.stdout


def test_validate_broken_config_exits_two_with_key_path_and_line(tmp_path: Path) -> None:
    broken = (ROOT / "config.toml").read_text().replace('to = "support"', 'to = "suport"', 1)
    config = tmp_path / "config.toml"
    config.write_text(broken)
    done = frontdesk("validate", str(config))
    line = broken.splitlines().index('to = "suport"') + 1
    assert done.returncode == 2
    assert (
        f"config.toml:{line} agents.receptionist.handoffs[0].to: unknown agent 'suport'"
        in done.stderr
    )
    assert "did you mean 'support'?" in done.stderr
    assert "Traceback" not in done.stderr


def test_graph_prints_mermaid() -> None:
    done = frontdesk("graph", "config.toml", "--format", "mermaid")
    assert done.returncode == 0
    assert 'agent_receptionist -->|"full"| agent_support' in done.stdout


def test_simulate_passing_scenario_exits_zero_and_prints_json_per_turn(tmp_path: Path) -> None:
    scenario = tmp_path / "call.toml"
    scenario.write_text(PASSING)
    done = frontdesk(
        "simulate", str(scenario), "--config", str(ROOT / "config.toml"), "--json", "--no-state"
    )
    assert done.returncode == 0, done.stderr
    turns = [json.loads(line) for line in done.stdout.splitlines()]
    assert [t["turn"] for t in turns] == [1, 2]
    assert turns[0]["agent"] == "support"
    assert turns[0]["handoffs"] == [{"from": "receptionist", "to": "support"}]
    assert turns[1]["data"] == {"account_number": "AC-48213"}
    assert all(t["ok"] for t in turns)
    assert set(turns[0]) >= {"turn", "event", "user", "agent", "reply", "handoffs", "data", "ok"}


def test_simulate_failed_expectation_exits_one_and_names_the_turn(tmp_path: Path) -> None:
    scenario = tmp_path / "call.toml"
    scenario.write_text(PASSING.replace('expect_agent = "support"', 'expect_agent = "sales"'))
    done = frontdesk("simulate", str(scenario), "--config", str(ROOT / "config.toml"), "--no-state")
    assert done.returncode == 1
    assert "turn 1: expected agent 'sales', got 'support'" in done.stdout


def test_malformed_scenario_exits_two_with_key_path(tmp_path: Path) -> None:
    scenario = tmp_path / "call.toml"
    scenario.write_text(PASSING.replace("expect_agent", "expect_agnet", 1))
    done = frontdesk("simulate", str(scenario), "--no-state")
    assert done.returncode == 2
    assert "turn[1].expect_agnet: unknown key (allowed: say, event, expect_agent," in done.stderr
    assert "Traceback" not in done.stderr


def test_chat_answers_what_is_typed(tmp_path: Path) -> None:
    done = frontdesk(
        "chat",
        "--config",
        str(ROOT / "config.toml"),
        stdin="my internet is down\nAC-48213\n/data\n/quit\n",
    )
    assert done.returncode == 0, done.stderr
    assert "Thanks for calling Acme Broadband" in done.stdout
    assert "receptionist → support" in done.stdout
    assert '{"account_number": "****8213"}' in done.stdout  # sensitive: masked on screen


def test_demo_runs_offline_and_resumes_after_the_drop() -> None:
    done = frontdesk("demo")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "☎ the same caller calls back" in done.stdout
    assert "support: Welcome back" in done.stdout.replace("\n", " ")
    assert "every expectation held" in done.stdout


def test_simulate_reconnect_without_state_fails_clearly(tmp_path: Path) -> None:
    scenario = tmp_path / "call.toml"
    scenario.write_text(
        PASSING + '\n[[turn]]\nevent = "disconnect"\n\n[[turn]]\nevent = "reconnect"\n'
    )
    done = frontdesk("simulate", str(scenario), "--config", str(ROOT / "config.toml"), "--no-state")
    assert done.returncode == 1
    assert "turn 4: reconnect needs session state in Redis" in done.stdout


def test_sessions_commands_list_show_export_delete_and_forget_a_caller(
    tmp_path: Path,
    redis_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """On an emptied Redis (``redis_client`` flushes it), whatever ran before this test.

    The commands run in this process through the console script's ``main`` (a process each
    would cost seconds); the exit code of a real process is checked once, at the end.
    """
    address = redis_client.connection_pool.connection_kwargs
    url = f"redis://{address['host']}:{address['port']}/0"
    monkeypatch.setenv("FRONTDESK_REDIS_URL", url)
    # the command's logging setup would outlive this test in this process (handlers, levels)
    monkeypatch.setattr(cli, "_setup_logging", lambda verbose: None)

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    def call_from(caller: str) -> None:
        scenario = tmp_path / f"{caller}.toml"
        scenario.write_text(PASSING.replace("+15551230000", caller))
        code, out, err = run("simulate", str(scenario), "--config", str(ROOT / "config.toml"))
        assert code == 0, out + err

    def listed_sessions() -> list[str]:
        code, out, err = run("sessions", "list")
        assert code == 0, err
        assert "+1555999" not in out  # identities are listed hashed, never raw
        return [line.split()[1] for line in out.splitlines() if "support" in line]

    call_from("+15559990000")
    [session_id] = listed_sessions()
    code, shown, _ = run("sessions", "show", session_id)
    assert code == 0
    assert "receptionist → support" in shown
    assert "****8213" in shown and "AC-48213" not in shown  # the sensitive value, masked
    code, exported, _ = run("sessions", "export", session_id, "--format", "json")
    assert json.loads(exported)["session_id"] == session_id
    assert json.loads(exported)["current_agent"] == "support"

    code, forgotten, _ = run("sessions", "forget-caller", "+15559990000")
    assert code == 0
    assert "removed 1 session" in forgotten
    assert listed_sessions() == []
    code, _, missing = run("sessions", "show", session_id)
    assert code == 1
    assert f"error: no stored session '{session_id}'" in missing

    call_from("+15559990001")
    call_from("+15559990002")
    kept, deleted = sorted(listed_sessions())
    code, out, err = run("sessions", "delete", deleted)
    assert code == 0, err
    assert f"deleted session {deleted}" in out
    assert listed_sessions() == [kept]
    assert run("sessions", "show", kept)[0] == 0

    # as a user runs it: a process, its exit code, a message, no traceback
    done = subprocess.run(
        [sys.executable, "-m", "frontdesk", "sessions", "show", deleted],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "FRONTDESK_REDIS_URL": url},
    )
    assert done.returncode == 1
    assert f"error: no stored session '{deleted}'" in done.stderr
    assert "Traceback" not in done.stderr
