"""Caller identities are stored only as HMACs under a secret from the environment."""

from __future__ import annotations

import hashlib
import logging

import pytest

from frontdesk.state import caller_hash, caller_secret_from_env, identity
from frontdesk.state.identity import DEVELOPMENT_SECRET


def test_secret_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRONTDESK_STATE_SECRET", "a-long-random-production-secret")
    assert caller_secret_from_env() == b"a-long-random-production-secret"


def test_missing_secret_falls_back_loudly_to_the_development_secret(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("FRONTDESK_STATE_SECRET", raising=False)
    monkeypatch.setattr(identity, "_warned_development", False)
    with caplog.at_level(logging.WARNING, logger="frontdesk.state"):
        secret = caller_secret_from_env()
    assert secret == DEVELOPMENT_SECRET
    assert any(
        r.levelno == logging.WARNING and "DEVELOPMENT secret" in r.getMessage()
        for r in caplog.records
    )


def test_the_development_secret_warning_is_said_once_per_process(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("FRONTDESK_STATE_SECRET", raising=False)
    monkeypatch.setattr(identity, "_warned_development", False)
    with caplog.at_level(logging.WARNING, logger="frontdesk.state"):
        assert caller_secret_from_env(warn=False) == DEVELOPMENT_SECRET
        assert "DEVELOPMENT" not in caplog.text  # a private embedded Redis: nothing to say
        for _ in range(3):
            assert caller_secret_from_env() == DEVELOPMENT_SECRET
    assert caplog.text.count("DEVELOPMENT secret") == 1


def test_short_secret_is_accepted_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("FRONTDESK_STATE_SECRET", "short")
    with caplog.at_level(logging.WARNING, logger="frontdesk.state"):
        assert caller_secret_from_env() == b"short"
    assert "only 5 bytes" in caplog.text


def test_caller_hash_is_a_keyed_hmac_not_a_plain_hash() -> None:
    digest = caller_hash("+15551230001", b"secret-one")
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert digest == caller_hash("+15551230001", b"secret-one")
    assert digest != caller_hash("+15551230001", b"secret-two")
    assert digest != caller_hash("+15551230002", b"secret-one")
    assert digest != hashlib.sha256(b"+15551230001").hexdigest()
    assert "15551230001" not in digest


def test_empty_identity_or_secret_is_refused() -> None:
    with pytest.raises(ValueError):
        caller_hash("", b"secret")
    with pytest.raises(ValueError):
        caller_hash("+15551230001", b"")
