"""Helpers of the flows tests: the offline brain keeping a log of the requests it was sent."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from livekit.agents import llm
from livekit.agents.llm import ChatContext

from frontdesk.agents.offline_brain import OfflineBrain, OfflineBrainStream
from frontdesk.agents.pipeline import Pipeline
from frontdesk.agents.prompt import read_call_context
from frontdesk.workflows.definition import Workflow
from frontdesk.workflows.runtime import Call, Persistence, start_call


@dataclass(frozen=True)
class Request:
    """One model request: the agent whose instructions it carried, and the tools it offered."""

    agent: str
    tools: tuple[str, ...]


class LoggingBrain(OfflineBrain):
    """The offline brain, noting every request (which agent asked, with which tools)."""

    def __init__(self, *, workflow: Workflow) -> None:
        super().__init__(workflow=workflow)
        self.requests: list[Request] = []

    def chat(
        self, *, chat_ctx: ChatContext, tools: list[llm.Tool] | None = None, **kwargs: Any
    ) -> OfflineBrainStream:
        agent = "?"
        for item in chat_ctx.items:
            if item.type == "message" and item.role == "system":
                context = read_call_context(item.text_content or "")
                agent = context.agent if context is not None else agent
        self.requests.append(Request(agent, tuple(getattr(t, "id", "") for t in tools or [])))
        return super().chat(chat_ctx=chat_ctx, tools=tools, **kwargs)


async def open_call(
    workflow: Workflow,
    *,
    caller: str | None = None,
    persistence: Persistence | None = None,
) -> tuple[Call, LoggingBrain]:
    brain = LoggingBrain(workflow=workflow)
    call = await start_call(
        workflow=workflow,
        caller_identity=caller,
        persistence=persistence,
        components=Pipeline(llm=brain),
    )
    return call, brain


def said(run: Any) -> list[str]:
    """The agent's lines of a run result, in order."""
    events = run.events if run is not None else []
    return [
        e.item.text_content or ""
        for e in events
        if e.type == "message" and e.item.role == "assistant"
    ]


def handoffs(run: Any) -> list[tuple[str | None, str]]:
    return [
        (e.item.old_agent_id, e.item.new_agent_id) for e in run.events if e.type == "agent_handoff"
    ]


def offered(call: Call) -> list[str]:
    """The tools the current agent offers the model now."""
    return [getattr(tool, "id", "") for tool in call.session.current_agent.tools]


async def say(call: Call, text: str) -> Any:
    return await asyncio.wait_for(call.session.run(user_input=text), 15)


def closed(call: Call) -> asyncio.Event:
    """Set once the call's AgentSession has closed."""
    event = asyncio.Event()
    call.session.on("close", lambda _: event.set())
    return event


async def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until ``condition()`` holds (generous: the machine may be loaded)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "the condition never held"
        await asyncio.sleep(0.02)
