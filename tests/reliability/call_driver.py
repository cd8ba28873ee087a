"""A Frontdesk worker process for the reliability tests, driven line by line over stdin/stdout.

The tests start it with ``sys.executable call_driver.py --redis-url URL [--config PATH]
[--owner NAME]`` (``FRONTDESK_STATE_SECRET`` in the environment) and SIGKILL it whenever they
like. It runs real calls with ``start_call`` and ``session.run`` on a real Redis, exactly as a
worker would, one call at a time.

Commands, one JSON object per line on stdin::

    {"op": "open", "caller": "+15550000001"}   start (or resume) that caller's call
    {"op": "say", "text": "..."}                one caller turn
    {"op": "close"}                             the caller hangs up (state kept for a resume)
    {"op": "exit"}

Answers, one line each on stdout, prefixed with ``@@`` (anything else on stdout is noise)::

    {"event": "ready", "pid": ...}
    {"event": "opened", "session_id": ..., "resumed": ..., "agent": ..., "reply": ...,
     "user_texts": [...], "data": {...}, "acked": true}
    {"event": "ack", "text": ..., "agent": ..., "reply": ..., "data": {...}}
    {"event": "unacked", ...}                   the turn ran but Redis did not acknowledge it
    {"event": "closed"}
    {"event": "error", "error": "..."}

``ack`` is printed only after ``await call.flush()`` returned True: everything of that turn is
acknowledged by Redis. That is the contract the crash test checks against.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from frontdesk.workflows.definition import Workflow, load_workflow
from frontdesk.workflows.runtime import (
    REDIS_URL_ENV,
    Call,
    Persistence,
    open_persistence,
    start_call,
)
from frontdesk.workflows.runtime import reply_of as simulate_reply_of

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "config.toml"
TURN_TIMEOUT = 30.0
FLUSH_TIMEOUT = 10.0


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write("@@" + json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def _reply_of(events: list[Any], agent: str) -> tuple[str, str]:
    reply = simulate_reply_of(events, agent)
    return reply.text, reply.agent or agent


def user_texts(call: Call) -> list[str]:
    return [
        item.text_content or ""
        for item in call.session.history.items
        if item.type == "message" and item.role == "user"
    ]


async def serve(args: argparse.Namespace) -> None:
    workflow = load_workflow(args.config)
    os.environ[REDIS_URL_ENV] = args.redis_url
    async with open_persistence(workflow, allow_embedded=False) as configured:
        await _serve(args, workflow, dataclasses.replace(configured, owner=args.owner))


async def _serve(args: argparse.Namespace, workflow: Workflow, persistence: Persistence) -> None:
    loop = asyncio.get_running_loop()
    call: Call | None = None
    emit("ready", pid=os.getpid())
    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            command = json.loads(line)
            op = command.get("op")
            try:
                if op == "open":
                    if call is not None:
                        await call.aclose("next call")
                    call = opened = await asyncio.wait_for(
                        start_call(
                            workflow=workflow,
                            caller_identity=command["caller"],
                            persistence=persistence,
                        ),
                        TURN_TIMEOUT,
                    )
                    events = list(opened.opening.events) if opened.opening is not None else []
                    reply, agent = _reply_of(events, opened.session.current_agent.id)
                    acked = await opened.flush(FLUSH_TIMEOUT)
                    emit(
                        "opened",
                        session_id=opened.session_id,
                        resumed=opened.resumed,
                        plan=opened.plan.kind if opened.plan is not None else None,
                        agent=opened.session.current_agent.id,
                        reply=reply,
                        user_texts=user_texts(opened),
                        data=dict(opened.userdata.fields),
                        acked=acked,
                    )
                elif op == "say":
                    assert call is not None, "say before open"
                    before = call.session.current_agent.id
                    run = await asyncio.wait_for(
                        call.session.run(user_input=command["text"]), TURN_TIMEOUT
                    )
                    reply, agent = _reply_of(list(run.events), before)
                    acked = await call.flush(FLUSH_TIMEOUT)
                    emit(
                        "ack" if acked else "unacked",
                        text=command["text"],
                        agent=call.session.current_agent.id,
                        speaker=agent,
                        reply=reply,
                        data=dict(call.userdata.fields),
                    )
                elif op == "close":
                    if call is not None:
                        await call.aclose("caller hung up")
                    call = None
                    emit("closed")
                elif op == "exit":
                    break
                else:
                    emit("error", error=f"unknown op {op!r}")
            except Exception as exc:
                emit("error", error=f"{type(exc).__name__}: {exc}")
    finally:
        if call is not None:
            await call.aclose("driver exiting")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--config", default=str(DEFAULT_CONFIG))
    parser.add_argument("--owner", default=f"driver-{os.getpid()}")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("livekit").setLevel(logging.ERROR)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
