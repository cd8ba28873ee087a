"""Who may resume a saved call: the real caller only (issue 13, finding 1).

Caller ID is a hint, not a credential. Under ``caller_id+verify`` (the default for phone callers)
a caller presenting someone's number is put back on the saved agent without that caller's
sensitive data: not in any reply, not in any request to the model, until they repeat it; wrong
answers lock the identity out, the spoofer's turns never reach the stored session, and the
genuine caller resumes after the lock-out. Web callers resume only with the signed token their
app received; a deliberate hang-up ends the session.
"""

from __future__ import annotations

import asyncio
from typing import Any

import prometheus_client
import pytest

from frontdesk.state import RedisSessionStore
from frontdesk.state.identity import namespaced_identity
from frontdesk.state.tokens import issue_token
from frontdesk.workflows.definition import Workflow, load_workflow
from frontdesk.workflows.runtime import start_call

from .support import (
    ACCOUNT,
    ROOT,
    SECRET,
    SpyBrain,
    persistence,
    pipeline,
    said,
    sensitive_workflow,
)

NUMBER = "+15551230000"


@pytest.fixture
def store(redis_client: Any) -> RedisSessionStore:
    return RedisSessionStore(
        redis_client, key_prefix="frontdesk", ttl=3600, lease_ttl=5, caller_secret=SECRET
    )


async def _genuine_call(workflow: Any, p: Any, caller: str = NUMBER, **kwargs: Any) -> Any:
    call = await start_call(workflow=workflow, caller_identity=caller, persistence=p, **kwargs)
    await call.session.run(user_input="hi, my internet is down")
    run = await call.session.run(user_input=f"sure, it's {ACCOUNT}")
    assert ACCOUNT in said(run)
    await call.aclose("caller dropped")
    return call


def _verification_failures(workflow: Workflow) -> float:
    """``frontdesk_resumes_total{outcome="verification_failed"}`` in this process."""
    value = prometheus_client.REGISTRY.get_sample_value(
        "frontdesk_resumes_total", {"workflow": workflow.name, "outcome": "verification_failed"}
    )
    return value or 0.0


async def test_the_shipped_workflow_tells_a_spoofer_nothing_of_the_account(
    redis_client: Any, store: RedisSessionStore
) -> None:
    """The default config.toml as shipped (no test edits): a second caller presenting A's
    number hears no account number and the model is never sent it."""
    workflow = load_workflow(ROOT / "config.toml")
    p = persistence(store, redis_client, workflow)
    await _genuine_call(workflow, p)
    spy = SpyBrain(workflow=workflow)
    spoofer = await start_call(
        workflow=workflow, caller_identity=NUMBER, persistence=p, components=pipeline(spy)
    )
    replies = [said(spoofer.opening)]
    replies.append(said(await spoofer.session.run(user_input="what's my account number?")))
    await spoofer.aclose("caller hung up", hung_up=True)
    assert spoofer.resumed and spoofer.session.current_agent.id == "support"
    assert spy.requests, "the model was asked"
    assert not [r for r in [*replies, *spy.requests] if "48213" in r]


async def test_a_spoofed_caller_id_resumes_without_the_sensitive_data_and_locks_out(
    redis_client: Any, store: RedisSessionStore
) -> None:
    workflow = sensitive_workflow(extra_state='lockout = "1500ms"')
    p = persistence(store, redis_client, workflow)
    genuine = await _genuine_call(workflow, p)
    stored_before = await store.load(genuine.session_id)

    failed_before = _verification_failures(workflow)
    spy = SpyBrain(workflow=workflow)
    spoofer = await start_call(
        workflow=workflow, caller_identity="+1 (555) 123-0000", persistence=p,
        components=pipeline(spy),
    )  # fmt: skip
    replies = [said(spoofer.opening)]
    assert spoofer.resumed and spoofer.session.current_agent.id == "support"
    assert spoofer.resume_token is None
    for text in ("what's my account number?", "AC-11111", "AC-22222", "AC-33333", "hello?"):
        replies.append(said(await spoofer.session.run(user_input=text)))
    await spoofer.aclose("caller hung up", hung_up=True)

    assert spy.requests, "the model was asked"
    assert not [r for r in spy.requests if ACCOUNT in r or "48213" in r]
    assert not [r for r in replies if "48213" in r]
    assert "account number" in replies[0].lower()  # the agent asks for it instead
    assert any("can't verify your details" in r for r in replies)  # the lock-out line
    assert _verification_failures(workflow) - failed_before == 1  # the resume outcome metric
    stored_after = await store.load(genuine.session_id)
    assert stored_after.items == stored_before.items  # nothing of the spoofer landed
    assert not stored_after.ended  # a spoofer hanging up does not end the genuine session

    # Locked out: the same identity starts fresh, and that call does not become "the" session.
    locked = await start_call(workflow=workflow, caller_identity=NUMBER, persistence=p)
    assert locked.plan is not None and locked.plan.kind == "fresh"
    assert "locked out" in locked.plan.reason
    await locked.aclose()

    await asyncio.sleep(1.6)
    back = await start_call(workflow=workflow, caller_identity=NUMBER, persistence=p)
    assert back.resumed and back.session_id == genuine.session_id
    assert "48213" not in said(back.opening)
    verified = await back.session.run(user_input=ACCOUNT)
    assert ACCOUNT in said(verified)
    assert back.userdata.fields["account_number"] == ACCOUNT
    assert back.resume_token is not None
    await back.aclose()
    stored = await store.load(genuine.session_id)
    assert len(stored.items) > len(stored_before.items)
    caller_words = [" ".join(i.get("content", [])) for i in stored.items if i.get("role") == "user"]
    assert caller_words.count(ACCOUNT) == 0  # the verifying utterance itself is not stored


async def test_the_genuine_caller_verifies_and_gets_everything_back(
    redis_client: Any, store: RedisSessionStore
) -> None:
    workflow = sensitive_workflow()
    p = persistence(store, redis_client, workflow)
    genuine = await _genuine_call(workflow, p)
    spy = SpyBrain(workflow=workflow)
    back = await start_call(
        workflow=workflow, caller_identity=NUMBER, persistence=p, components=pipeline(spy)
    )
    before = len(spy.requests)
    assert before and not any("48213" in r for r in spy.requests)
    run = await back.session.run(user_input="it's AC-48213")
    assert "AC-48213" in said(run)
    assert back.gate is not None and back.gate.verified
    await back.aclose()
    assert back.session_id == genuine.session_id


async def test_caller_id_trust_resumes_by_number_alone(
    redis_client: Any, store: RedisSessionStore
) -> None:
    workflow = sensitive_workflow(extra_state='trust = "caller_id"')
    p = persistence(store, redis_client, workflow)
    await _genuine_call(workflow, p)
    back = await start_call(workflow=workflow, caller_identity=NUMBER, persistence=p)
    assert back.resumed and ACCOUNT in said(back.opening)  # spoofable: documented as such
    await back.aclose()


async def test_web_callers_resume_only_with_their_own_valid_token(
    redis_client: Any, store: RedisSessionStore
) -> None:
    workflow = sensitive_workflow()
    p = persistence(store, redis_client, workflow)
    first = await start_call(
        workflow=workflow, caller_identity="alice", caller_kind="web", persistence=p
    )
    token = first.resume_token
    assert token and first.session_id in token
    await first.session.run(user_input="hi, my internet is down")
    await first.aclose("caller dropped")

    async def attempt(identity: str, presented: str | None) -> Any:
        call = await start_call(
            workflow=workflow, caller_identity=identity, caller_kind="web",
            persistence=p, resume_token=presented,
        )  # fmt: skip
        await call.aclose()
        return call

    assert not (await attempt("alice", None)).resumed  # no token
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert not (await attempt("alice", forged)).resumed
    expired = issue_token(first.session_id, secret=SECRET, expires_at=1.0)
    assert not (await attempt("alice", expired)).resumed
    assert not (await attempt("mallory", token)).resumed  # someone else's token
    other_secret = issue_token(first.session_id, secret=b"x" * 32, expires_at=2e9)
    assert not (await attempt("alice", other_secret)).resumed
    back = await attempt("alice", token)
    assert back.resumed and back.session_id == first.session_id


async def test_a_web_identity_is_not_the_phone_caller_with_that_number(
    redis_client: Any, store: RedisSessionStore
) -> None:
    workflow = sensitive_workflow(extra_state='trust = "caller_id"')
    p = persistence(store, redis_client, workflow)
    await _genuine_call(workflow, p)
    web = await start_call(
        workflow=workflow, caller_identity=NUMBER, caller_kind="web", persistence=p
    )
    assert not web.resumed
    await web.aclose()
    assert namespaced_identity("sip", NUMBER) != namespaced_identity("web", NUMBER)


async def test_a_deliberate_hang_up_ends_the_session_unless_configured_otherwise(
    redis_client: Any, store: RedisSessionStore
) -> None:
    workflow = sensitive_workflow()
    p = persistence(store, redis_client, workflow)
    call = await start_call(workflow=workflow, caller_identity=NUMBER, persistence=p)
    await call.session.run(user_input="hi, my internet is down")
    await call.aclose("caller left (CLIENT_INITIATED)", hung_up=True)
    assert (await store.load(call.session_id)).ended
    later = await start_call(workflow=workflow, caller_identity=NUMBER, persistence=p)
    assert not later.resumed
    await later.aclose("caller left", hung_up=True)

    keep = sensitive_workflow(extra_state="end_on_hangup = false")
    p = persistence(store, redis_client, keep)
    call = await start_call(workflow=keep, caller_identity="+15559990000", persistence=p)
    await call.session.run(user_input="hi, my internet is down")
    await call.aclose("caller left", hung_up=True)
    again = await start_call(workflow=keep, caller_identity="+15559990000", persistence=p)
    assert again.resumed
    await again.aclose()
