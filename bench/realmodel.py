"""``realmodel``: a handoff turn against a model that takes L seconds per request.

The model is the loopback OpenAI-compatible server of the tests
(``tests/realmodel/loopback_llm.py``) with a fixed latency ``L`` before the first chunk of
every answer, driven through the real ``livekit-plugins-openai`` client. Both sides get the same
scripted decisions (a keyword → the transfer tool; a tool result → say it; else a fixed reply),
on ``bench/handoff_workflow.toml``, a handoff on every caller turn:

* **Frontdesk**: ``start_call`` on a loopback profile. The transfer tool returns the next agent
  bare; the route's ``say`` line is spoken verbatim by ``session.say`` while the new agent's
  first reply is generated: two model requests in series.
* **bare LiveKit** (:mod:`bench.bare_agents`, the baseline and Frontdesk before issue 12): the
  tool returns ``(agent, say)``, so LiveKit sends the line back to the old agent's model and
  speaks its answer, then the new agent replies: three requests in series.

Per turn: model requests, and the time from the caller's words to the route's line and to the
new agent's reply (when each is added to the conversation, i.e. spoken in text mode). The
targets compare with ``L`` as the client sees it: one plain request of the same plugin to the
same server, timed in the same run (the fake model's sleep plus HTTP and SSE parsing).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from livekit.agents import AgentSession
from livekit.agents.voice.events import ConversationItemAddedEvent

from frontdesk.workflows.definition import Workflow, parse_workflow
from frontdesk.workflows.providers.text_mode import build_text_profile
from frontdesk.workflows.runtime import start_call
from tests.realmodel.loopback_llm import Answer, LoopbackLLM, ToolCall

from .bare_agents import BareData, BareReceptionist
from .common import BenchContext, Target, close_call, fmt_ms, make_table, targets_table, write_json
from .scripted_llm import REPLY

WORKFLOW = Path(__file__).with_name("handoff_workflow.toml")
TO_SUPPORT = "hi, my internet is down"
TO_RECEPTION = "thanks, can you put me back to the front desk"
TRIGGERS = {"internet is down": "transfer_to_support", "front desk": "transfer_to_receptionist"}
SAY_LINES = ("Let me get you to support.", "I'll take you back to the front desk.")
KEY_ENV = "BENCH_LOOPBACK_KEY"
LATENCY = 1.0
"""L: seconds the fake model takes before it answers each request (a voice model's typical time
to first token; the client, LiveKit and the handoff add tens of milliseconds on top)."""


def scripted(body: dict[str, Any]) -> Answer:
    """The decisions of :class:`bench.scripted_llm.ScriptedLLM`, read from an OpenAI request."""
    tools = {tool["function"]["name"] for tool in body.get("tools") or []}
    if body.get("tool_choice") == "none":
        tools = set()
    last = body["messages"][-1] if body.get("messages") else {}
    if last.get("role") == "user":
        said = str(last.get("content", "")).lower()
        for keyword, tool in TRIGGERS.items():
            if keyword in said and tool in tools:
                return Answer(tool_calls=(ToolCall(tool),))
    if last.get("role") == "tool" and last.get("content"):
        return Answer(text=str(last["content"]))
    return Answer(text=REPLY)


@dataclass
class Side:
    label: str
    requests: list[int] = field(default_factory=list)
    to_say: list[float] = field(default_factory=list)
    to_reply: list[float] = field(default_factory=list)

    def median(self, values: list[float]) -> float:
        ordered = sorted(values)
        return ordered[len(ordered) // 2] if ordered else float("nan")

    def p99(self, values: list[float]) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else float("nan")

    def summary(self) -> dict[str, Any]:
        return {
            "turns": len(self.requests),
            "requests_per_turn_median": self.median([float(r) for r in self.requests]),
            "requests_per_turn_max": max(self.requests, default=0),
            "to_say_line_median_s": self.median(self.to_say),
            "to_say_line_p99_s": self.p99(self.to_say),
            "to_reply_median_s": self.median(self.to_reply),
            "to_reply_p99_s": self.p99(self.to_reply),
        }


def _workflow(base_url: str) -> Workflow:
    text = WORKFLOW.read_text()
    text += (
        "\n[providers.loopback]\n"
        f'llm = {{ provider = "openai", model = "bench", base_url = "{base_url}", '
        f'api_key_env = "{KEY_ENV}" }}\nllm_timeout = "10s"\nllm_retries = 0\n'
    )
    return parse_workflow(text, source=str(WORKFLOW))


async def _turns(side: Side, session: AgentSession[Any], server: LoopbackLLM, turns: int) -> None:
    spoken: list[tuple[float, str]] = []

    def on_item(event: ConversationItemAddedEvent) -> None:
        item = event.item
        if getattr(item, "role", None) == "assistant":
            spoken.append((time.perf_counter(), item.text_content or ""))  # type: ignore[union-attr]

    session.on("conversation_item_added", on_item)
    for index in range(turns):
        text = TO_SUPPORT if index % 2 == 0 else TO_RECEPTION
        spoken.clear()
        before = len(server.requests)
        start = time.perf_counter()
        await session.run(user_input=text)
        side.requests.append(len(server.requests) - before)
        say = next((at for at, line in spoken if line in SAY_LINES), None)
        reply = next((at for at, line in spoken if line == REPLY), None)
        if say is None or reply is None:
            raise RuntimeError(f"{side.label}: turn {index} did not say both lines: {spoken}")
        side.to_say.append(say - start)
        side.to_reply.append(reply - start)
    session.off("conversation_item_added", on_item)


async def _one_request(model: Any) -> float:
    """Seconds for one request of the plugin to the fake model: L as the client sees it."""
    from livekit.agents.llm import ChatContext

    chat_ctx = ChatContext.empty()
    chat_ctx.add_message(role="user", content="hello")
    start = time.perf_counter()
    async with model.chat(chat_ctx=chat_ctx) as stream:
        async for _ in stream:
            pass
    return time.perf_counter() - start


async def run(ctx: BenchContext) -> dict[str, Any]:
    calls, turns = (2, 4) if ctx.quick else (5, 6)
    os.environ.setdefault(KEY_ENV, "bench-dummy-key")
    frontdesk, bare = Side("Frontdesk (say verbatim)"), Side("bare LiveKit (say as tool reply)")
    direct: list[float] = []
    async with LoopbackLLM(scripted, latency=LATENCY) as server:
        workflow = _workflow(server.base_url)
        profile = build_text_profile(workflow, "loopback")
        try:
            with ctx.task(f"realmodel: handoff turns at L = {LATENCY:.1f} s", calls * 2) as task:
                for _ in range(calls):
                    for _ in range(2):
                        direct.append(await _one_request(profile.components.llm))
                    call = await start_call(workflow=workflow, **profile.start_kwargs())
                    await _turns(frontdesk, call.session, server, turns)
                    await close_call(call, "benchmark call done")
                    ctx.advance(task)
                    # None, not NOT_GIVEN: no STT/TTS/VAD (LiveKit would pick hosted defaults)
                    parts: dict[str, Any] = {
                        "llm": profile.components.llm,
                        "stt": None,
                        "tts": None,
                        "vad": None,
                    }
                    session = AgentSession[BareData](
                        userdata=BareData(), turn_handling={"turn_detection": None}, **parts
                    )
                    await session.start(BareReceptionist(workflow=workflow), capture_run=True)
                    await _turns(bare, session, server, turns)
                    await session.aclose()
                    ctx.advance(task)
        finally:
            await profile.aclose()

    fd, base = frontdesk.summary(), bare.summary()
    # L as the client sees it: the fake model's latency plus HTTP, SSE parsing and the plugin
    seen = sorted(direct)[len(direct) // 2]
    limit_say, limit_reply = 1.1 * seen, 2.1 * seen
    targets = [
        Target(
            "model requests in series per handoff turn",
            "2",
            f"{fd['requests_per_turn_max']} (bare LiveKit with a say line: "
            f"{base['requests_per_turn_max']})",
            fd["requests_per_turn_max"] == 2,
        ),
        Target(
            "caller's words → the route's say line",
            f"≤ 1.1 × L = {limit_say * 1000:.0f} ms (median; L = one request, {seen * 1000:.0f} ms)",
            f"{fd['to_say_line_median_s'] * 1000:.0f} ms = "
            f"{fd['to_say_line_median_s'] / seen:.2f} × L "
            f"(bare {base['to_say_line_median_s'] / seen:.2f} × L)",
            fd["to_say_line_median_s"] <= limit_say,
        ),
        Target(
            "caller's words → the new agent's reply",
            f"≤ 2.1 × L = {limit_reply * 1000:.0f} ms (median)",
            f"{fd['to_reply_median_s'] * 1000:.0f} ms = "
            f"{fd['to_reply_median_s'] / seen:.2f} × L "
            f"(bare {base['to_reply_median_s'] / seen:.2f} × L)",
            fd["to_reply_median_s"] <= limit_reply,
        ),
    ]
    rows = [
        [
            side.label,
            str(summary["turns"]),
            f"{summary['requests_per_turn_median']:.0f}",
            fmt_ms(summary["to_say_line_median_s"] * 1000),
            fmt_ms(summary["to_say_line_p99_s"] * 1000),
            fmt_ms(summary["to_reply_median_s"] * 1000),
            fmt_ms(summary["to_reply_p99_s"] * 1000),
        ]
        for side, summary in ((frontdesk, fd), (bare, base))
    ]
    ctx.console.print(
        make_table(
            f"realmodel: a handoff turn with the real OpenAI client, model latency L = "
            f"{LATENCY * 1000:.0f} ms per request",
            [
                "configuration",
                "turns",
                "requests/turn",
                "→ say line median ms",
                "p99",
                "→ reply median ms",
                "p99",
            ],
            rows,
        )
    )
    ctx.console.print(targets_table(targets))
    payload = {
        "latency_s": LATENCY,
        "one_request_median_s": seen,
        "calls": calls,
        "turns_per_call": turns,
        "frontdesk": fd,
        "bare_livekit": base,
        "targets": [target.as_json() for target in targets],
    }
    write_json(ctx, "realmodel", payload)
    return payload
