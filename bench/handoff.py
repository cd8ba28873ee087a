"""``handoff``: one handoff turn through Frontdesk vs the same handoff in bare LiveKit.

A handoff turn is ``session.run(user_input=...)``: the caller's words → the model calls the
transfer tool → the old agent speaks the transfer line → LiveKit hands off → the new agent
replies. Every turn of every call is a handoff (receptionist → support → receptionist → …), on
the workflow in ``bench/handoff_workflow.toml`` (the default workflow's two agents with "full"
context routes, i.e. what ``chat_ctx=self.chat_ctx`` does in bare LiveKit).

Configurations, interleaved call by call in the same process and event loop:

* **bare LiveKit**: :mod:`bench.bare_agents`, no persistence (the baseline);
* **Frontdesk, persistence off**: ``start_call(...)`` with the same scripted model;
* **Frontdesk, persistence on**: the same with the recorder writing to Redis; after each turn
  the bench waits (untimed) for Redis to acknowledge, as the seconds between real turns would,
  and reports that wait and the Redis round trips and bytes per turn;
* **Frontdesk, offline brain**: the offline profile's own model (``OfflineBrain``), persistence
  off, for reference (its rules cost more than the scripted model's).

Calls are ``turns`` long; each call starts fresh (untimed), so the history a turn works on grows
from 0 to ``turns`` and the figures are per turn over that range.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from livekit.agents import AgentSession
from livekit.agents.voice.run_result import RunResult

from frontdesk.agents.offline_brain import OfflineBrain
from frontdesk.agents.pipeline import Pipeline
from frontdesk.workflows.definition import Workflow, load_workflow
from frontdesk.workflows.runtime import Persistence, start_call

from .bare_agents import BareData, BareReceptionist
from .common import (
    BENCH_SECRET,
    BenchContext,
    GcWatch,
    Samples,
    Target,
    WireCounter,
    close_call,
    counting_client,
    cpu_line,
    fmt_bytes,
    fmt_ms,
    fmt_x,
    make_store,
    make_table,
    now_ns,
    ratio,
    targets_table,
    write_json,
)
from .scripted_llm import ScriptedLLM

WORKFLOW = Path(__file__).with_name("handoff_workflow.toml")
TO_SUPPORT = "hi, my internet is down"
TO_RECEPTION = "thanks, can you put me back to the front desk"
TRIGGERS = {"internet is down": "transfer_to_support", "front desk": "transfer_to_receptionist"}


@dataclass
class Config:
    key: str
    label: str
    samples: Samples = field(default_factory=Samples)
    flush: Samples = field(default_factory=Samples)
    requests: int = 0
    bytes: int = 0
    turns: int = 0
    handoffs: int = 0


class Driver:
    """Starts a call of one configuration and plays turns on it."""

    def __init__(self, ctx: BenchContext, workflow: Workflow) -> None:
        self.workflow = workflow
        self.scripted = ScriptedLLM(TRIGGERS)
        self.hung_closes = 0
        self.counter = WireCounter()
        self.client = counting_client(ctx.redis.url, self.counter)
        store = make_store(self.client, prefix="bench-handoff")
        self.persistence = Persistence(
            store=store, settings=workflow.config.state, caller_secret=BENCH_SECRET, owner="bench"
        )

    async def call(self, config: Config, turns: int, *, record: bool) -> None:
        if config.key == "bare":
            parts: dict[str, Any] = {"llm": self.scripted, "stt": None, "tts": None, "vad": None}
            session = AgentSession[BareData](
                userdata=BareData(), turn_handling={"turn_detection": None}, **parts
            )
            await session.start(BareReceptionist(workflow=self.workflow), capture_run=True)
            await self._turns(config, session, None, turns, record=record)
            await session.aclose()
            return
        brain = OfflineBrain(workflow=self.workflow) if config.key == "fd_brain" else self.scripted
        call = await start_call(
            workflow=self.workflow,
            components=Pipeline(llm=brain),
            persistence=self.persistence if config.key == "fd_on" else None,
        )
        flush = call.flush if config.key == "fd_on" else None
        await self._turns(config, call.session, flush, turns, record=record)
        if not await close_call(call, "benchmark call done"):
            self.hung_closes += 1

    async def _turns(
        self,
        config: Config,
        session: AgentSession[Any],
        flush: Callable[[], Awaitable[bool]] | None,
        turns: int,
        *,
        record: bool,
    ) -> None:
        if flush is not None:
            await flush()
        for index in range(turns):
            text = TO_SUPPORT if index % 2 == 0 else TO_RECEPTION
            wire = self.counter.snapshot()
            start = now_ns()
            result: RunResult[Any] = await session.run(user_input=text)
            elapsed = now_ns() - start
            handed = any(event.type == "agent_handoff" for event in result.events)
            waited = 0
            if flush is not None:
                before = now_ns()
                if not await flush():
                    raise RuntimeError("persistence did not acknowledge a turn")
                waited = now_ns() - before
            if not record:
                continue
            if not handed:
                raise RuntimeError(f"{config.label}: turn {index} ({text!r}) made no handoff")
            config.samples.add(elapsed)
            config.handoffs += 1
            config.turns += 1
            if flush is not None:
                config.flush.add(waited)
                after = self.counter.snapshot()
                config.requests += after[0] - wire[0]
                config.bytes += after[1] - wire[1]


async def run(ctx: BenchContext) -> dict[str, Any]:
    workflow = load_workflow(WORKFLOW)
    calls, turns = (3, 40) if ctx.quick else (10, 60)
    ctx.console.rule("[bold]handoff[/]: a handoff turn, Frontdesk vs bare LiveKit")
    driver = Driver(ctx, workflow)
    await driver.client.flushall()
    configs = [
        Config("bare", "bare LiveKit (scripted model)"),
        Config("fd_off", "Frontdesk, persistence off (scripted model)"),
        Config("fd_on", "Frontdesk, persistence on (scripted model)"),
        Config("fd_brain", "Frontdesk, persistence off (OfflineBrain)"),
    ]
    for config in configs:  # warm-up: imports, first-use caches, Lua scripts loaded
        await driver.call(config, 6, record=False)
    ctx.settle()
    cpu = ctx.cpu_monitor()
    gc_watch = GcWatch().start()
    with ctx.task("handoff", calls * len(configs)) as task:
        for _ in range(calls):
            for config in configs:
                await driver.call(config, turns, record=True)
                ctx.advance(task)
    cpu_used = cpu.stop()
    gc_watch.stop()
    await driver.client.flushall()
    await driver.client.aclose()

    base = configs[0].samples.median_ms
    rows = []
    for config in configs:
        s = config.samples
        per_turn = config.turns or 1
        rows.append(
            [
                config.label,
                f"{len(s):,}",
                fmt_ms(s.median_ms),
                fmt_ms(s.p99_ms),
                fmt_x(ratio(s.median_ms, base)),
                fmt_ms(config.flush.median_ms) if config.key == "fd_on" else "-",
                f"{config.requests / per_turn:.1f}" if config.key == "fd_on" else "-",
                fmt_bytes(config.bytes / per_turn) if config.key == "fd_on" else "-",
            ]
        )
    ctx.console.print(
        make_table(
            f"handoff: ms per handoff turn (calls of {turns} turns, every turn a handoff); "
            "× bare = median / bare median",
            [
                "configuration",
                "turns",
                "median",
                "p99",
                "× bare",
                "Redis ack wait (med)",
                "Redis round trips/turn",
                "bytes sent/turn",
            ],
            rows,
        )
    )
    cpu_line(ctx.console, cpu_used)
    ctx.console.print(f"[dim]{gc_watch.line()}[/]")
    off = ratio(configs[1].samples.median_ms, base)
    on = ratio(configs[2].samples.median_ms, base)
    trips = configs[2].requests / max(1, configs[2].turns)
    targets = [
        Target(
            "handoff overhead",
            "Frontdesk (persistence off) ≤ 1.1× bare LiveKit (medians)",
            f"{off:.2f}×",
            off <= 1.1,
            ""
            if off <= 1.1
            else f"{(off - 1.1) * base:.2f} ms per turn ({off / 1.1:.2f}× the target)",
        ),
        Target(
            "handoff with persistence",
            "reported (no target); ≤ 1.1× bare would be ideal",
            f"{on:.2f}× bare",
            True,
        ),
        Target(
            "round trips per turn (recorder)",
            "1 per caller turn (persist's target, through the live recorder)",
            f"{trips:.1f}",
            trips <= 1.0,
            "" if trips <= 1.0 else f"{trips - 1:.1f} extra round trips per turn",
        ),
    ]
    ctx.console.print(targets_table(targets))
    payload = {
        "description": "handoff turn through Frontdesk vs bare LiveKit",
        "settings": {"calls_per_config": calls, "turns_per_call": turns, "workflow": str(WORKFLOW)},
        "cpu": cpu_used,
        "gc": gc_watch.as_json(),
        "results": [
            {
                "configuration": c.key,
                "label": c.label,
                **c.samples.summary(),
                "median_over_bare": ratio(c.samples.median_ms, base),
                "redis_ack_wait_after_turn": c.flush.summary() if c.key == "fd_on" else None,
                "redis_round_trips_per_turn": c.requests / c.turns
                if c.key == "fd_on" and c.turns
                else None,
                "bytes_sent_per_turn": c.bytes / c.turns if c.key == "fd_on" and c.turns else None,
            }
            for c in configs
        ],
        "targets": [t.as_json() for t in targets],
        "hung_call_closes": driver.hung_closes,
        "notes": [
            "ratios are computed from medians",
            "bare and Frontdesk (scripted) use the same ScriptedLLM instance and the same lines",
            "persistence on: the Redis acknowledgement is awaited after each turn, untimed",
        ],
    }
    path = write_json(ctx, "handoff", payload)
    ctx.console.print(f"[dim]wrote {path}[/]")
    return payload
