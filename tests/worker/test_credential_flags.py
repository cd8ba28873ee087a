"""LiveKit's credential flags read as the variables they stand for, in both spellings."""

from __future__ import annotations

import pytest

from frontdesk.workflows.worker.command import _env_with_flags


@pytest.mark.parametrize(
    "argv",
    [
        ["start", "--url"],  # a flag given last, without its value
        ["start", "--url="],
        ["start", "--url", "--api-key", "k"],  # the next word is another flag, not a value
    ],
)
def test_a_credential_flag_without_a_value_sets_nothing(argv: list[str]) -> None:
    env = _env_with_flags(argv, {"LIVEKIT_URL": "wss://from-the-environment"})
    assert env["LIVEKIT_URL"] == "wss://from-the-environment"


def test_a_flag_overrides_the_environment_and_leaves_the_rest() -> None:
    env = _env_with_flags(["dev", "--api-key=k2"], {"LIVEKIT_API_KEY": "k1", "HOME": "/root"})
    assert env == {"LIVEKIT_API_KEY": "k2", "HOME": "/root"}


def test_a_flag_and_its_value_given_last_are_read() -> None:
    assert _env_with_flags(["start", "--url", "wss://x.livekit.cloud"], {}) == {
        "LIVEKIT_URL": "wss://x.livekit.cloud"
    }
