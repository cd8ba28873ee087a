"""``frontdesk worker``: LiveKit's own CLI behind our checks, and the checks themselves.

Nothing here reaches a LiveKit server: either the command only prints help, or a check stops
it before LiveKit's CLI runs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from frontdesk.errors import WorkerSetupError
from frontdesk.workflows.definition import Workflow
from frontdesk.workflows.worker import preflight, run_worker

from .conftest import CONFIG, LIVEKIT_KEYS, PLACEHOLDER_KEYS, ROOT


def clean_environment() -> dict[str, str]:
    hidden = {*LIVEKIT_KEYS, *PLACEHOLDER_KEYS, "FRONTDESK_PROFILE", "FRONTDESK_REDIS_URL"}
    return {k: v for k, v in os.environ.items() if k not in hidden}


def python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean_environment(), "COLUMNS": "120"},
    )


def test_worker_help_lists_livekits_modes() -> None:
    done = python(
        "import sys; from frontdesk.workflows.worker import run_worker; "
        f"sys.exit(run_worker(['--help'], {str(CONFIG)!r}))"
    )
    assert done.returncode == 0, done.stderr
    assert "Usage: frontdesk worker" in done.stdout
    # LiveKit's own commands, as README lists them (not the code's constant: that could drift)
    commands = set(re.findall(r"^\W*([a-z][a-z-]+)\s{2,}\S", done.stdout, flags=re.MULTILINE))
    assert {"console", "start", "dev", "connect", "download-files"} <= commands, done.stdout


def test_mode_help_needs_no_credentials() -> None:
    done = python(
        "import sys; from frontdesk.workflows.worker import run_worker; "
        f"sys.exit(run_worker(['start', '--help'], {str(CONFIG)!r}))"
    )
    assert done.returncode == 0, done.stderr
    assert "--url" in done.stdout
    assert "--api-secret" in done.stdout


def test_frontdesk_worker_start_without_credentials_exits_two_without_traceback() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "frontdesk", "worker", "--config", str(CONFIG), "start"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_environment(),
    )
    assert done.returncode == 2
    assert "LiveKit credentials missing: LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET" in (
        done.stderr
    )
    assert "Traceback" not in done.stderr


def test_start_is_checked_before_livekit_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """run_worker raises before cli.run_app: nothing connects, nothing is registered."""
    from livekit.agents import cli

    monkeypatch.setattr(cli, "run_app", lambda _options: pytest.fail("LiveKit CLI reached"))
    with pytest.raises(WorkerSetupError, match="LIVEKIT_API_SECRET"):
        run_worker(["start"], str(CONFIG))


def test_credentials_may_come_as_livekit_flags(workflow: Workflow) -> None:
    flags = ["start", "--url", "wss://x.livekit.cloud", "--api-key=k", "--api-secret", "s"]
    from frontdesk.workflows.worker.command import _env_with_flags

    env = _env_with_flags(flags, {})
    assert env == {
        "LIVEKIT_URL": "wss://x.livekit.cloud",
        "LIVEKIT_API_KEY": "k",
        "LIVEKIT_API_SECRET": "s",
    }
    # credentials pass; `start` then wants Redis (the offline profile needs no key)
    with pytest.raises(WorkerSetupError, match="needs Redis for resumable calls"):
        preflight(workflow, "start", env=env)


def test_start_with_redis_and_credentials_passes(workflow: Workflow) -> None:
    env = {
        **LIVEKIT_KEYS,
        "FRONTDESK_REDIS_URL": "redis://localhost:6379/0",
        "FRONTDESK_STATE_SECRET": "a-long-random-production-secret",
        "FRONTDESK_DATA_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",  # sensitive fields
    }
    assert preflight(workflow, "start", env=env) == "offline"


def test_missing_provider_keys_stop_the_worker_naming_them(workflow: Workflow) -> None:
    env = {**LIVEKIT_KEYS, "FRONTDESK_PROFILE": "quality", "DEEPGRAM_API_KEY": "x"}
    with pytest.raises(WorkerSetupError) as raised:
        preflight(workflow, "dev", env=env)
    assert str(raised.value).splitlines() == [
        "profile 'quality' llm (openai) needs OPENAI_API_KEY",
        "profile 'quality' tts (cartesia) needs CARTESIA_API_KEY",
    ]


def test_console_needs_no_livekit_credentials(workflow: Workflow) -> None:
    assert preflight(workflow, "console", env={}) == "offline"
    env = {**PLACEHOLDER_KEYS, "FRONTDESK_PROFILE": "budget"}
    assert preflight(workflow, "console", env=env) == "budget"
    with pytest.raises(WorkerSetupError, match="needs CARTESIA_API_KEY"):
        preflight(workflow, "console", env={"FRONTDESK_PROFILE": "quality"})


def test_download_files_needs_nothing(workflow: Workflow) -> None:
    assert preflight(workflow, "download-files", env={"FRONTDESK_PROFILE": "quality"}) == "quality"


def test_an_unknown_profile_stops_every_mode(workflow: Workflow) -> None:
    with pytest.raises(WorkerSetupError, match="unknown provider profile 'qualty'"):
        preflight(workflow, "console", env={"FRONTDESK_PROFILE": "qualty"})
