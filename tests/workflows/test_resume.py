"""Calls persisted to a real redis-server as they go, and callers who drop and come back.

The account number is not sensitive here: these are the resume mechanics (nothing asked again,
the history continues). A sensitive field withheld until the caller verifies is tests/security.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from frontdesk.state import EmbeddedRedis, RedisSessionStore, connect_redis
from frontdesk.workflows.definition import Workflow, parse_workflow
from frontdesk.workflows.runtime import Call, Persistence, start_call
from tests.conftest import TEST_CALLER_SECRET, config_without_sensitive_fields

ROOT = Path(__file__).resolve().parents[2]
CALLER = "+15551230000"
ACCOUNT_ASK = "could you read me your account number"


@pytest.fixture(scope="module")
def workflow() -> Workflow:
    return parse_workflow(config_without_sensitive_fields(), source="config.toml")


def _persistence(store: RedisSessionStore, workflow: Workflow, **settings: Any) -> Persistence:
    return Persistence(
        store=store,
        settings=workflow.config.state.model_copy(update=settings),
        caller_secret=TEST_CALLER_SECRET,
    )


@pytest.fixture
def persistence(
    redis_client: Any, make_store: Callable[..., RedisSessionStore], workflow: Workflow
) -> Persistence:
    return _persistence(make_store(redis_client, key_prefix="frontdesk"), workflow)


def _opening(call: Call) -> str:
    events = call.opening.events if call.opening is not None else []
    return " ".join(
        e.item.text_content for e in events if e.type == "message" and e.item.role == "assistant"
    )


def _reply(run: Any) -> str:
    return " ".join(
        e.item.text_content
        for e in run.events
        if e.type == "message" and e.item.role == "assistant"
    )


async def _support_call_with_account(workflow: Workflow, persistence: Persistence) -> Call:
    call = await start_call(workflow=workflow, caller_identity=CALLER, persistence=persistence)
    await call.session.run(user_input="hi, my internet is down")
    await call.session.run(user_input="sure, it's AC-48213")
    assert await call.flush(5.0)
    return call


async def test_every_turn_is_stored_as_it_happens(
    workflow: Workflow, persistence: Persistence
) -> None:
    call = await start_call(workflow=workflow, caller_identity=CALLER, persistence=persistence)
    try:
        await call.session.run(user_input="hi, my internet is down")
        assert await call.flush(5.0)
        stored = await persistence.store.load(call.session_id)
        assert stored.current_agent == "support"
        assert [item["id"] for item in stored.items] == [
            item.id for item in call.session.history.items
        ]
        assert [(h.from_agent, h.to_agent) for h in stored.handoff_trail] == [
            ("receptionist", "support")
        ]
        assert stored.turns == 1
        kinds = {item["type"] for item in stored.items}
        assert {"message", "function_call", "function_call_output", "agent_handoff"} <= kinds

        await call.session.run(user_input="sure, it's AC-48213")
        assert await call.flush(5.0)
        stored = await persistence.store.load(call.session_id)
        assert stored.caller_data == {"account_number": "AC-48213"}
        assert stored.turns == 2
        assert stored.greeted == ["receptionist", "support"]
    finally:
        await call.aclose()


async def test_support_does_not_reask_account_number_after_reconnect(
    workflow: Workflow, persistence: Persistence
) -> None:
    first = await _support_call_with_account(workflow, persistence)
    await first.aclose("caller dropped")

    second = await start_call(workflow=workflow, caller_identity=CALLER, persistence=persistence)
    try:
        assert second.resumed
        assert second.session_id == first.session_id
        assert second.session.current_agent.id == "support"
        opening = _opening(second).lower()
        assert "welcome back" in opening
        assert "ac-48213" in opening
        assert ACCOUNT_ASK not in opening
        assert "thanks for calling" not in opening
        assert second.userdata.fields == {"account_number": "AC-48213"}

        run = await second.session.run(user_input="so is it fixed yet?")
        assert ACCOUNT_ASK not in _reply(run).lower()
        said_before = [i.text_content for i in second.session.history.items if i.type == "message"]
        assert "hi, my internet is down" in said_before
    finally:
        await second.aclose()


async def test_resumed_call_keeps_appending_to_the_same_stored_history(
    workflow: Workflow, persistence: Persistence
) -> None:
    first = await _support_call_with_account(workflow, persistence)
    stored_before = len((await persistence.store.load(first.session_id)).items)
    await first.aclose()
    second = await start_call(workflow=workflow, caller_identity=CALLER, persistence=persistence)
    await second.session.run(user_input="thanks, bye")
    await second.aclose()
    stored = await persistence.store.load(first.session_id)
    ids = [item["id"] for item in stored.items]
    assert len(ids) == len(set(ids)), "an item was stored twice"
    assert len(ids) > stored_before
    user_lines = [
        i["content"][0] for i in stored.items if i["type"] == "message" and i["role"] == "user"
    ]
    assert user_lines == ["hi, my internet is down", "sure, it's AC-48213", "thanks, bye"]


async def test_caller_after_the_resume_window_starts_fresh(
    workflow: Workflow, redis_client: Any, make_store: Callable[..., RedisSessionStore]
) -> None:
    persistence = _persistence(
        make_store(redis_client, key_prefix="frontdesk"), workflow, resume_window=0.2
    )
    first = await _support_call_with_account(workflow, persistence)
    await first.aclose()
    await asyncio.sleep(0.4)
    second = await start_call(workflow=workflow, caller_identity=CALLER, persistence=persistence)
    try:
        assert not second.resumed
        assert second.session_id != first.session_id
        assert second.session.current_agent.id == "receptionist"
        assert "thanks for calling" in _opening(second).lower()
    finally:
        await second.aclose()


async def test_changed_workflow_without_the_saved_agent_restarts_at_start_keeping_caller_data(
    workflow: Workflow, persistence: Persistence
) -> None:
    first = await _support_call_with_account(workflow, persistence)
    await first.aclose()
    renamed = parse_workflow(
        config_without_sensitive_fields()
        .replace("[agents.support]", "[agents.helpdesk]")
        .replace("[[agents.support.handoffs]]", "[[agents.helpdesk.handoffs]]")
        .replace('to = "support"', 'to = "helpdesk"')
        .replace("[offline.agents.support", "[offline.agents.helpdesk")
        .replace("\nsupport = [", "\nhelpdesk = ["),
        source="renamed.toml",
    )
    second = await start_call(workflow=renamed, caller_identity=CALLER, persistence=persistence)
    try:
        assert second.plan is not None and second.plan.kind == "restart_at_start"
        assert "support" in second.plan.reason
        assert second.session.current_agent.id == "receptionist"
        assert second.userdata.fields == {"account_number": "AC-48213"}
        # only the caller data carries over: a new session, greeted anew, without the old history
        assert second.session_id != first.session_id
        assert "thanks for calling" in _opening(second).lower()
        said = [i.text_content for i in second.session.history.items if i.type == "message"]
        assert "hi, my internet is down" not in said
        run = await second.session.run(user_input="my internet is down again")
        assert second.session.current_agent.id == "helpdesk"
        assert ACCOUNT_ASK not in _reply(run).lower()
    finally:
        await second.aclose()


async def test_call_goes_on_when_redis_is_down_at_start_and_is_stored_once_it_returns(
    workflow: Workflow, fault_redis: EmbeddedRedis, make_store: Callable[..., RedisSessionStore]
) -> None:
    client = connect_redis(fault_redis.url)
    persistence = _persistence(make_store(client, key_prefix="frontdesk"), workflow)
    fault_redis.kill()
    try:
        call = await asyncio.wait_for(
            start_call(workflow=workflow, caller_identity=CALLER, persistence=persistence), 15
        )
        run = await asyncio.wait_for(call.session.run(user_input="my internet is down"), 15)
        assert "account number" in _reply(run).lower()
        fault_redis.restart()
        for _ in range(100):
            if call.recorder is not None and call.recorder.writer is not None:
                break
            await asyncio.sleep(0.1)
        assert await call.flush(10.0)
        stored = await persistence.store.load(call.session_id)
        assert stored.current_agent == "support"
        assert [i["id"] for i in stored.items] == [i.id for i in call.session.history.items]
        await call.aclose()
    finally:
        await client.aclose()


async def test_a_second_worker_taking_the_call_over_fences_out_the_first(
    workflow: Workflow,
    persistence: Persistence,
    redis_client: Any,
    make_store: Callable[..., RedisSessionStore],
) -> None:
    first = await _support_call_with_account(workflow, persistence)
    other_worker = Persistence(
        store=make_store(redis_client, key_prefix="frontdesk"),
        settings=persistence.settings,
        caller_secret=TEST_CALLER_SECRET,
        owner="worker-b",
    )
    second = await start_call(workflow=workflow, caller_identity=CALLER, persistence=other_worker)
    try:
        assert second.resumed
        await second.session.run(user_input="is it fixed?")
        assert await second.flush(5.0)
        # the stalled first worker wakes up and tries to write
        await first.session.run(user_input="STALE WRITE from the first worker")
        assert not await first.flush(2.0)
        stored = await persistence.store.load(second.session_id)
        texts = [
            i["content"][0] for i in stored.items if i["type"] == "message" and i["role"] == "user"
        ]
        assert "STALE WRITE from the first worker" not in texts
        assert "is it fixed?" in texts
    finally:
        await first.aclose()
        await second.aclose()


async def test_each_connection_leaves_a_call_record_with_its_metrics(
    workflow: Workflow, persistence: Persistence
) -> None:
    first = await _support_call_with_account(workflow, persistence)
    report = await first.aclose("caller dropped", metrics={"agents": {"support": {"llm": {}}}})
    assert report.saved
    second = await start_call(workflow=workflow, caller_identity=CALLER, persistence=persistence)
    await second.aclose("caller hung up")
    stored = await persistence.store.load(first.session_id)
    assert [(c.reason, c.resumed) for c in stored.calls] == [
        ("caller dropped", False),
        ("caller hung up", True),
    ]
    assert stored.calls[0].agents == ["receptionist", "support"]
    assert stored.calls[0].caller_turns == 2
    assert stored.calls[0].metrics == {"agents": {"support": {"llm": {}}}}
    assert stored.calls[1].started_at >= stored.calls[0].ended_at


async def test_a_turn_is_persisted_in_one_round_trip(
    workflow: Workflow, persistence: Persistence, redis_server: EmbeddedRedis
) -> None:
    call = await _support_call_with_account(workflow, persistence)
    watcher = connect_redis(redis_server.url)
    marker = connect_redis(redis_server.url)
    await marker.ping()  # its connection handshake happens before MONITOR starts
    sent: list[str] = []
    try:
        async with watcher.monitor() as monitor:
            await call.session.run(user_input="is it fixed yet?")
            assert await call.flush(5.0)
            await marker.echo("end-of-turn")
            while True:
                command = await asyncio.wait_for(monitor.next_command(), 5)
                if "end-of-turn" in command["command"]:
                    break
                if command["client_type"] != "lua":
                    sent.append(command["command"].split(" ")[0].upper())
    finally:
        await watcher.aclose()
        await marker.aclose()
        await call.aclose()
    assert sent == ["EVALSHA"]
