"""Redis itself SIGKILLed and restarted from its append-only file, between turns and during them.

Two measurements per ``appendfsync`` policy:

* **Redis's own durability**: right after an acknowledged turn, kill -9 the server, restart it
  and read the session before the call writes again (the writer would otherwise heal a loss with
  a full rewrite). With ``always`` nothing acknowledged may be missing; with ``everysec`` the
  loss is measured and printed, not asserted. Measured here: usually none, but now and then one
  acknowledged write is missing after the restart (Redis 7 under ``everysec`` postpones the AOF
  ``write()`` while its background fsync is still running, yet replies to the client; a kill -9
  then drops the postponed buffer). The writer heals that with a full rewrite, which the end to
  end figures check.
* **End to end**: kills during a turn too; the call keeps answering while Redis is down and, once
  it is back, every turn is stored exactly once, in order.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import pytest

from frontdesk.state import EmbeddedRedis, connect_redis
from frontdesk.workflows.definition import Workflow
from frontdesk.workflows.runtime import start_call

from .support import SCRIPT, make_persistence, reply_of, user_texts

pytestmark = pytest.mark.reliability

CALLS = 5
TURN_TIMEOUT = 10.0
FLUSH_TIMEOUT = 20.0


def _outages(caplog: pytest.LogCaptureFixture) -> int:
    """Outages the session writer noticed (it logs each one once, when a write fails)."""
    return sum("Redis unavailable" in r.getMessage() for r in caplog.records)


async def _until(condition: Any, timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition() and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)


async def _restart(server: EmbeddedRedis) -> None:
    """kill -9, then start again on the same port and directory (AOF replay)."""
    await asyncio.to_thread(server.kill)
    await asyncio.to_thread(server.restart)


@pytest.mark.parametrize("appendfsync", ["always", "everysec"])
async def test_redis_kill_9_and_aof_restart_between_and_during_turns(
    appendfsync: str, start_redis: Any, workflow: Workflow, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="frontdesk.state")
    server: EmbeddedRedis = start_redis(appendfsync=appendfsync)
    client = connect_redis(server.url)
    persistence = make_persistence(client, workflow)
    store = persistence.store
    rng = random.Random(f"redis-restart-{appendfsync}")
    figures = {
        "turns": 0,
        "kills_between": 0,
        "kills_during": 0,
        "lost_on_restart": 0,
        "items_lost_on_restart": 0,
        "outages_during": 0,
    }
    call = None
    sessions: dict[str, list[str]] = {}
    try:
        for number in range(CALLS):
            caller = f"+1555300{number:04d}"
            call = await start_call(
                workflow=workflow, caller_identity=caller, persistence=persistence
            )
            assert await call.flush(FLUSH_TIMEOUT)
            acknowledged: list[str] = []
            for text, expected_agent in SCRIPT:
                before = call.session.current_agent.id
                figures["turns"] += 1
                if rng.random() < 0.5:
                    # During the turn: Redis dies as the turn starts and comes back only after
                    # the reply, so the turn's write is in flight while it is down (the writer
                    # must see an outage: counted below). The reply path must not wait for it.
                    figures["kills_during"] += 1
                    outages_before = _outages(caplog)
                    await asyncio.to_thread(server.kill)
                    task = asyncio.ensure_future(call.session.run(user_input=text))
                    result = await asyncio.wait_for(task, TURN_TIMEOUT)
                    await _until(lambda n=outages_before: _outages(caplog) > n, TURN_TIMEOUT)
                    figures["outages_during"] += int(_outages(caplog) > outages_before)
                    await asyncio.sleep(rng.uniform(0.0, 0.05))
                    await asyncio.to_thread(server.restart)
                else:
                    result = await asyncio.wait_for(call.session.run(user_input=text), TURN_TIMEOUT)
                reply, _ = reply_of(result.events, before)
                assert reply, f"no answer to {text!r}"
                assert call.session.current_agent.id == expected_agent
                assert await call.flush(FLUSH_TIMEOUT), f"turn {text!r} never acknowledged"
                acknowledged.append(text)
                if rng.random() < 0.5:
                    # Between turns: everything so far is acknowledged; crash, then look.
                    figures["kills_between"] += 1
                    await _restart(server)
                    acked_ids = [item.id for item in call.session.history.items]
                    stored = await store.load(call.session_id)
                    stored_ids = {item["id"] for item in stored.items}
                    said = user_texts(stored.items)
                    figures["lost_on_restart"] += sum(1 for t in acknowledged if t not in said)
                    figures["items_lost_on_restart"] += sum(
                        1 for item_id in acked_ids if item_id not in stored_ids
                    )
            sessions[call.session_id] = acknowledged
            await call.aclose()
            call = None

        outages = _outages(caplog)
        duplicated = lost = reordered = 0
        for session_id, acknowledged in sessions.items():
            stored = await store.load(session_id)
            said = user_texts(stored.items)
            ids = [item["id"] for item in stored.items]
            duplicated += len(said) - len(set(said)) + len(ids) - len(set(ids))
            lost += sum(1 for text in acknowledged if text not in said)
            reordered += int(said != acknowledged and sorted(said) == sorted(acknowledged))
            assert stored.caller_data == {"account_number": "AC-48213", "postcode": "94103"}
            assert stored.current_agent == "sales"
        print(
            f"\n[redis kill -9, appendfsync={appendfsync}] calls={CALLS} turns={figures['turns']} "
            f"kills_during_turns={figures['kills_during']} "
            f"kills_between_turns={figures['kills_between']} "
            f"acknowledged_turns_missing_right_after_restart={figures['lost_on_restart']} "
            f"acknowledged_items_missing_right_after_restart={figures['items_lost_on_restart']} "
            f"outages_seen_by_the_writer={outages} "
            f"kills_during_turns_seen_as_outages={figures['outages_during']} "
            f"lost_end_to_end={lost} duplicated={duplicated} reordered={reordered}"
        )
        assert figures["kills_between"] > 0 and figures["kills_during"] > 0
        # every kill during a turn landed on an in-flight write: the writer saw each outage
        assert figures["outages_during"] == figures["kills_during"], figures
        assert outages >= figures["kills_during"] > 0
        assert lost == duplicated == reordered == 0
        if appendfsync == "always":
            assert figures["lost_on_restart"] == figures["items_lost_on_restart"] == 0
    finally:
        if call is not None:
            await call.aclose()
        await client.aclose()
