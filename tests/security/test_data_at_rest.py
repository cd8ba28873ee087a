"""Sensitive caller data at rest (issue 13, finding 3): encrypted wherever a copy is stored.

The account number is marked ``sensitive = true``. After a call that gives it, recorded it, read
it back in a reply and put it into the agent's instructions, a scan of every key Redis holds finds
no plaintext copy; the call still resumes with the value (decrypted with the key), a second key
(rotation) still opens what the first sealed, and without the key nothing opens.
"""

from __future__ import annotations

import base64
import json
import os
import re
from typing import Any

import pytest

from frontdesk.state import RedisSessionStore
from frontdesk.state.crypto import DataKeys, is_sealed, mask
from frontdesk.workflows.runtime import Persistence, start_call
from tests.reliability.support import dump_keyspace

from .support import ACCOUNT, SECRET, persistence, said, sensitive_workflow

NUMBER = "+15551230000"


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
def store(redis_client: Any) -> RedisSessionStore:
    return RedisSessionStore(
        redis_client, key_prefix="frontdesk", ttl=3600, lease_ttl=5, caller_secret=SECRET
    )


def _with_keys(p: Persistence, value: str) -> Persistence:
    from dataclasses import replace

    return replace(p, data_keys=DataKeys.parse(value))


async def test_no_plaintext_copy_of_a_sensitive_value_in_any_stored_key(
    redis_client: Any, store: RedisSessionStore
) -> None:
    workflow = sensitive_workflow(extra_state='trust = "caller_id"')
    first_key = _key()
    p = _with_keys(persistence(store, redis_client, workflow), first_key)
    call = await start_call(workflow=workflow, caller_identity=NUMBER, persistence=p)
    await call.session.run(user_input="hi, my internet is down")
    run = await call.session.run(user_input=f"sure, it's {ACCOUNT}")
    assert ACCOUNT in said(run)
    await call.session.run(user_input="how long will it take?")
    await call.aclose("caller dropped")

    keyspace = await dump_keyspace(redis_client)
    blob = b"\n".join(k + b" " + b" ".join(v) for k, (_, v, _) in keyspace.items())
    assert b"fdenc:v1:" in blob, "something was sealed"
    assert ACCOUNT.encode() not in blob
    assert b"48213" not in blob

    # The same session resumes with the value, also once the key is rotated (new one first).
    rotated = _with_keys(p, f"{_key()},{first_key}")
    back = await start_call(workflow=workflow, caller_identity=NUMBER, persistence=rotated)
    assert back.resumed and ACCOUNT in said(back.opening)
    assert back.userdata.fields["account_number"] == ACCOUNT
    await back.aclose()

    # Without the key nothing opens: the sealed value is not accepted as caller data.
    stranger = _with_keys(p, _key())
    blind = await start_call(workflow=workflow, caller_identity=NUMBER, persistence=stranger)
    assert "account_number" not in blind.userdata.fields
    assert ACCOUNT not in said(blind.opening)
    await blind.aclose()
    items = (await store.load(call.session_id)).items
    assert any(is_sealed(part) for item in items for part in item.get("content", []))


def test_masking_keeps_only_the_last_four() -> None:
    assert mask("AC-48213") == "****8213"
    assert mask("1234") == "****"


async def test_sessions_show_masks_and_export_decrypts_only_with_the_key(
    redis_server: Any, redis_client: Any, tmp_path: Any
) -> None:
    import asyncio
    import subprocess
    import sys

    from .support import ROOT

    config = tmp_path / "sensitive.toml"
    config.write_text((ROOT / "config.toml").read_text())  # its account number is sensitive
    key = _key()
    secret = "security-cli-secret-0123456789abcdef"
    workflow = sensitive_workflow(extra_state='trust = "caller_id"')
    store = RedisSessionStore(
        redis_client, key_prefix="frontdesk", ttl=3600, lease_ttl=5, caller_secret=secret.encode()
    )
    from dataclasses import replace

    p = replace(
        persistence(store, redis_client, workflow),
        caller_secret=secret.encode(),
        data_keys=DataKeys.parse(key),
    )
    call = await start_call(workflow=workflow, caller_identity=NUMBER, persistence=p)
    await call.session.run(user_input="hi, my internet is down")
    await call.session.run(user_input=f"sure, it's {ACCOUNT}")
    await call.aclose("caller dropped")

    def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_")}
        return subprocess.run(
            [sys.executable, "-m", "frontdesk", "sessions", *args, "--config", str(config)],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
            env={**base, "FRONTDESK_REDIS_URL": redis_server.url,
                 "FRONTDESK_STATE_SECRET": secret, "COLUMNS": "300", **env},
        )  # fmt: skip

    shown = await asyncio.to_thread(run, "show", call.session_id, FRONTDESK_DATA_KEY=key)
    assert shown.returncode == 0, shown.stderr
    assert "****8213" in shown.stdout and ACCOUNT not in shown.stdout
    sealed = await asyncio.to_thread(run, "export", call.session_id)
    assert sealed.returncode == 0 and ACCOUNT not in sealed.stdout
    assert "exported encrypted" in sealed.stderr
    opened = await asyncio.to_thread(run, "export", call.session_id, FRONTDESK_DATA_KEY=key)
    assert ACCOUNT in opened.stdout


def test_a_short_sensitive_pattern_seals_text_never_ids() -> None:
    """A CVV's ``\\d{3}`` matches the digits of ids and hashes too: those are never sealed (the
    session would be written under a ciphertext), the caller's words and data always are."""
    from frontdesk.state.crypto import Sealer

    cvv = re.compile(r"\d{3}")
    sealer = Sealer(
        DataKeys.parse(_key()),
        values=lambda: ["481"],
        finders=[lambda text: [m.span() for m in cvv.finditer(text)]],
    )
    state = {
        "session_id": "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
        "current_agent": "agent_007",
        "caller_data": {"name": "Room 212", "cvv": "481"},
        "items": [
            {"id": "item_123abc", "type": "message", "role": "user", "content": ["it's 481"]},
            {"id": "item_456def", "type": "function_call", "call_id": "call_789",
             "name": "record_cvv", "arguments": '{"cvv": "481"}'},
        ],
    }  # fmt: skip
    sealed = sealer.seal(state, context="s")
    assert sealed["session_id"] == state["session_id"]
    assert sealed["current_agent"] == "agent_007"
    assert [(i["id"], i["type"]) for i in sealed["items"]] == [
        ("item_123abc", "message"),
        ("item_456def", "function_call"),
    ]
    assert sealed["items"][1]["call_id"] == "call_789"
    assert "481" not in json.dumps(sealed) and "212" not in json.dumps(sealed)
    assert sealer.open(sealed, context="s") == state
