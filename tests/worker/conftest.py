"""Fixtures of the worker tests: the repository's default workflow and a controlled environment.

No LiveKit server and no provider keys exist here: keys are placeholders set with monkeypatch,
plugins are constructed (which connects to nothing) but never used.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from frontdesk.workflows.definition import Workflow, load_workflow, parse_workflow

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config.toml"

PLACEHOLDER_KEYS = {
    "OPENAI_API_KEY": "sk-placeholder",
    "DEEPGRAM_API_KEY": "dg-placeholder",
    "CARTESIA_API_KEY": "ca-placeholder",
    "LOCAL_STT_API_KEY": "local",
    "LOCAL_LLM_API_KEY": "ollama",
    "LOCAL_TTS_API_KEY": "local",
}
LIVEKIT_KEYS = {
    "LIVEKIT_URL": "wss://example.livekit.cloud",
    "LIVEKIT_API_KEY": "APIplaceholder",
    "LIVEKIT_API_SECRET": "secret-placeholder",
}


@pytest.fixture(scope="session")
def workflow() -> Workflow:
    return load_workflow(CONFIG)


def variant(old: str, new: str) -> Workflow:
    """The default config with one textual change."""
    text = CONFIG.read_text()
    assert old in text, f"{old!r} is not in {CONFIG}"
    return parse_workflow(text.replace(old, new, 1), source="variant.toml")


def with_extra(extra: str) -> Workflow:
    """The default config with TOML appended (e.g. a per-agent override table)."""
    return parse_workflow(CONFIG.read_text() + "\n" + extra, source="variant.toml")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No key, LiveKit credential, profile choice or Redis URL leaks in from the machine."""
    for name in [*PLACEHOLDER_KEYS, *LIVEKIT_KEYS, "FRONTDESK_PROFILE", "FRONTDESK_REDIS_URL"]:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def placeholder_keys(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in PLACEHOLDER_KEYS.items():
        monkeypatch.setenv(name, value)
    return dict(PLACEHOLDER_KEYS)
