"""Fixtures of the voice tests: Silero's VAD, the loopback providers, caller speech, Redis.

Caller speech is made at test time by Debian's ``espeak-ng`` (CI installs it: ``.ci/run``).
Without it the tests that need speech are skipped with a loud reason, except where
``FRONTDESK_REQUIRE_ESPEAK=1`` (CI), where its absence is a failure.
"""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from frontdesk.state import RedisSessionStore
from frontdesk.workflows.definition import Workflow, parse_workflow
from frontdesk.workflows.runtime import Persistence
from frontdesk.workflows.voice_harness import Clip, espeak_available, spoken
from frontdesk.workflows.voice_loopback import LOOPBACK_KEY_ENV, LoopbackProviders, profile_toml
from tests.conftest import TEST_CALLER_SECRET, config_without_sensitive_fields

ROOT = Path(__file__).resolve().parents[2]
# the shipped config with its account number not sensitive: these tests are about the voice
# path, and a resumed caller hears the resume line with the account in it
CONFIG_TEXT = config_without_sensitive_fields()
SUPPORT_VOICE = "nova"
"""The voice support speaks with (a per-agent override); the profile's voice is ``alloy``."""
SUPPORT_OVERRIDE = f'\n[agents.support.tts]\nvoice = "{SUPPORT_VOICE}"\n'
SECONDS_PER_CHAR = 0.03
"""Synthesised agent speech: ~33 characters a second, so calls stay short in CI."""


def voice_workflow(base_url: str) -> Workflow:
    """The default workflow with the ``loopback`` profile at ``base_url`` and support's voice."""
    return parse_workflow(
        CONFIG_TEXT + "\n" + profile_toml(base_url) + SUPPORT_OVERRIDE, source="voice.toml"
    )


@pytest.fixture(scope="session")
def vad() -> Any:
    """Silero's VAD, loaded once (it ships in the plugin's wheel: no download)."""
    from livekit.plugins import silero

    return silero.VAD.load()


@pytest.fixture(autouse=True)
def loopback_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LOOPBACK_KEY_ENV, "loopback-placeholder")


@pytest.fixture
async def loopback() -> AsyncIterator[LoopbackProviders]:
    async with LoopbackProviders(
        workflow=parse_workflow(CONFIG_TEXT), seconds_per_char=SECONDS_PER_CHAR
    ) as server:
        yield server


@pytest.fixture
def workflow(loopback: LoopbackProviders) -> Workflow:
    return voice_workflow(loopback.base_url)


@pytest.fixture
def persistence(
    redis_client: Any, make_store: Callable[..., RedisSessionStore], workflow: Workflow
) -> Persistence:
    return Persistence(
        store=make_store(redis_client, key_prefix="frontdesk"),
        settings=workflow.config.state,
        caller_secret=TEST_CALLER_SECRET,
    )


@functools.lru_cache(maxsize=32)
def _speech(text: str) -> Clip:
    return spoken(text)


@pytest.fixture
def speech() -> Callable[[str], Clip]:
    """``speech("hi there")``: the words as caller audio (espeak-ng, cached per text)."""
    if not espeak_available():
        message = (
            "espeak-ng is not installed: the voice tests need it for caller speech "
            "(apt-get install espeak-ng)"
        )
        if os.environ.get("FRONTDESK_REQUIRE_ESPEAK") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return _speech
