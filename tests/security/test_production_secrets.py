"""Production refuses weak secrets; identities are normalised and namespaced; secrets rotate
(issue 13, findings 2, 6 and 9's forget-caller)."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from typing import Any

import pytest

from frontdesk.errors import WorkerSetupError
from frontdesk.state import RedisSessionStore, caller_hash
from frontdesk.state.identity import namespaced_identity, normalise_phone_number
from frontdesk.workflows.definition import load_workflow
from frontdesk.workflows.runtime import Persistence, start_call
from frontdesk.workflows.worker import preflight
from tests.worker.conftest import LIVEKIT_KEYS

from .support import ROOT, SECRET, persistence, sensitive_workflow

REDIS = {"FRONTDESK_REDIS_URL": "redis://localhost:6379/0"}
GOOD_SECRET = {"FRONTDESK_STATE_SECRET": "0123456789abcdef0123456789abcdef"}
DATA_KEY = {"FRONTDESK_DATA_KEY": base64.b64encode(b"k" * 32).decode()}


def test_worker_start_refuses_the_development_secret() -> None:
    workflow = load_workflow(ROOT / "config.toml")
    for weak in ({}, {"FRONTDESK_STATE_SECRET": ""}, {"FRONTDESK_STATE_SECRET": "short"}):
        with pytest.raises(WorkerSetupError, match="needs FRONTDESK_STATE_SECRET"):
            preflight(workflow, "start", env={**LIVEKIT_KEYS, **REDIS, **weak})
    assert preflight(workflow, "start", env={**LIVEKIT_KEYS, **REDIS, **GOOD_SECRET, **DATA_KEY})
    preflight(workflow, "dev", env=LIVEKIT_KEYS)  # development modes still run


def test_worker_start_needs_the_data_key_when_fields_are_sensitive() -> None:
    workflow = sensitive_workflow()
    env = {**LIVEKIT_KEYS, **REDIS, **GOOD_SECRET}
    with pytest.raises(WorkerSetupError, match=r"FRONTDESK_DATA_KEY.*account_number"):
        preflight(workflow, "start", env=env)
    with pytest.raises(WorkerSetupError, match="FRONTDESK_DATA_KEY"):
        preflight(workflow, "start", env={**env, "FRONTDESK_DATA_KEY": "not-base64-32-bytes"})
    assert preflight(workflow, "start", env={**env, **DATA_KEY})


def test_frontdesk_worker_start_exits_two_without_the_secret() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_")}
    done = subprocess.run(
        [sys.executable, "-m", "frontdesk", "worker", "--config", str(ROOT / "config.toml"), "start"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**env, **LIVEKIT_KEYS, **REDIS},
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "FRONTDESK_STATE_SECRET" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("+1 (555) 123-0000", "sip:+15551230000"),
        ("+1.555.123.0000", "sip:+15551230000"),
        ("15551230000", "sip:+15551230000"),
        ("0015551230000", "sip:+15551230000"),
        ("sip:+15551230000@pbx.example.com", "sip:+15551230000"),
        ("tel:+15551230000", "sip:+15551230000"),
        ("sip_anonymous", "sip:sip_anonymous"),
    ],
)
def test_phone_numbers_are_normalised_to_e164(given: str, expected: str) -> None:
    assert namespaced_identity("sip", given) == expected


def test_web_and_phone_namespaces_never_meet() -> None:
    assert namespaced_identity("web", "+15551230000") == "web:+15551230000"
    assert caller_hash(namespaced_identity("web", "+15551230000"), SECRET) != caller_hash(
        namespaced_identity("sip", "+15551230000"), SECRET
    )
    assert normalise_phone_number("alice") is None


async def test_a_previous_secret_still_finds_callers_and_they_move_to_the_new_one(
    redis_client: Any,
) -> None:
    workflow = sensitive_workflow(extra_state='trust = "caller_id"')
    old, new = b"o" * 32, b"n" * 32

    def keyed(secret: bytes, previous: tuple[bytes, ...] = ()) -> Persistence:
        store = RedisSessionStore(
            redis_client, key_prefix="frontdesk", ttl=3600, lease_ttl=5, caller_secret=secret
        )
        base = persistence(store, redis_client, workflow)
        from dataclasses import replace

        return replace(base, caller_secret=secret, previous_secrets=previous)

    first = await start_call(
        workflow=workflow, caller_identity="+15551230000", persistence=keyed(old)
    )
    await first.session.run(user_input="hi, my internet is down")
    await first.aclose("caller dropped")

    lost = await start_call(
        workflow=workflow, caller_identity="+15551230000", persistence=keyed(new)
    )
    assert not lost.resumed  # without the previous secret the caller is not found
    await lost.aclose()
    await redis_client.delete(f"frontdesk:caller:{caller_hash('sip:+15551230000', new)}")
    await redis_client.delete(f"frontdesk:s:{{{lost.session_id}}}:meta")

    rotated = await start_call(
        workflow=workflow, caller_identity="+15551230000", persistence=keyed(new, (old,))
    )
    assert rotated.resumed and rotated.session_id == first.session_id
    await rotated.aclose("caller dropped")
    # re-indexed under the new secret: found without the old one from now on
    later = await start_call(
        workflow=workflow, caller_identity="+15551230000", persistence=keyed(new)
    )
    assert later.resumed and later.session_id == first.session_id
    await later.aclose()


def _frontdesk(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "frontdesk", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env={**os.environ, **env},
    )  # fmt: skip


async def test_forget_caller_normalises_the_number_and_says_when_it_found_nothing(
    redis_server: Any, redis_client: Any
) -> None:
    import asyncio

    workflow = load_workflow(ROOT / "config.toml")
    secret = GOOD_SECRET["FRONTDESK_STATE_SECRET"].encode()
    store = RedisSessionStore(
        redis_client, key_prefix="frontdesk", ttl=3600, lease_ttl=5, caller_secret=secret
    )
    p = Persistence(store=store, settings=workflow.config.state, caller_secret=secret)
    call = await start_call(workflow=workflow, caller_identity="+15551230000", persistence=p)
    await call.session.run(user_input="hi, my internet is down")
    await call.aclose()
    env = {"FRONTDESK_REDIS_URL": redis_server.url}
    wrong = await asyncio.to_thread(
        _frontdesk, "sessions", "forget-caller", "+1 555 123 0000",
        env={**env, "FRONTDESK_STATE_SECRET": "another-secret-0123456789abcdef"},
    )  # fmt: skip
    assert wrong.returncode == 0
    assert "found no session of that caller" in wrong.stderr
    assert "FRONTDESK_STATE_SECRET_PREVIOUS" in wrong.stderr
    assert "sip:+15551230000" in wrong.stderr
    done = await asyncio.to_thread(
        _frontdesk, "sessions", "forget-caller", "+1 555 123 0000", env={**env, **GOOD_SECRET}
    )
    assert "removed 1 session" in done.stdout, done.stdout + done.stderr
