"""Calls played in this process against a real topology, and what the store kept of them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from frontdesk.state import RedisSessionStore
from frontdesk.state.durability import with_durability
from frontdesk.state.redis_store import AsyncRedisClient
from frontdesk.workflows.definition import Workflow
from frontdesk.workflows.runtime import Call, Persistence, start_call
from tests.reliability.support import SCRIPT, STATE_SECRET, state_settings, user_texts

FLUSH_TIMEOUT = 40.0
"""A turn must be acknowledged within this, failovers included."""


def persistence_on(
    client: AsyncRedisClient, workflow: Workflow, *, owner: str = "scale-test", **overrides: Any
) -> Persistence:
    """What ``open_persistence`` builds on ``client`` (durability layer included)."""
    settings = state_settings(workflow, **overrides)
    store = RedisSessionStore.from_settings(
        settings, client=client, caller_secret=STATE_SECRET.encode()
    )
    return Persistence(
        store=with_durability(store, client, settings),
        settings=settings,
        caller_secret=STATE_SECRET.encode(),
        owner=owner,
    )


def call_lines(extra: int) -> list[str]:
    """The support → sales flow of the default config, then ``extra`` more distinct turns."""
    return [text for text, _ in SCRIPT] + [f"one more question, number {i}" for i in range(extra)]


@dataclass
class PlayedCall:
    caller: str
    lines: list[str]
    session_id: str = ""
    acked: list[str] = field(default_factory=list)
    unacked: list[str] = field(default_factory=list)
    final_agent: str = ""


async def play_call(
    workflow: Workflow,
    persistence: Persistence,
    played: PlayedCall,
    *,
    pause: float = 0.0,
    until: asyncio.Event | None = None,
) -> PlayedCall:
    """One caller's whole call; a turn counts as acknowledged once ``call.flush()`` says so.

    With ``until``, the caller keeps talking after ``played.lines`` until the event is set
    (so calls are live for the whole of a fault); the extra lines are added to ``played.lines``.
    """
    call: Call = await start_call(
        workflow=workflow, caller_identity=played.caller, persistence=persistence
    )
    played.session_id = call.session_id
    try:
        index = 0
        while index < len(played.lines) or (until is not None and not until.is_set()):
            if index == len(played.lines):
                played.lines.append(f"are you still there? ({index})")
            text = played.lines[index]
            index += 1
            await call.session.run(user_input=text)
            if await call.flush(FLUSH_TIMEOUT):
                played.acked.append(text)
            else:
                played.unacked.append(text)
            if pause:
                await asyncio.sleep(pause)
        played.final_agent = call.session.current_agent.id
    finally:
        await call.aclose("caller hung up")
    return played


async def stored_turns(store: Any, session_id: str) -> list[str]:
    state = await store.load(session_id)
    return user_texts(state.items)


def lost_and_duplicated(played: PlayedCall, stored: list[str]) -> tuple[int, int]:
    lost = sum(1 for text in played.acked if text not in stored)
    duplicated = len(stored) - len(set(stored))
    return lost, duplicated
