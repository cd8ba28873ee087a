"""A small OpenAI-compatible chat-completions server on 127.0.0.1, for the real OpenAI plugin.

Tests point a profile's llm (``provider = "openai"``, ``base_url = server.base_url``) at it, so
every request goes through ``livekit-plugins-openai`` as in production. The server:

- answers ``GET /v1/models`` and streaming ``POST /v1/chat/completions`` (SSE chunks, tool
  calls streamed as ``delta.tool_calls`` with their arguments in pieces, a usage chunk,
  ``[DONE]``);
- decides each answer with a *responder* (request body → :class:`Answer`); the default,
  :func:`brain_responder`, is a cooperative model: it reads the request back into a LiveKit
  chat context and lets the offline brain decide, so a workflow behaves under the real client
  as it does offline;
- injects faults on demand: HTTP errors, hangs (the client's timeout fires), fixed latency;
- records every request body, so tests assert on what the model was sent.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from livekit.agents.llm import ChatContext, FunctionCall, FunctionCallOutput

from frontdesk.agents.offline_brain import OfflineBrain
from frontdesk.workflows.definition import Workflow


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    """A dict is sent as JSON; a string is sent as is (malformed arguments)."""


@dataclass(frozen=True)
class Answer:
    """One model response: text, tool calls, or both."""

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True)
class Fault:
    """What the next request gets instead of an answer."""

    status: int = 500
    hang: float = 0.0
    """> 0: answer nothing for this long (a timeout on the client's side)."""


Responder = Callable[[dict[str, Any]], Answer]


def tool_names(body: dict[str, Any]) -> list[str]:
    return [tool["function"]["name"] for tool in body.get("tools") or []]


def is_judge_request(body: dict[str, Any]) -> bool:
    return "check_intent" in tool_names(body)


def judge_input(body: dict[str, Any]) -> tuple[str, str]:
    """(intent, message) of a LiveKit judge request."""
    text = body["messages"][-1]["content"]
    if isinstance(text, list):
        text = " ".join(part.get("text", "") for part in text)
    intent = text.split("Intent:\n", 1)[1].split("\n\nMessage:\n", 1)[0]
    message = text.split("\n\nMessage:\n", 1)[1]
    return intent, message


def _content(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content or ""


def chat_context_of(body: dict[str, Any]) -> ChatContext:
    """The request's messages as a LiveKit chat context (what the model was shown).

    The chat-completions format has no error flag on tool results; a ``record_`` result that is
    not "Recorded …"/"Updated …" is read as the refusal it is, as a model would read it.
    """
    ctx = ChatContext.empty()
    names: dict[str, str] = {}
    for message in body.get("messages", []):
        role = message.get("role")
        if role in ("system", "developer"):
            ctx.add_message(role="system", content=_content(message))
        elif role == "user":
            ctx.add_message(role="user", content=_content(message))
        elif role == "assistant":
            if _content(message):
                ctx.add_message(role="assistant", content=_content(message))
            for call in message.get("tool_calls") or []:
                names[call["id"]] = call["function"]["name"]
                ctx.insert(
                    FunctionCall(
                        call_id=call["id"],
                        name=call["function"]["name"],
                        arguments=call["function"].get("arguments") or "{}",
                    )
                )
        elif role == "tool":
            name = names.get(message.get("tool_call_id", ""), "")
            output = _content(message)
            refused = name.startswith("record_") and not output.startswith(("Recorded", "Updated"))
            ctx.insert(
                FunctionCallOutput(
                    call_id=message.get("tool_call_id", ""),
                    name=name,
                    output=output,
                    is_error=refused,
                )
            )
    return ctx


def brain_responder(
    workflow: Workflow, *, judge: Callable[[str, str], bool] | None = None
) -> Responder:
    """A cooperative model: the offline brain's decision for what the request shows.

    Judge requests (LiveKit's ``check_intent``) are answered by ``judge(intent, message)``
    (default: every intent holds).
    """
    brain = OfflineBrain(workflow=workflow)

    def respond(body: dict[str, Any]) -> Answer:
        if is_judge_request(body):
            intent, message = judge_input(body)
            success = judge(intent, message) if judge is not None else True
            reason = "the message does it" if success else "the message does not do it"
            return Answer(
                tool_calls=(ToolCall("check_intent", {"success": success, "reason": reason}),)
            )
        ctx = chat_context_of(body)
        names = set() if body.get("tool_choice") == "none" else set(tool_names(body))
        decision = brain.decide(ctx, names)
        if decision.tool is not None:
            return Answer(tool_calls=(ToolCall(decision.tool, dict(decision.arguments or {})),))
        return Answer(text=decision.text)

    return respond


class LoopbackLLM:
    """The server. ``async with LoopbackLLM(responder) as server:`` then use ``server.base_url``."""

    def __init__(self, responder: Responder, *, latency: float = 0.0) -> None:
        self.responder = responder
        self.latency = latency
        """Seconds before the first chunk of every answer (a model's time to first token)."""
        self.requests: list[dict[str, Any]] = []
        self.request_times: list[float] = []
        self.faults: list[Fault] = []
        self.faults_served = 0
        self.models_requests = 0
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._ids = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/v1"

    def fail_next(self, count: int = 1, *, status: int = 500, hang: float = 0.0) -> None:
        self.faults.extend(Fault(status=status, hang=hang) for _ in range(count))

    def completions(self) -> list[dict[str, Any]]:
        """Chat requests that were answered (not faults, not judge requests)."""
        return [body for body in self.requests if not is_judge_request(body)]

    async def __aenter__(self) -> LoopbackLLM:
        app = web.Application()
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        sockets = getattr(site._server, "sockets", None)
        assert sockets
        self._port = sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _models(self, request: web.Request) -> web.Response:
        self.models_requests += 1
        return web.json_response(
            {"object": "list", "data": [{"id": "loopback", "object": "model"}]}
        )

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if self.faults:
            fault = self.faults.pop(0)
            self.faults_served += 1
            if fault.hang > 0:
                await asyncio.sleep(fault.hang)
            return web.json_response(
                {"error": {"message": "injected fault", "type": "server_error"}},
                status=fault.status,
            )
        self.requests.append(body)
        self.request_times.append(time.perf_counter())
        answer = self.responder(body)
        if self.latency:
            await asyncio.sleep(self.latency)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        self._ids += 1
        chunk_id = f"chatcmpl-{self._ids}"

        async def send(
            delta: dict[str, Any] | None, finish: str | None = None, **extra: Any
        ) -> None:
            payload: dict[str, Any] = {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": body.get("model", "loopback"),
                "choices": []
                if delta is None
                else [{"index": 0, "delta": delta, "finish_reason": finish}],
                **extra,
            }
            await response.write(f"data: {json.dumps(payload)}\n\n".encode())

        await send({"role": "assistant", "content": ""})
        if answer.text:
            words = answer.text.split(" ")
            half = max(1, len(words) // 2)
            for piece in (" ".join(words[:half]), " " + " ".join(words[half:])):
                if piece.strip():
                    await send({"content": piece})
        for index, call in enumerate(answer.tool_calls):
            arguments = (
                call.arguments if isinstance(call.arguments, str) else json.dumps(call.arguments)
            )
            call_id = f"call_{self._ids}_{index}"
            await send(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call_id,
                            "type": "function",
                            "function": {"name": call.name, "arguments": ""},
                        }
                    ]
                }
            )
            cut = len(arguments) // 2
            for piece in (arguments[:cut], arguments[cut:]):
                if piece:
                    await send({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        await send({}, "tool_calls" if answer.tool_calls else "stop")
        await send(None, usage={"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15})
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response
