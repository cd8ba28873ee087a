"""Calls through Redis over TLS (``rediss://``) as an ACL user limited to ``frontdesk:*``.

The server speaks TLS only (a throwaway CA made with openssl), its ``default`` user is off, and
the ``frontdesk`` user holds only the key pattern ``~frontdesk:*`` and the commands the store
needs (``support.STORE_COMMANDS``, read off state/lua/ and state/). A whole call, its resume,
listing and forgetting run through it without one ACL denial; anything outside the prefix or
the command list is refused.
"""

from __future__ import annotations

from typing import Any

import pytest
from redis.exceptions import NoPermissionError

from frontdesk.errors import StateError, StateUnavailableError
from frontdesk.state import RedisSessionStore, connect_redis
from frontdesk.state.identity import namespaced_identity
from frontdesk.workflows.definition import Workflow
from frontdesk.workflows.runtime import open_persistence, start_call

from .support import ACCOUNT_ASK, SCRIPT, STATE_SECRET, TlsAclRedis, make_persistence, reply_of

pytestmark = pytest.mark.reliability

CALLER = "+15558000001"


async def _call_and_resume(workflow: Workflow, persistence: Any) -> tuple[str, str]:
    call = await start_call(workflow=workflow, caller_identity=CALLER, persistence=persistence)
    try:
        for text, _ in SCRIPT[:3]:
            await call.session.run(user_input=text)
        assert await call.flush(10)
    finally:
        await call.aclose()
    again = await start_call(workflow=workflow, caller_identity=CALLER, persistence=persistence)
    try:
        assert again.resumed and again.session_id == call.session_id
        reply, _ = reply_of(list(again.opening.events) if again.opening else [], "support")
        assert ACCOUNT_ASK not in reply and "AC-48213" in reply
        return call.session_id, again.session.current_agent.id
    finally:
        await again.aclose()


async def test_call_over_tls_as_a_prefix_limited_acl_user_resumes_and_nothing_is_denied(
    tls_redis: TlsAclRedis, workflow: Workflow
) -> None:
    client = connect_redis(tls_redis.url(), ssl_ca_certs=str(tls_redis.certs["ca"]))
    try:
        persistence = make_persistence(client, workflow)
        store = persistence.store
        session_id, agent = await _call_and_resume(workflow, persistence)
        assert agent == "support"
        assert [s.session_id for s in await store.list_sessions()] == [session_id]
        assert await store.forget_caller(namespaced_identity("sip", CALLER)) == 1

        with tls_redis.admin_sync() as admin:
            denials = admin.acl_log()
            keys = sorted(k.decode() for k in admin.keys("*"))
        assert denials == [], f"the store needed a command or key the ACL refused: {denials}"
        assert all(key.startswith("frontdesk:") for key in keys), keys

        # Outside the prefix, or outside the command list: refused.
        refused = 0
        for attempt in (
            client.set("other:key", "x"),
            client.get("secrets:payroll"),
            client.register_script("return redis.call('GET', KEYS[1])")(keys=["other:script-key"]),
            client.keys("*"),
            client.flushall(),
            client.config_get("*"),
            client.execute_command("ACL", "LIST"),
            client.script_flush(),
        ):
            with pytest.raises(NoPermissionError):
                await attempt
            refused += 1
        # The store itself, given another prefix, cannot write either.
        other = RedisSessionStore(client, key_prefix="other", caller_secret=STATE_SECRET.encode())
        with pytest.raises(StateError):
            await other.claim("session-1", owner="worker")
        with tls_redis.admin_sync() as admin:
            denied = {entry["object"] for entry in admin.acl_log()}
        print(
            f"\n[TLS + ACL] call_and_resume=ok acl_denials_during_call=0 "
            f"refused_outside_prefix_or_commands={refused + 1} denied_objects={sorted(denied)}"
        )
    finally:
        await client.aclose()


async def test_plaintext_and_wrong_credentials_are_refused_without_leaking_the_password(
    tls_redis: TlsAclRedis, workflow: Workflow
) -> None:
    plain = connect_redis(tls_redis.url().replace("rediss://", "redis://"))
    wrong = connect_redis(
        tls_redis.url(password="not-the-password"), ssl_ca_certs=str(tls_redis.certs["ca"])
    )
    unverified = connect_redis(tls_redis.url())  # rediss:// with the system CAs: self-made CA
    try:
        for client in (plain, wrong, unverified):
            store = make_persistence(client, workflow).store
            with pytest.raises(StateError) as caught:
                await store.ping()
            assert tls_redis.password not in str(caught.value)
            assert "not-the-password" not in str(caught.value)
            assert isinstance(caught.value, StateUnavailableError | StateError)
    finally:
        for client in (plain, wrong, unverified):
            await client.aclose()


async def test_open_persistence_takes_a_rediss_url_from_the_environment(
    tls_redis: TlsAclRedis, workflow: Workflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRONTDESK_REDIS_URL", tls_redis.url(query="?ssl_cert_reqs=none"))
    async with open_persistence(workflow) as persistence:
        session_id, agent = await _call_and_resume(workflow, persistence)
    assert agent == "support"
    with tls_redis.admin_sync() as admin:
        assert admin.exists(f"frontdesk:s:{{{session_id}}}:meta")
        assert admin.acl_log() == []
