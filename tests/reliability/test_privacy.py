"""Privacy and secrets: what ends up in Redis and in logs, how long it stays, how it is erased.

* no raw caller identity in any key name, in the caller index, or anywhere else in Redis;
* every key has a TTL, and with a tiny ``ttl`` everything is gone soon after the call;
* ``frontdesk sessions forget-caller`` erases every trace of a caller (hash, session ids, the
  quarantined session too) and nothing of anyone else;
* secrets (a provider API key, ``FRONTDESK_STATE_SECRET``, the Redis password) appear in no log
  line at DEBUG, in no command output, and in nothing stored.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import subprocess
import sys
import time

import pytest

from frontdesk.errors import CorruptStateError
from frontdesk.state import caller_hash
from frontdesk.state.identity import namespaced_identity
from frontdesk.workflows.definition import Workflow
from frontdesk.workflows.runtime import Call, Persistence, open_persistence, start_call

from .support import (
    ROOT,
    SCRIPT,
    STATE_SECRET,
    StateRig,
    TlsAclRedis,
    dump_keyspace,
    make_persistence,
)

pytestmark = pytest.mark.reliability

IDENTITIES = [
    "+15557000001",
    "sip:+15557000002@pbx.example.com",
    "alice.smith@example.com",
    "+1 (555) 700-0003",
]


def _variants(identity: str) -> set[bytes]:
    digits = "".join(c for c in identity if c.isdigit())
    found = {identity.encode(), identity.lower().encode()}
    if len(digits) >= 7:
        found |= {digits.encode(), digits[-10:].encode()}
    return found


async def _full_call(workflow: Workflow, caller: str, persistence: Persistence, turns: int) -> Call:
    call = await start_call(workflow=workflow, caller_identity=caller, persistence=persistence)
    for text, _ in SCRIPT[:turns]:
        await call.session.run(user_input=text)
    assert await call.flush(10)
    return call


async def test_no_raw_caller_identity_in_any_key_name_or_value(
    rig: StateRig, workflow: Workflow, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("livekit", "livekit.agents", "frontdesk", "redis", "asyncio"):
        caplog.set_level(logging.DEBUG, logger=name)
    client = rig.client
    persistence = rig.persistence()
    for number, identity in enumerate(IDENTITIES):
        call = await _full_call(workflow, identity, persistence, turns=3 + number)
        await call.aclose()
        again = await start_call(
            workflow=workflow, caller_identity=identity, persistence=persistence
        )
        assert again.resumed
        await again.aclose()
    keyspace = await dump_keyspace(client)
    leaks = []
    index_keys = [key for key in keyspace if key.startswith(b"frontdesk:caller:")]
    for identity in IDENTITIES:
        for variant in _variants(identity):
            leaks += [(key, "key name") for key in keyspace if variant in key]
            leaks += [
                (key, "value")
                for key, (_, values, _) in keyspace.items()
                if any(variant in v for v in values)
            ]
        hashed = caller_hash(namespaced_identity("sip", identity), STATE_SECRET.encode())
        keyed = f"frontdesk:caller:{hashed}".encode()
        assert keyed in index_keys
        assert hashlib.sha256(identity.encode()).hexdigest().encode() not in keyed  # an HMAC
    logged = "\n".join(f"{r.getMessage()} {r.args!r} {r.__dict__!r}" for r in caplog.records)
    logged_leaks = [
        variant
        for identity in IDENTITIES
        for variant in _variants(identity)
        if variant.decode() in logged
    ]
    index_values = [v for key in index_keys for v in keyspace[key][1]]
    print(
        f"\n[identity scan] callers={len(IDENTITIES)} keys={len(keyspace)} "
        f"caller_index_keys={len(index_keys)} raw_identity_occurrences={len(leaks)} "
        f"log_records_at_debug={len(caplog.records)} raw_identities_in_logs={len(logged_leaks)}"
    )
    assert not logged_leaks, logged_leaks
    assert len(index_keys) == len(IDENTITIES)
    assert all(len(v) == 32 and all(c in b"0123456789abcdef" for c in v) for v in index_values)
    assert not leaks, leaks[:5]


async def test_every_key_has_a_ttl_and_a_tiny_ttl_expires_everything(
    rig: StateRig, workflow: Workflow
) -> None:
    client = rig.client
    ttl = 1.5
    persistence = rig.persistence(ttl=ttl, lease_ttl=1.0)
    live = await _full_call(workflow, IDENTITIES[0], persistence, turns=4)
    during = await dump_keyspace(client)
    quarantined = await _full_call(workflow, IDENTITIES[1], persistence, turns=2)
    await quarantined.aclose()
    await client.hset(f"frontdesk:s:{{{quarantined.session_id}}}:meta", "turns", b'"many"')
    with pytest.raises(CorruptStateError):
        await persistence.store.load(quarantined.session_id)
    await live.aclose()
    after = await dump_keyspace(client)
    started = time.monotonic()
    while (remaining := await dump_keyspace(client)) and time.monotonic() - started < ttl + 5:
        await asyncio.sleep(0.1)
    gone_after = time.monotonic() - started
    fresh = await start_call(
        workflow=workflow, caller_identity=IDENTITIES[0], persistence=persistence
    )
    await fresh.aclose()
    without_ttl = [k for k, (_, _, pttl) in {**during, **after}.items() if pttl <= 0]
    too_long = [k for k, (_, _, pttl) in {**during, **after}.items() if pttl > ttl * 1000]
    kinds = sorted(
        {
            k.split(b":")[1].decode() + (":" + k.split(b":")[-1].decode() if b"{" in k else "")
            for k in after
        }
    )
    print(
        f"\n[ttl] keys_during_call={len(during)} keys_after_calls={len(after)} kinds={kinds} "
        f"keys_without_ttl={len(without_ttl)} keys_over_ttl={len(too_long)} "
        f"all_gone_after_s={gone_after:.1f} remaining={len(remaining)}"
    )
    assert any(b":q:{" in k for k in after), "the quarantined keys are part of the check"
    assert not without_ttl and not too_long
    assert not remaining
    assert fresh.plan is not None and fresh.plan.kind == "fresh"


def _frontdesk(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "frontdesk", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )


async def test_forget_caller_erases_every_trace_of_that_caller_and_nothing_else(
    rig: StateRig, workflow: Workflow
) -> None:
    server = rig.server
    client = rig.client
    forgotten, kept = IDENTITIES[0], IDENTITIES[2]
    # resume_window = 0: every call of the caller is a new session
    persistence = rig.persistence(resume_window=0)
    session_ids: list[str] = []
    for turns in (2, 3, 1):
        call = await _full_call(workflow, forgotten, persistence, turns=turns)
        session_ids.append(call.session_id)
        await call.aclose()
    # The newest one is damaged: the next call quarantines it (its meta keeps the hash).
    await client.hset(f"frontdesk:s:{{{session_ids[-1]}}}:meta", "schema_version", b"9")
    call = await _full_call(workflow, forgotten, persistence, turns=1)
    session_ids.append(call.session_id)
    await call.aclose()
    other = await _full_call(workflow, kept, persistence, turns=3)
    await other.aclose()
    before = await dump_keyspace(client)
    assert any(b":q:{" in key for key in before)

    done = await asyncio.to_thread(
        _frontdesk,
        "sessions",
        "forget-caller",
        forgotten,
        env={"FRONTDESK_REDIS_URL": server.url, "FRONTDESK_STATE_SECRET": STATE_SECRET},
    )
    after = await dump_keyspace(client)
    back = await start_call(
        workflow=workflow, caller_identity=kept, persistence=make_persistence(client, workflow)
    )
    resumed = back.resumed and back.session_id == other.session_id
    await back.aclose()
    traces = [
        caller_hash(namespaced_identity("sip", forgotten), STATE_SECRET.encode()).encode(),
        *(s.encode() for s in session_ids),
    ]
    left = [
        key
        for key, (_, values, _) in after.items()
        if any(t in key or any(t in v for v in values) for t in traces)
    ]
    kept_keys = [k for k in before if other.session_id.encode() in k]
    print(
        f"\n[forget-caller] sessions_of_caller={len(session_ids)} (1 quarantined) "
        f"keys_before={len(before)} keys_after={len(after)} traces_left={len(left)} "
        f"other_callers_keys_kept={sum(k in after for k in kept_keys)}/{len(kept_keys)} "
        f"other_caller_resumes={resumed} cli_exit={done.returncode} cli_said={done.stdout.strip()!r}"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert not left, left
    assert all(k in after for k in kept_keys)
    assert resumed


SECRETS = {
    "OPENAI_API_KEY": "sk-proj-RELIABILITYtest0123456789abcdefSECRET",
    "DEEPGRAM_API_KEY": "dg-RELIABILITYtest0123456789SECRET",
}


async def test_secrets_appear_in_no_log_line_no_command_output_and_nothing_stored(
    tls_redis: TlsAclRedis,
    workflow: Workflow,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    url = tls_redis.url(query="?ssl_cert_reqs=none")
    monkeypatch.setenv("FRONTDESK_REDIS_URL", url)
    secrets = [*SECRETS.values(), STATE_SECRET, tls_redis.password]
    caplog.set_level(logging.DEBUG)
    for name in ("livekit", "livekit.agents", "frontdesk", "redis", "asyncio"):
        caplog.set_level(logging.DEBUG, logger=name)  # restored after the test

    async with open_persistence(workflow) as persistence:
        call = await _full_call(workflow, IDENTITIES[0], persistence, turns=len(SCRIPT))
        await call.aclose()
        again = await start_call(
            workflow=workflow, caller_identity=IDENTITIES[0], persistence=persistence
        )
        await again.aclose()
    # And failures, whose messages carry connection details: a closed port, a wrong password.
    for bad in (
        url.replace(str(tls_redis.port), "1"),
        tls_redis.url(password="wrong-" + tls_redis.password),
    ):
        monkeypatch.setenv("FRONTDESK_REDIS_URL", bad)
        async with open_persistence(workflow) as persistence:
            failed = await start_call(
                workflow=workflow, caller_identity=IDENTITIES[1], persistence=persistence
            )
            await failed.session.run(user_input="hello")
            await failed.aclose()

    logged = "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in caplog.records
    )
    with tls_redis.admin_sync() as admin:
        stored = b"\n".join(
            b" ".join([key, *(admin.hvals(key) if admin.type(key) == b"hash" else
                              admin.lrange(key, 0, -1) if admin.type(key) == b"list" else
                              admin.zrange(key, 0, -1) if admin.type(key) == b"zset" else
                              [admin.get(key) or b""])])
            for key in admin.keys("*")
        )  # fmt: skip
    env = {"FRONTDESK_REDIS_URL": url, "FRONTDESK_STATE_SECRET": STATE_SECRET, **SECRETS}
    outputs = [
        await asyncio.to_thread(_frontdesk, "providers", env=env),
        await asyncio.to_thread(_frontdesk, "-v", "sessions", "list", env=env),
        await asyncio.to_thread(
            _frontdesk, "-v", "sessions", "list",
            env={**env, "FRONTDESK_REDIS_URL": url.replace(str(tls_redis.port), "1")},
        ),
    ]  # fmt: skip
    printed = "\n".join(done.stdout + done.stderr for done in outputs)
    found = {
        "logs": [s for s in secrets if s in logged],
        "stored": [s for s in secrets if s.encode() in stored],
        "command_output": [s for s in secrets if s in printed],
    }
    print(
        f"\n[secrets] log_records_at_debug={len(caplog.records)} stored_bytes={len(stored)} "
        f"command_runs={len(outputs)} secrets_in_logs={len(found['logs'])} "
        f"secrets_stored={len(found['stored'])} secrets_in_command_output={len(found['command_output'])}"
    )
    assert "***" in logged, "the redacted Redis URL should have been logged"
    assert "Traceback" not in printed
    assert found == {"logs": [], "stored": [], "command_output": []}
