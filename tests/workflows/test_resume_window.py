"""A long call resumes on a window of its latest items; the rest stays stored JSON until read.

``[state.resume] context_items`` bounds what a resume decodes into LiveKit items (what the
resumed agent's model can see). The older items are not lost: the transcript and a full
rewrite of the session still hold every item, and an older item that is not a LiveKit item is
still caught (by the check that runs right after the first reply) and the session quarantined.
Real Redis, real sessions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from livekit.agents.llm import ChatContext
from redis.asyncio import Redis

from frontdesk.state import RedisSessionStore
from frontdesk.workflows.definition import Workflow, load_workflow
from frontdesk.workflows.runtime import (
    Call,
    Persistence,
    build_transcript,
    chat_items,
    open_state,
    start_call,
)

from .test_resume import CALLER, ROOT, _persistence

WINDOW = 12
CALLER_LINES = [
    "hi, my internet is down",
    "sure, it's AC-48213",
    *(f"is it fixed yet? this is my question number {n}" for n in range(3, 23)),
]


@pytest.fixture(scope="module")
def workflow() -> Workflow:
    return load_workflow(ROOT / "config.toml")


@pytest.fixture
def persistence(
    redis_client: Any, make_store: Callable[..., RedisSessionStore], workflow: Workflow
) -> Persistence:
    resume = workflow.config.state.resume.model_copy(
        update={"context_items": WINDOW, "trust": "caller_id"}
    )
    return _persistence(make_store(redis_client, key_prefix="frontdesk"), workflow, resume=resume)


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many stored items each decoding into LiveKit items took, in order."""
    counts: list[int] = []
    adapter = chat_items._adapter()

    class Counting:
        def validate_python(self, items: list[dict[str, Any]]) -> Any:
            counts.append(len(items))
            return adapter.validate_python(items)

    original = ChatContext.from_dict.__func__  # type: ignore[attr-defined]

    def from_dict(cls: type[ChatContext], data: dict[str, Any]) -> ChatContext:
        counts.append(len(data["items"]))
        result: ChatContext = original(cls, data)
        return result

    monkeypatch.setattr(chat_items, "_adapter", Counting)
    monkeypatch.setattr(ChatContext, "from_dict", classmethod(from_dict))  # (LiveKit's own)
    return counts


async def long_dropped_call(workflow: Workflow, persistence: Persistence) -> list[str]:
    """A 22-turn call on support that dropped; the ids of its stored items."""
    call = await start_call(workflow=workflow, caller_identity=CALLER, persistence=persistence)
    for line in CALLER_LINES:
        await call.session.run(user_input=line)
    assert await call.flush(5.0)
    await call.aclose("caller dropped")
    stored = await persistence.store.load(call.session_id)
    assert len(stored.items) > 3 * WINDOW
    return [item["id"] for item in stored.items]


def caller_lines(call: Call) -> list[str]:
    return [line.text for line in call.transcript().lines if line.role == "caller"]


async def test_a_long_call_resumes_with_only_its_latest_items_decoded(
    workflow: Workflow, persistence: Persistence, decoded: list[int]
) -> None:
    stored_ids = await long_dropped_call(workflow, persistence)
    decoded.clear()

    call = await start_call(workflow=workflow, caller_identity=CALLER, persistence=persistence)
    try:
        assert call.resumed and call.session.current_agent.id == "support"
        # before the first reply: the window, and nothing else, became LiveKit items
        assert sum(decoded) == WINDOW
        resumed_ids = [item.id for item in call.session.history.items]
        assert resumed_ids[:WINDOW] == stored_ids[-WINDOW:]
        model_sees = {
            item.id
            for item in call.session.current_agent.chat_ctx.items
            if not (item.type == "message" and item.role in ("system", "developer"))
        }
        assert model_sees <= set(resumed_ids)  # (besides the agent's own instructions)
        assert call.earlier is not None and call.earlier.count == len(stored_ids) - WINDOW

        # the older items are checked after the first reply, off the reply path
        assert await call.earlier.check()
        assert sum(decoded) == len(stored_ids)
    finally:
        await call.aclose("caller left")


async def test_the_transcript_and_a_full_rewrite_after_a_resume_hold_every_item(
    workflow: Workflow, persistence: Persistence, redis_client: Redis
) -> None:
    stored_ids = await long_dropped_call(workflow, persistence)
    call = await start_call(workflow=workflow, caller_identity=CALLER, persistence=persistence)
    try:
        await call.session.run(user_input="any news on the outage?")
        assert caller_lines(call) == [*CALLER_LINES, "any news on the outage?"]
        assert await call.flush(5.0)

        # the stored session expires under the call: the next write rewrites it in full
        store = persistence.store
        assert isinstance(store, RedisSessionStore)
        await redis_client.delete(*store.session_keys(call.session_id)[:3])
        await call.session.run(user_input="thanks, bye")
        assert await call.flush(5.0)

        rewritten = open_state(await store.load(call.session_id), workflow, persistence)
        ids = [item["id"] for item in rewritten.items]
        assert ids[: len(stored_ids)] == stored_ids
        assert ids[len(stored_ids) :] == [
            item.id for item in call.session.history.items if item.id not in stored_ids
        ]
        transcript = build_transcript(call.session_id, rewritten.items)
        caller_said = [line.text for line in transcript.lines if line.role == "caller"]
        assert caller_said == [*CALLER_LINES, "any news on the outage?", "thanks, bye"]
        assert rewritten.turns == len(CALLER_LINES) + 2
    finally:
        report = await call.aclose("caller left")
    assert report.caller_turns == len(CALLER_LINES) + 2


async def test_an_older_item_that_is_not_a_livekit_item_is_caught_after_the_first_reply(
    workflow: Workflow,
    persistence: Persistence,
    redis_client: Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    stored_ids = await long_dropped_call(workflow, persistence)
    store = persistence.store
    assert isinstance(store, RedisSessionStore)
    sid = (await store.list_sessions())[0].session_id
    snap_key = store.session_keys(sid)[2]
    snap = await redis_client.get(snap_key)
    # valid JSON, framed and counted right: only decoding it as a LiveKit item fails
    await redis_client.set(snap_key, snap.replace(b'"type":"message"', b'"type":"memo"', 1))

    with caplog.at_level(logging.WARNING):
        call = await start_call(workflow=workflow, caller_identity=CALLER, persistence=persistence)
        try:
            assert call.resumed  # the window decodes: the caller goes on where they were
            assert call.earlier is not None
            assert not await call.earlier.check()
            # quarantined for a human, as a load quarantines a session that does not decode
            assert await redis_client.exists(store.quarantine_keys(sid)[0])
            assert any("not LiveKit chat items" in r.getMessage() for r in caplog.records)

            # the call goes on and is stored anew: its window and what came after
            await call.session.run(user_input="are you still there?")
            assert await call.flush(5.0)
            stored = await store.load(sid)
            ids = [item["id"] for item in stored.items]
            assert ids[:WINDOW] == stored_ids[-WINDOW:]
            assert len(ids) < len(stored_ids)
        finally:
            await call.aclose("caller left")


async def test_a_line_taken_into_a_full_rewrite_before_it_was_captured_is_stored_once(
    workflow: Workflow, persistence: Persistence, redis_client: Redis
) -> None:
    store = persistence.store
    assert isinstance(store, RedisSessionStore)
    call = await start_call(workflow=workflow, caller_identity=CALLER, persistence=persistence)
    try:
        await call.session.run(user_input=CALLER_LINES[0])
        assert await call.flush(5.0)
        recorder = call.recorder
        assert recorder is not None

        # the stored session vanishes under the call: the next append fails and the writer
        # rewrites the session in full from the call's state ...
        await redis_client.delete(*store.session_keys(call.session_id)[:3])
        call.session.history.add_message(role="user", content="hello? are you there?")
        assert recorder.capture() == 1
        # ... which by then also holds a line the recorder has not captured yet
        call.session.history.add_message(role="user", content="is anyone there?")
        assert recorder.writer is not None and await recorder.writer.flush(5.0)
        assert recorder.capture() == 0  # taken in by the rewrite: not sent a second time
        await call.session.run(user_input="thanks, bye")
        assert await call.flush(5.0)

        stored = [item["id"] for item in (await store.load(call.session_id)).items]
        assert stored == [item.id for item in call.session.history.items]
    finally:
        await call.aclose("caller left")
