"""The ``frontdesk`` command read through a pipe or a file, as in CI or a log: whole lines (not
wrapped at 80 columns), no colour codes, a dialogue from piped ``chat``, the development-secret
warning at most once, sessions with their workflow and a JSON twin, plurals that agree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from frontdesk.state import EmbeddedRedis

ROOT = Path(__file__).resolve().parents[2]
DEMO_SCENARIO = ROOT / "workflows" / "runtime" / "demo_scenario.toml"
ANSI = "\x1b["


def frontdesk(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "COLUMNS", "TERM")}
    base.pop("FRONTDESK_REDIS_URL", None)
    base.pop("FRONTDESK_STATE_SECRET", None)
    return subprocess.run(
        [sys.executable, "-m", "frontdesk", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=300,
        env={**base, **(env or {})},
    )


def test_piped_demo_output_is_whole_lines_without_colour_or_secret_warning() -> None:
    done = frontdesk("demo")
    assert done.returncode == 0, done.stdout + done.stderr
    assert ANSI not in done.stdout and ANSI not in done.stderr
    lines = done.stdout.splitlines()
    # the longest lines are still one line each (rich would wrap them at 80 columns)
    assert any(len(line) > 100 for line in lines)
    assert any(
        line.startswith('support: "it\'s AC-123" is not a valid account number.')
        and line.endswith("It starts with AC.")
        for line in lines
    ), done.stdout
    assert "DEVELOPMENT" not in done.stderr  # a private embedded Redis: nothing to warn about


def test_piped_chat_reads_as_a_dialogue(tmp_path: Path) -> None:
    done = frontdesk(
        "chat", "--state-dir", str(tmp_path), stdin="hi, my internet is down\nAC-48213\n/quit\n"
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    spoken = [line for line in lines if line.split(":")[0] in ("caller", "receptionist", "support")]
    assert spoken[:3] == [
        "receptionist: Thanks for calling Acme Broadband, how can I help?",
        "caller: hi, my internet is down",
        "support: Let me get you to support.",  # the new agent speaks the say line
    ]
    assert "caller: AC-48213" in lines
    assert "you>" not in done.stdout
    assert ANSI not in done.stdout


def test_sessions_list_and_show_on_a_configured_redis(tmp_path: Path) -> None:
    with EmbeddedRedis() as server:
        env = {"FRONTDESK_REDIS_URL": server.url}
        played = frontdesk("simulate", str(DEMO_SCENARIO), "--config", "config.toml", env=env)
        assert played.returncode == 0, played.stdout + played.stderr
        listed = frontdesk("sessions", "list", env=env)
        assert listed.returncode == 0, listed.stderr
        assert "workflow" in listed.stdout and "acme-broadband" in listed.stdout
        # on a real Redis without FRONTDESK_STATE_SECRET: the warning, once
        assert listed.stderr.count("DEVELOPMENT secret") == 1, listed.stderr
        as_json = json.loads(frontdesk("sessions", "list", "--json", env=env).stdout)
        (session,) = as_json
        assert (session["workflow"], session["agent"], session["turns"]) == (
            "acme-broadband",
            "sales",
            6,  # the demo's turns, the resumed caller's verification included
        )
        shown = frontdesk("sessions", "show", session["session_id"], "--json", env=env)
        assert shown.returncode == 0, shown.stderr
        detail = json.loads(shown.stdout)
        assert detail["session_id"] == session["session_id"]
        assert [(h["from"], h["to"]) for h in detail["handoffs"]] == [
            ("receptionist", "support"),
            ("support", "sales"),
        ]
        assert detail["transcript"][0] == {
            "role": "agent",
            "agent": "receptionist",
            "text": "Thanks for calling Acme Broadband, how can I help?",
        }
        # the sensitive account number is masked in `sessions show`, even as JSON
        assert detail["caller_data"] == {"account_number": "****8213", "postcode": "94103"}
        assert len(detail["calls"]) == 2


def test_counts_agree_with_their_nouns(tmp_path: Path) -> None:
    config = tmp_path / "one.toml"
    config.write_text(
        '[workflow]\nname = "solo"\nstart = "desk"\n'
        '[caller_data.note]\ndescription = "a note"\n'
        '[agents.desk]\ninstructions = "help"\ncollects = ["note"]\n'
    )
    done = frontdesk("validate", str(config))
    assert done.returncode == 0, done.stderr
    assert "(1 agent, 1 caller-data field, 0 routes)" in done.stdout
