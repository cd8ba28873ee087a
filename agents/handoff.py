"""Handoffs: the ``transfer_to_<agent>`` tools, the context policies and the loop guard.

A handoff is LiveKit's own mechanism: the tool returns the next :class:`~livekit.agents.Agent`
(bare: no tool reply from the old agent, so a handoff turn is one transfer request plus the new
agent's reply), LiveKit runs the old agent's ``on_exit`` and the new one's ``on_enter``, which
speaks the route's ``say`` line verbatim while its first reply is generated. What this module
adds is *what the next agent knows*: the chat context cut by the route's policy, always ending
with the caller utterance that triggered the handoff, and the shared caller data (in its
instructions, whatever the policy); and that a handoff cannot be lost: the first transfer of a
model response wins, the others get a tool error the model can read.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from livekit.agents import (
    Agent,
    AgentSession,
    RunContext,
    StopResponse,
    ToolError,
    function_tool,
    llm,
)
from livekit.agents.llm import ChatContext, ChatMessage, RawFunctionTool

from frontdesk import telemetry
from frontdesk.agents.prompt import SUMMARY_PREFIX, fill_verbatim, summary_note, summary_request
from frontdesk.agents.userdata import CallerData
from frontdesk.state.models import HandoffEntry
from frontdesk.workflows.definition import ContextPolicy, Route, Workflow

logger = logging.getLogger(__name__)

SUMMARY_MAX_CHARS = 800
"""A summary longer than this is cut: it is a note for the next agent, not a transcript."""

BuildNext = Callable[[Route, ChatContext, CallerData], Agent]
"""Makes the agent a route leads to, given the context it inherits and the caller data."""


class TransferClaims:
    """At most one transfer per model response: the first ``transfer_to_`` call claims it.

    Tools of one response share LiveKit's speech handle and are started in the order the model
    sent them, so claiming before the first ``await`` makes "the first one wins" deterministic.
    """

    def __init__(self) -> None:
        self._claimed: dict[str, str] = {}

    def claim(self, response_id: str, to_agent: str) -> str | None:
        """None when this transfer goes ahead; else the agent an earlier one of it goes to."""
        winner = self._claimed.get(response_id)
        if winner is not None:
            return winner
        self._claimed[response_id] = to_agent
        if len(self._claimed) > 64:  # earlier responses are long done: keep the map small
            for key in list(self._claimed)[:-8]:
                del self._claimed[key]
        return None


def conversation_messages(chat_ctx: ChatContext) -> list[ChatMessage]:
    """The caller's and the agents' spoken messages, in order (no system text, no tools)."""
    return [
        item
        for item in chat_ctx.items
        if item.type == "message" and item.role in ("user", "assistant") and item.text_content
    ]


def last_caller_message(chat_ctx: ChatContext) -> ChatMessage | None:
    for item in reversed(chat_ctx.items):
        if item.type == "message" and item.role == "user":
            return item
    return None


def handoffs_since_caller_spoke(data: CallerData, history: ChatContext) -> int:
    """The loop guard's count: handoffs in the trail newer than the caller's latest utterance."""
    spoke = last_caller_message(history)
    since = spoke.created_at if spoke is not None else 0.0
    return sum(1 for handoff in data.handoff_trail if handoff.at >= since)


async def summarize(model: llm.LLM, chat_ctx: ChatContext, prompt: str | None = None) -> str:
    """A short summary of the call by ``model`` (the session's LLM or the offline brain)."""
    request = ChatContext.empty()
    request.add_message(role="system", content=summary_request(prompt))
    for message in conversation_messages(chat_ctx):
        request.add_message(role=message.role, content=message.text_content or "")
    text = ""
    async with model.chat(chat_ctx=request) as stream:
        async for chunk in stream:
            if chunk.delta and chunk.delta.content:
                text += chunk.delta.content
    text = " ".join(text.split())[:SUMMARY_MAX_CHARS]
    return text if text.startswith(SUMMARY_PREFIX) else SUMMARY_PREFIX + text


async def context_for_handoff(
    policy: ContextPolicy,
    history: ChatContext,
    *,
    summarizer: llm.LLM | None,
    summary_prompt: str | None = None,
) -> ChatContext:
    """The chat context the next agent starts with under ``policy``.

    ``history`` is the whole conversation so far (``session.history``). Whatever the policy, the
    result ends with the caller's latest utterance: the request the next agent must act on.
    """
    trigger = last_caller_message(history)
    if policy.kind == "full":
        inherited = history.copy(exclude_instructions=True, exclude_config_update=True)
    else:
        inherited = ChatContext.empty()
        if policy.kind == "last":
            for message in conversation_messages(history)[-policy.last :]:
                inherited.insert(message)
        elif policy.kind == "summary" and summarizer is not None:
            try:
                summary = await summarize(summarizer, history, summary_prompt)
            except Exception:  # a failing summary must not fail the handoff
                logger.exception("summary for a handoff failed; handing off without it")
            else:
                # a system note, dated just before the trigger (the context is ordered by
                # creation time): context for the next agent, never words it said itself
                at = trigger.created_at - 0.001 if trigger is not None else time.time()
                inherited.insert(
                    ChatMessage(role="system", content=[summary_note(summary)], created_at=at)
                )
    if trigger is not None and not any(item.id == trigger.id for item in inherited.items):
        inherited.insert(trigger)
    return inherited


def make_transfer_tool(
    *,
    workflow: Workflow,
    from_agent: str,
    route: Route,
    build_next: BuildNext,
    claims: TransferClaims | None = None,
    is_open: Callable[[CallerData], bool] | None = None,
    closed_message: Callable[[CallerData], str] | None = None,
) -> RawFunctionTool[Any, Any]:
    """The ``transfer_to_<route.to>`` tool of ``from_agent``.

    ``claims`` (shared by the agent's transfer tools) lets only the first transfer of a model
    response happen; the others raise a :class:`ToolError` saying so. ``is_open`` is the
    route's guard (``requires``, ``if``): a closed route is not offered to the model, and a call
    of it anyway gets ``closed_message`` as a tool error.
    """
    schema = {
        "name": route.tool_name,
        "description": f"Transfer the caller to the {route.to} agent. Use when: {route.when}",
        "parameters": {"type": "object", "properties": {}, "additionalProperties": False},
    }

    async def transfer(raw_arguments: dict[str, object], context: RunContext[CallerData]) -> Any:
        data = context.userdata
        winner = claims.claim(context.speech_handle.id, route.to) if claims else None
        if winner is not None:
            message = (
                f"Not done: this response already transfers the caller to {winner}, and only "
                f"one transfer per response happens. Do not call {route.tool_name} unless the "
                f"caller asks for {route.to} again."
            )
            logger.warning(
                "session %s: %s -> %s ignored: %s", data.session_id, from_agent, route.to, message
            )
            raise ToolError(message)
        if is_open is not None and not is_open(data):
            message = (
                closed_message(data)
                if closed_message
                else f"{route.tool_name} is not available now."
            )
            logger.info(
                "session %s: %s -> %s refused: %s", data.session_id, from_agent, route.to, message
            )
            raise ToolError(message)
        chat_ctx = await begin_handoff(
            workflow=workflow, from_agent=from_agent, route=route, session=context.session
        )
        if chat_ctx is None:
            raise StopResponse()  # the loop guard refused it and said the fallback line
        # bare: LiveKit hands off without asking the old agent's model for a tool reply; the
        # new agent speaks the route's `say` line itself (FlowAgent.on_enter)
        return build_next(route, chat_ctx, data)

    return function_tool(transfer, raw_schema=schema)


async def begin_handoff(
    *, workflow: Workflow, from_agent: str, route: Route, session: AgentSession[CallerData]
) -> ChatContext | None:
    """What every handoff does before the next agent exists, by a tool or an automatic step:
    the loop guard (refused: ``loop_fallback`` is said verbatim and None returned), the route's
    ``clear``, the trail entry, and the next agent's chat context under the route's policy."""
    data = session.userdata
    limit = workflow.config.workflow.max_handoffs_per_turn
    fallback = workflow.config.workflow.loop_fallback
    history = session.history
    recent = handoffs_since_caller_spoke(data, history)
    if recent >= limit:
        logger.warning(
            "session %s: loop guard refused %s -> %s after %d handoffs in one turn",
            data.session_id,
            from_agent,
            route.to,
            recent,
        )
        telemetry.handoff_refused(workflow.name, from_agent, route.to)
        # spoken verbatim; no tool reply, so the model does not add its own version
        session.say(fill_verbatim(fallback, data.fields) or fallback)
        return None
    if route.clear:
        data.fields = {name: v for name, v in data.fields.items() if name not in route.clear}
        logger.info(
            "session %s: %s -> %s clears %s",
            data.session_id,
            from_agent,
            route.to,
            ", ".join(route.clear),
        )
    data.pending_handoff = HandoffEntry(
        from_agent=from_agent, to_agent=route.to, reason=route.when, at=time.time()
    )
    summarizer = session.current_agent.llm or session.llm
    chat_ctx = await context_for_handoff(
        route.policy,
        history,
        summarizer=summarizer if isinstance(summarizer, llm.LLM) else None,
        summary_prompt=route.summary_prompt,
    )
    logger.info(
        "session %s: handoff %s -> %s (context %s, %d items)",
        data.session_id,
        from_agent,
        route.to,
        route.context,
        len(chat_ctx.items),
    )
    telemetry.handoff(workflow.name, data, from_agent, route, history)
    return chat_ctx
