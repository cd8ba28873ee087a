"""What a resumed agent knows and who holds the call while it is idle: real Redis, real sessions.

A resumed agent gets the saved history cut like the handoff into it cut it (``last:N``), except
after a ``summary`` route, which resumes with the whole history (no model call on the reconnect
path). A tightened pattern drops a stored value, which the agent then asks for again. An idle
call keeps its lease, so a second worker claiming it learns it took a live call over.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from livekit.agents.llm import ChatContext

from frontdesk.agents.handoff import conversation_messages
from frontdesk.state import RedisSessionStore
from frontdesk.workflows.definition import Workflow, load_workflow, parse_workflow
from frontdesk.workflows.runtime import Call, Persistence, start_call

from .test_resume import ACCOUNT_ASK, CALLER, ROOT, _opening, _persistence


@pytest.fixture(scope="module")
def workflow() -> Workflow:
    return load_workflow(ROOT / "config.toml")


@pytest.fixture
def persistence(
    redis_client: Any, make_store: Callable[..., RedisSessionStore], workflow: Workflow
) -> Persistence:
    return _persistence(make_store(redis_client, key_prefix="frontdesk"), workflow)


SALES_TO_SUPPORT = 'context = "last:6"\nsay = "Let me get you to support."'


def variant(old: str, new: str) -> Workflow:
    text = (ROOT / "config.toml").read_text()
    assert text.count(old) == 1, old
    return parse_workflow(text.replace(old, new), source="variant.toml")


def spoken(ctx: ChatContext) -> list[tuple[str, str]]:
    return [(m.role, m.text_content or "") for m in conversation_messages(ctx)]


async def dropped_call(workflow: Workflow, persistence: Persistence, *lines: str) -> Call:
    call = await start_call(workflow=workflow, caller_identity=CALLER, persistence=persistence)
    for line in lines:
        await call.session.run(user_input=line)
    assert await call.flush(5.0)
    await call.aclose("caller dropped")
    return call


async def test_a_call_resumed_after_a_last_n_handoff_gives_the_agent_only_the_last_n_messages(
    persistence: Persistence,
) -> None:
    capped = variant(SALES_TO_SUPPORT, SALES_TO_SUPPORT.replace("last:6", "last:2"))
    first = await dropped_call(
        capped,
        persistence,
        "how much is a faster plan?",
        "it's 94103",
        "actually my internet is not working",
    )
    assert [(h.from_agent, h.to_agent) for h in first.userdata.handoff_trail][-1] == (
        "sales",
        "support",
    )
    second = await start_call(workflow=capped, caller_identity=CALLER, persistence=persistence)
    try:
        assert second.resumed and second.session.current_agent.id == "support"
        *stored, welcome = spoken(second.session.history)
        assert len(stored) == 9 and "welcome back" in welcome[1].lower()
        # the caller's request that led here, the last two messages, then the resume line
        trigger = ("user", "actually my internet is not working")
        assert spoken(second.session.current_agent.chat_ctx) == [trigger, *stored[-2:], welcome]
    finally:
        await second.aclose()


async def test_a_call_resumed_after_a_summary_handoff_gives_the_agent_the_whole_history(
    workflow: Workflow, persistence: Persistence
) -> None:
    await dropped_call(
        workflow,
        persistence,
        "my internet is down",
        "I need something else, the front desk please",  # support → receptionist is `summary`
    )
    second = await start_call(workflow=workflow, caller_identity=CALLER, persistence=persistence)
    try:
        assert second.resumed and second.session.current_agent.id == "receptionist"
        whole = spoken(second.session.history)
        known = spoken(second.session.current_agent.chat_ctx)
        assert known[: len(whole)] == whole
        assert ("user", "my internet is down") in known
    finally:
        await second.aclose()


async def test_a_value_failing_a_tightened_pattern_is_dropped_on_resume_and_asked_again(
    workflow: Workflow, persistence: Persistence
) -> None:
    await dropped_call(workflow, persistence, "my internet is down", "sure, it's AC-48213")
    tightened = variant("pattern = 'AC-\\d{5}'", "pattern = 'AC-\\d{6}'")
    second = await start_call(workflow=tightened, caller_identity=CALLER, persistence=persistence)
    try:
        assert second.resumed and second.session.current_agent.id == "support"
        assert second.userdata.fields == {}
        assert ACCOUNT_ASK in _opening(second).lower()
    finally:
        await second.aclose()


async def test_an_idle_call_keeps_its_lease_so_a_takeover_names_the_live_owner(
    workflow: Workflow, redis_client: Any, make_store: Callable[..., RedisSessionStore]
) -> None:
    lease_ttl = 0.6  # renewed every lease_ttl / 3 while the call is live
    persistence = _persistence(
        make_store(redis_client, key_prefix="frontdesk", lease_ttl=lease_ttl),
        workflow,
        lease_ttl=lease_ttl,
    )
    call = await start_call(workflow=workflow, caller_identity=CALLER, persistence=persistence)
    try:
        await call.session.run(user_input="my internet is down")
        assert await call.flush(5.0)
        await asyncio.sleep(lease_ttl * 4)  # nothing written: only the renewal keeps the lease
        other = make_store(redis_client, key_prefix="frontdesk", lease_ttl=lease_ttl)
        taken = await other.claim(call.session_id, owner="worker-b")
        assert taken.taken_from == persistence.owner
    finally:
        await call.aclose()


async def test_a_caller_who_drops_before_any_handoff_resumes_with_the_whole_history(
    workflow: Workflow, persistence: Persistence
) -> None:
    await dropped_call(workflow, persistence, "hello?")  # no route matches: still at reception
    second = await start_call(workflow=workflow, caller_identity=CALLER, persistence=persistence)
    try:
        assert second.resumed and second.session.current_agent.id == "receptionist"
        whole = spoken(second.session.history)
        assert spoken(second.session.current_agent.chat_ctx)[: len(whole)] == whole
        assert ("user", "hello?") in whole
    finally:
        await second.aclose()


async def test_a_closed_call_gives_its_lease_up_so_the_next_claim_takes_no_live_call(
    workflow: Workflow, persistence: Persistence, redis_client: Any, make_store: Any
) -> None:
    call = await dropped_call(workflow, persistence, "my internet is down")
    taken = await make_store(redis_client, key_prefix="frontdesk").claim(
        call.session_id, owner="worker-b"
    )
    assert taken.taken_from is None


async def test_a_flush_with_redis_down_gives_up_within_its_timeout(
    workflow: Workflow, fault_redis: Any, make_store: Any
) -> None:
    from frontdesk.state import connect_redis

    client = connect_redis(fault_redis.url)
    persistence = _persistence(make_store(client, key_prefix="frontdesk"), workflow)
    try:
        call = await start_call(workflow=workflow, caller_identity=CALLER, persistence=persistence)
        fault_redis.kill()
        await call.session.run(user_input="my internet is down")
        started = asyncio.get_running_loop().time()
        assert not await asyncio.wait_for(call.flush(0.5), 30)  # a flush that ignored it hangs
        assert asyncio.get_running_loop().time() - started < 5.0  # generous: the machine is shared
        fault_redis.restart()
        await call.aclose()
    finally:
        await client.aclose()
