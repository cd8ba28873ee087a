"""``voice``: voice-to-voice latency and CPU per second of live audio, Frontdesk vs bare LiveKit.

Both sides run the whole voice path of :mod:`frontdesk.workflows.voice_harness`: caller speech
(``espeak-ng``) played in real time at 24 kHz → Silero's VAD → the OpenAI STT plugin → LiveKit's
VAD turn handling → the OpenAI LLM plugin → the OpenAI TTS plugin → the recorded speaker, with
every provider on the loopback server at fixed latencies: STT ``S``, LLM first token ``L``, TTS
first byte ``T``. The model is scripted the same way for both sides (a trigger phrase → the
transfer tool; a tool result → say it; otherwise one fixed reply), so they make the same
requests in the same order.

* **bare LiveKit**: :mod:`bench.bare_agents` (``Agent`` subclasses, ``@function_tool`` handoffs),
  the plugins constructed directly, an ``AgentSession`` with the harness's audio; its "resume"
  is a new session on support seeded with the first session's history (round-tripped through
  ``to_dict``/``from_dict``, as a saved copy would be);
* **Frontdesk**: ``start_voice_call`` on ``bench/handoff_workflow.toml`` with the loopback
  profile, persistence on (the bench's Redis); the resume is Frontdesk's own, from Redis.

Voice-to-voice is the caller's last speech frame → the first agent audio frame played. Each
iteration plays one call per side, interleaved: a handoff turn, a plain turn, a handoff back, a
handoff again, an interrupted turn (the caller talks over the reply: the figure is the end of
the barge-in → the answer's first audio), the caller drops; then the resume and its first turn.
CPU per second of audio is ``process_time`` over wall time across a call (the loopback server
runs in the same process and is included) and over a call where the caller is silent (VAD,
resampling and the session's own loop only).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from livekit.agents import AgentSession
from livekit.agents.llm import ChatContext

from frontdesk.agents.offline_brain import Decision
from frontdesk.workflows.definition import Workflow, parse_workflow
from frontdesk.workflows.runtime import Persistence
from frontdesk.workflows.voice_harness import (
    VOICE_SESSION_OPTIONS,
    AudioIO,
    Clip,
    espeak_available,
    silence,
    spoken,
    start_voice_call,
    wait_until_quiet,
)
from frontdesk.workflows.voice_loopback import (
    LOOPBACK_KEY_ENV,
    TTS_SAMPLE_RATE,
    LoopbackProviders,
    profile_toml,
)

from .bare_agents import BareData, BareReceptionist, BareSupport
from .common import (
    BENCH_SECRET,
    BenchContext,
    Target,
    cpu_line,
    make_store,
    make_table,
    targets_table,
    write_json,
)
from .scripted_llm import REPLY

WORKFLOW = Path(__file__).with_name("handoff_workflow.toml")
S, L, T = 0.100, 0.200, 0.100
"""Loopback latencies (seconds): STT answer, LLM first token, TTS first byte."""
SECONDS_PER_CHAR = 0.015
TRIGGERS = {"internet is down": "transfer_to_support", "front desk": "transfer_to_receptionist"}
CALLER = "+15550001111"
TIMEOUT = 30.0
KINDS = ("plain", "handoff", "resume", "interrupted")
LLM_TRIPS = {"plain": 1, "handoff": 2, "resume": 1, "interrupted": 1}
"""Model requests before the first audio of each turn kind (a handoff: the tool call, then the
transfer line, as LiveKit asks the model to speak a tool reply)."""


def scripted(chat_ctx: ChatContext, tools: set[str]) -> Decision:
    """The bench model: the rules of :class:`bench.scripted_llm.ScriptedLLM`, as a loopback policy."""
    last = chat_ctx.items[-1] if chat_ctx.items else None
    if last is not None and last.type == "message" and last.role == "user":
        said = (last.text_content or "").lower()
        for key, tool in TRIGGERS.items():
            if key in said and tool in tools:
                return Decision(tool=tool, arguments={})
    if last is not None and last.type == "function_call_output":
        return Decision(text=last.output)
    return Decision(text=REPLY)


@dataclass
class Side:
    key: str
    label: str
    latency: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    stop: list[float] = field(default_factory=list)
    """Barge-in start → the agent's audio stopped."""
    cpu_call: list[float] = field(default_factory=list)
    cpu_idle: list[float] = field(default_factory=list)


@dataclass
class Lines:
    to_support: Clip
    to_reception: Clip
    plain: Clip
    chatter: Clip
    barge_in: Clip


class Running:
    """One call of either side: its session, its audio and how to close it."""

    def __init__(self, session: AgentSession[Any], media: AudioIO, close: Any) -> None:
        self.session = session
        self.media = media
        self._close = close

    async def aclose(self) -> None:
        await self._close()


class Bench:
    def __init__(self, ctx: BenchContext, server: LoopbackProviders, vad: Any) -> None:
        self.ctx = ctx
        self.server = server
        self.vad = vad
        text = WORKFLOW.read_text() + "\n" + profile_toml(server.base_url)
        self.workflow: Workflow = parse_workflow(text, source=str(WORKFLOW))
        from redis.asyncio import Redis

        self.client = Redis.from_url(ctx.redis.url)
        self.persistence = Persistence(
            store=make_store(self.client, prefix="bench-voice"),
            settings=self.workflow.config.state,
            caller_secret=BENCH_SECRET,
            owner="bench",
        )
        self.caller_n = 0

    # ---- calls

    async def start(self, side: str, *, caller: str, history: ChatContext | None = None) -> Running:
        if side == "frontdesk":
            voice = await start_voice_call(
                self.workflow,
                profile="loopback",
                caller_identity=caller,
                persistence=self.persistence,
                vad=self.vad,
            )
            return Running(voice.session, voice.media, voice.aclose)
        from livekit.plugins import openai

        base, key = self.server.base_url, "bench"
        stt = openai.STT(model="whisper-1", base_url=base, api_key=key)
        model = openai.LLM(model="gpt-4o-mini", base_url=base, api_key=key)
        tts = openai.TTS(
            model="tts-1", voice="alloy", base_url=base, api_key=key, response_format="pcm"
        )
        options: dict[str, Any] = dict(VOICE_SESSION_OPTIONS)
        session = AgentSession[BareData](
            userdata=BareData(), vad=self.vad, stt=stt, llm=model, tts=tts, **options
        )
        media = AudioIO.create()
        media.attach(session)
        agent = (
            BareReceptionist(workflow=self.workflow)
            if history is None
            else BareSupport(workflow=self.workflow, chat_ctx=history)
        )
        await session.start(agent, capture_run=True)

        async def close() -> None:
            await session.aclose()
            await media.aclose()
            await stt.aclose()
            await model.aclose()
            await tts.aclose()

        return Running(session, media, close)

    async def turn(self, call: Running, clip: Clip, transcript: str) -> float:
        """The caller says ``clip``; seconds from its end to the first agent audio after it."""
        self.server.expect(transcript)
        played = await call.media.caller.say(clip)
        first = await self._first_audio_after(call, played.ended_at)
        await self._quiet(call)
        return first - played.ended_at

    async def interrupted_turn(self, call: Running, lines: Lines) -> tuple[float, float]:
        """Chatter → the reply starts → 0.4 s in, the caller barges in. (answer latency, stop)."""
        self.server.expect("hello there")
        played = await call.media.caller.say(lines.chatter)
        await self._first_audio_after(call, played.ended_at)
        speaker = call.media.speaker
        reply = next(s for s in reversed(speaker.segments) if s.started_at is not None)
        while reply.played < 0.4:
            await asyncio.sleep(0.005)
        self.server.expect("what is the status of my line")
        barge = await call.media.caller.say(lines.barge_in)
        first = await self._first_audio_after(call, barge.ended_at)
        await self._quiet(call)
        stop = (reply.ended_at or barge.started_at) - barge.started_at
        return first - barge.ended_at, stop

    async def _first_audio_after(self, call: Running, moment: float) -> float:
        deadline = time.perf_counter() + TIMEOUT
        while True:
            segment = call.media.speaker.first_audio_after(moment)
            if segment is not None and segment.started_at is not None:
                return segment.started_at
            if time.perf_counter() > deadline:
                raise TimeoutError("no agent audio after the caller spoke")
            await asyncio.sleep(0.002)

    async def _quiet(self, call: Running, settle: float = 0.25) -> None:
        await wait_until_quiet(call.session, call.media, TIMEOUT, settle=settle)

    # ---- one iteration of one side

    async def iteration(self, side: Side, lines: Lines) -> None:
        self.caller_n += 1
        caller = f"{CALLER}{self.caller_n}"
        cpu0, wall0 = time.process_time(), time.perf_counter()
        call = await self.start(side.key, caller=caller)
        await self._quiet(call)
        side.latency["handoff"].append(
            await self.turn(call, lines.to_support, "my internet is down")
        )
        side.latency["plain"].append(await self.turn(call, lines.plain, "is it fixed yet"))
        side.latency["handoff"].append(
            await self.turn(call, lines.to_reception, "put me back to the front desk")
        )
        side.latency["handoff"].append(
            await self.turn(call, lines.to_support, "my internet is down")
        )
        answer, stop = await self.interrupted_turn(call, lines)
        side.latency["interrupted"].append(answer)
        side.stop.append(stop)
        history = ChatContext.from_dict(call.session.history.to_dict(exclude_timestamp=False))
        call.media.caller.hang_up()
        await call.aclose()
        side.cpu_call.append((time.process_time() - cpu0) / (time.perf_counter() - wall0))

        again = await self.start(side.key, caller=caller, history=history)
        await self._quiet(again)
        side.latency["resume"].append(await self.turn(again, lines.plain, "is it fixed yet"))
        # the caller listens in silence: VAD, resampling and the session loop only
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await again.media.caller.say(silence(3.0 if self.ctx.quick else 5.0))
        side.cpu_idle.append((time.process_time() - cpu0) / (time.perf_counter() - wall0))
        await again.aclose()


def _med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _ms(value: float) -> str:
    return f"{value * 1000:.0f}"


async def run(ctx: BenchContext) -> dict[str, Any]:
    console = ctx.console
    console.rule("[bold]voice: voice-to-voice latency and CPU per second of audio")
    if not espeak_available():
        console.print(
            "[bold red on yellow] ⚠ voice benchmark SKIPPED: espeak-ng is not installed "
            "(apt-get install espeak-ng) [/]"
        )
        return {"skipped": "espeak-ng is not installed", "targets": []}
    os.environ.setdefault(LOOPBACK_KEY_ENV, "bench")
    from livekit.plugins import silero

    vad = silero.VAD.load()
    lines = Lines(
        to_support=spoken("hi, my internet is down"),
        to_reception=spoken("can you put me back to the front desk"),
        plain=spoken("is it fixed yet"),
        chatter=spoken("hello there"),
        barge_in=spoken("what is the status of my line"),
    )
    iterations = 1 if ctx.quick else 3
    sides = [Side("bare", "bare LiveKit"), Side("frontdesk", "Frontdesk (persistence on)")]
    async with LoopbackProviders(
        workflow=parse_workflow(WORKFLOW.read_text()),
        stt_latency=S,
        llm_latency=L,
        tts_latency=T,
        seconds_per_char=SECONDS_PER_CHAR,
        decide=scripted,
    ) as server:
        bench = Bench(ctx, server, vad)
        # warm-up: one untimed call per side (imports, first connections)
        warm = [Side("bare", ""), Side("frontdesk", "")]
        for side in warm:
            await bench.iteration(side, lines)
        ctx.settle()
        monitor = ctx.cpu_monitor()
        with ctx.task("voice calls", iterations * len(sides)) as task:
            for _ in range(iterations):
                for side in sides:
                    await bench.iteration(side, lines)
                    ctx.advance(task)
        cpu = monitor.stop()
        await bench.client.aclose()

    bare, fd = sides
    rows = []
    per_kind: dict[str, Any] = {}
    for kind in KINDS:
        b, f = _med(bare.latency[kind]), _med(fd.latency[kind])
        floor = S + LLM_TRIPS[kind] * L + T
        per_kind[kind] = {
            "bare_ms": [v * 1000 for v in bare.latency[kind]],
            "frontdesk_ms": [v * 1000 for v in fd.latency[kind]],
            "bare_median_ms": b * 1000,
            "frontdesk_median_ms": f * 1000,
            "providers_ms": floor * 1000,
            "overhead_vs_bare_ms": (f - b) * 1000,
            "ratio_vs_bare": f / b,
        }
        rows.append(
            [
                kind,
                str(len(fd.latency[kind])),
                f"{_ms(floor)}",
                f"{_ms(b)} (max {_ms(max(bare.latency[kind]))})",
                f"{_ms(f)} (max {_ms(max(fd.latency[kind]))})",
                f"{_ms(b - floor)}",
                f"{_ms(f - floor)}",
                f"{(f - b) * 1000:+.0f}",
                f"{f / b:.3f}×",
            ]
        )
    console.print(
        make_table(
            f"Voice-to-voice, ms (S={_ms(S)}, L={_ms(L)}, T={_ms(T)}; median over the samples)",
            [
                "turn",
                "samples/side",
                "providers (S+n·L+T)",
                "bare LiveKit",
                "Frontdesk",
                "bare − providers",
                "Frontdesk − providers",
                "Frontdesk − bare",
                "× bare",
            ],
            rows,
        )
    )
    cpu_rows = [
        [
            side.label,
            f"{_med(side.cpu_call) * 100:.1f}%",
            f"{_med(side.cpu_idle) * 100:.1f}%",
            f"{1 / _med(side.cpu_idle):.0f}" if _med(side.cpu_idle) > 0 else "-",
            f"{_ms(_med(side.stop))}",
        ]
        for side in sides
    ]
    console.print(
        make_table(
            "CPU per second of live audio (one call), and barge-in → agent silent",
            [
                "side",
                "whole call (incl. loopback server)",
                "caller silent",
                "silent calls / core",
                "stop ms",
            ],
            cpu_rows,
        )
    )
    cpu_line(console, cpu)

    handoff = per_kind["handoff"]
    targets = [
        Target(
            "voice handoff turn vs bare LiveKit",
            "≤ 1.05×",
            f"{handoff['ratio_vs_bare']:.3f}×",
            handoff["ratio_vs_bare"] <= 1.05,
            "" if handoff["ratio_vs_bare"] <= 1.05 else f"{handoff['ratio_vs_bare'] - 1.05:.3f}×",
        ),
        Target(
            "voice handoff turn overhead (Frontdesk − bare)",
            "≤ 20 ms",
            f"{handoff['overhead_vs_bare_ms']:.0f} ms",
            handoff["overhead_vs_bare_ms"] <= 20,
            ""
            if handoff["overhead_vs_bare_ms"] <= 20
            else f"{handoff['overhead_vs_bare_ms'] - 20:.0f} ms",
        ),
    ]
    console.print(targets_table(targets))
    payload: dict[str, Any] = {
        "latencies_s": {"stt": S, "llm_first_token": L, "tts_first_byte": T},
        "seconds_per_char": SECONDS_PER_CHAR,
        "tts_sample_rate": TTS_SAMPLE_RATE,
        "iterations": iterations,
        "turns": per_kind,
        "barge_in_stop_ms": {side.key: [v * 1000 for v in side.stop] for side in sides},
        "cpu_per_audio_second": {
            side.key: {"call": side.cpu_call, "silent": side.cpu_idle} for side in sides
        },
        "cpu": cpu,
        "targets": [t.as_json() for t in targets],
    }
    write_json(ctx, "voice", payload)
    return payload
