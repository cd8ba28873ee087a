"""``frontdesk chat``: ``/drop`` hangs up and calls back, ``--state-dir`` lets a later chat resume.

Run in this process through the console script's ``main``, typing on a replaced stdin; each chat
keeps its state in an embedded redis-server (a private one, in a temporary folder by default).
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from frontdesk.workflows.cli import commands as cli
from frontdesk.workflows.cli import main

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / "config.toml")
# the account number is sensitive: a caller resumed by caller ID repeats it before it is used
WELCOME_BACK = (
    "support: Welcome back. Let's pick up where we left off. Could you read me your account number?"
)
VERIFIED = "support: Thanks. I'm checking the line for account AC-48213 now"


@pytest.fixture
def chat(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    monkeypatch.delenv("FRONTDESK_REDIS_URL", raising=False)
    monkeypatch.setattr(cli, "_setup_logging", lambda verbose: None)  # would outlive the test

    def run(typed: str, *options: str) -> str:
        monkeypatch.setattr("sys.stdin", io.StringIO(typed))
        code = main(["chat", "--config", CONFIG, *options])
        out, err = capsys.readouterr()
        assert code == 0, out + err
        return " ".join(out.split())  # rich wraps long lines

    return run


def test_drop_hangs_up_and_the_call_back_resumes_on_support(
    chat,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state = ("--state-dir", str(tmp_path))
    out = chat("my internet is down\nAC-48213\n/drop\nAC-48213\n/quit\n", *state)
    before, _, after = out.partition("✂ dropped; calling back…")
    assert "new call" in before and "receptionist → support" in before
    assert after.startswith(f" {WELCOME_BACK}")
    assert VERIFIED in after
    assert "Thanks for calling" not in after
    # the session records two calls: the one that dropped, then the resumed one
    assert main(["sessions", "list", "--config", CONFIG, *state]) == 0
    rows = capsys.readouterr().out.splitlines()
    [session_id] = [row.split()[1] for row in rows if "support" in row]
    assert main(["sessions", "show", session_id, "--config", CONFIG, *state]) == 0
    shown = capsys.readouterr().out
    assert "ended: caller dropped" in shown.split("call 1:")[1].splitlines()[0]
    assert "resumed, ended: caller hung up" in shown.split("call 2:")[1].splitlines()[0]


def test_a_later_chat_with_the_same_state_dir_resumes_and_one_without_starts_fresh(
    chat,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    first = chat("my internet is down\nAC-48213\n/quit\n", "--state-dir", str(tmp_path))
    assert "new call" in first
    later = chat("AC-48213\n/quit\n", "--state-dir", str(tmp_path))
    assert "resumed" in later and WELCOME_BACK in later and VERIFIED in later
    elsewhere = chat("/quit\n")
    assert "new call" in elsewhere and "Thanks for calling Acme Broadband" in elsewhere
