"""A tiny scripted ``llm.LLM`` used by BOTH sides of the handoff benchmark.

It reads only what any agent framework gives a model (the chat items and the tool list), so the
same instance drives Frontdesk's ``FlowAgent``\\ s and the bare-LiveKit agents with identical
decisions and identical costs:

* the caller just spoke and their words contain a trigger → call the matching transfer tool
  (if the current agent has it);
* a tool just answered → say the tool's output (the transfer's spoken line);
* otherwise (after a handoff, a greeting request, anything else) → the fixed reply.

(Frontdesk's own ``OfflineBrain`` parses Frontdesk's call-context block from the instructions, so
it cannot drive bare agents; it is measured separately as the offline profile's model.)
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from livekit.agents import llm
from livekit.agents.llm import ChatChunk, ChatContext, ChoiceDelta, FunctionToolCall
from livekit.agents.types import (
    DEFAULT_API_CONNECT_OPTIONS,
    NOT_GIVEN,
    APIConnectOptions,
    NotGivenOr,
)

REPLY = "I'm checking the line now; there's a known outage in your area and it should be fixed within two hours."

_ids = itertools.count(1)


class ScriptedLLM(llm.LLM):
    """Keyword → transfer tool; tool output → spoken; else a fixed reply."""

    def __init__(self, triggers: dict[str, str], reply: str = REPLY) -> None:
        super().__init__()
        self._triggers = {keyword.lower(): tool for keyword, tool in triggers.items()}
        self._reply = reply

    @property
    def model(self) -> str:
        return "bench-scripted"

    @property
    def provider(self) -> str:
        return "bench"

    def chat(
        self,
        *,
        chat_ctx: ChatContext,
        tools: list[llm.Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        parallel_tool_calls: NotGivenOr[bool] = NOT_GIVEN,
        tool_choice: NotGivenOr[llm.ToolChoice] = NOT_GIVEN,
        extra_kwargs: NotGivenOr[dict[str, Any]] = NOT_GIVEN,
    ) -> ScriptedStream:
        names = {getattr(tool, "id", "") for tool in tools or []}
        items = chat_ctx.items
        last = items[-1] if items else None
        tool: str | None = None
        text = self._reply
        if last is not None and last.type == "message" and last.role == "user":
            said = (last.text_content or "").lower()
            tool = next(
                (name for key, name in self._triggers.items() if key in said and name in names),
                None,
            )
        elif last is not None and last.type == "function_call_output":
            text = last.output
        return ScriptedStream(
            self,
            chat_ctx=chat_ctx,
            tools=tools or [],
            conn_options=conn_options,
            tool=tool,
            text=text,
        )


class ScriptedStream(llm.LLMStream):
    def __init__(
        self,
        model: ScriptedLLM,
        *,
        chat_ctx: ChatContext,
        tools: list[llm.Tool],
        conn_options: APIConnectOptions,
        tool: str | None,
        text: str,
    ) -> None:
        super().__init__(model, chat_ctx=chat_ctx, tools=tools, conn_options=conn_options)
        self._tool = tool
        self._text = text

    async def _run(self) -> None:
        request = f"scripted-{next(_ids)}"
        if self._tool is not None:
            delta = ChoiceDelta(
                role="assistant",
                tool_calls=[
                    FunctionToolCall(
                        name=self._tool, arguments=json.dumps({}), call_id=f"call_{request}"
                    )
                ],
            )
        else:
            delta = ChoiceDelta(role="assistant", content=self._text)
        self._event_ch.send_nowait(ChatChunk(id=request, delta=delta))
