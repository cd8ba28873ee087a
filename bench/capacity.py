"""``capacity``: N concurrent text sessions in one process, each playing the demo call.

For each N, a fresh child process (``python -m bench.capacity --child``; a fresh process so one
level's freed memory cannot hide the next level's growth) imports Frontdesk, warms up with one
call, collects and freezes the garbage collector's heap as the worker's ``prewarm`` does, then
runs N callers concurrently on the default workflow with persistence on (the bench's
redis-server), ``vad=None`` and no turn detector (``start_call``'s offline profile):

1. **paced phase**: each caller plays ``workflows/runtime/demo_scenario.toml`` (triage → handoff to
   support → a refused value → account recorded → drop → reconnect and resume → handoff to
   sales → postcode), pausing a random *think time* before each step, starts staggered over one
   think time. Turn latency = ``session.run(user_input=...)``; reconnects (``start_call`` that
   resumes) are timed apart.
2. **all N calls live**: RSS of the process and, per session, ``MEMORY USAGE`` of its keys
   (``P:s:{SID}:meta|items|snap|fence|lease`` and the caller index ``P:caller:H``), plus the
   server's ``used_memory`` growth.
3. **saturated burst**: every caller takes ``burst`` more handoff turns back to back; completed
   turns / wall time is the process's throughput ceiling.

RSS per session = (RSS with N calls live − RSS after warm-up) / N.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

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
    make_store,
    make_table,
    now_ns,
    rss_bytes,
    targets_table,
    write_json,
)

LEVELS_FULL = (50, 100, 200, 400)
LEVELS_QUICK = (50, 100)
BURST_LINES = ("front desk please", "my internet is down", "front desk please", "my bill is wrong")
CHILD_TIMEOUT = 600.0
CLOSE_TIMEOUT = 20.0
"""A call's ``aclose`` taking longer than this counts as hung (see common.close_call)."""
FLUSH_TIMEOUT = 10.0
"""How long the barrier waits for every live session's writes to be acknowledged."""
POOL_FOR_EXTRA_ROW = 4
"""The extra row's Redis pool: this many connections per session."""


@dataclass
class LevelSettings:
    sessions: int
    think_min: float
    think_max: float
    burst: int
    url: str
    seed: int = 5
    max_connections: int | None = None
    """None: the client exactly as ``connect_redis`` builds it (redis-py's default pool)."""


# --------------------------------------------------------------------------- the child


class _LogTally(logging.Handler):
    """Counts Frontdesk's warnings by kind while a level runs (they must not be silent)."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.kinds: dict[str, int] = {}
        self.examples: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "Too many connections" in message:
            kind = "redis pool exhausted (MaxConnectionsError)"
        elif "unreachable" in message or "unavailable" in message:
            kind = "redis unavailable"
        else:
            kind = f"{record.name}: {message[:60]}"
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        self.examples.setdefault(kind, message[:300])


@dataclass
class Tally:
    turns: Samples = field(default_factory=Samples)
    starts: Samples = field(default_factory=Samples)
    resumes: Samples = field(default_factory=Samples)
    burst_turns: int = 0
    hung_closes: int = 0
    wrong_agent: int = 0
    not_resumed: int = 0
    errors: list[str] = field(default_factory=list)


async def _child(settings: LevelSettings) -> dict[str, Any]:
    from frontdesk.workflows.definition import load_workflow
    from frontdesk.workflows.runtime import (
        DEMO_SCENARIO,
        Call,
        Persistence,
        load_scenario,
        start_call,
    )

    workflow = load_workflow()
    scenario = load_scenario(DEMO_SCENARIO)
    counter = WireCounter()
    pool: dict[str, Any] = {}
    if settings.max_connections is not None:
        pool["max_connections"] = settings.max_connections
    client = counting_client(settings.url, counter, **pool)
    store = make_store(client, prefix="bench-cap")
    persistence = Persistence(
        store=store, settings=workflow.config.state, caller_secret=BENCH_SECRET, owner="bench"
    )
    monitor = Redis.from_url(settings.url)
    rng = random.Random(settings.seed)
    tally = Tally()
    log_tally = _LogTally()
    logging.getLogger("frontdesk").addHandler(log_tally)

    def think() -> float:
        return rng.uniform(settings.think_min, settings.think_max)

    # warm-up call (imports, caches, Lua scripts), then settle the heap like the worker's prewarm
    warm = await start_call(
        workflow=workflow, caller_identity="+15559990000", persistence=persistence
    )
    for turn in scenario.turn:
        if turn.say:
            await warm.session.run(user_input=turn.say)
    await close_call(warm, "warm-up done", CLOSE_TIMEOUT)
    await monitor.flushall()
    gc.collect()
    gc.freeze()
    rss_base = rss_bytes()
    redis_base = int((await monitor.info("memory"))["used_memory"])
    cpu_start = time.process_time()
    gc_watch = GcWatch().start()

    n = settings.sessions
    live: dict[int, Call] = {}
    reached = asyncio.Event()
    release = asyncio.Event()
    burst_go = asyncio.Event()
    arrived = 0
    finished = 0
    paced_turns = 0

    async def caller(index: int) -> None:
        nonlocal arrived, finished, paced_turns
        identity = f"+1555{index:07d}"
        await asyncio.sleep(rng.uniform(0, settings.think_max))
        started = now_ns()
        call: Call | None = await start_call(
            workflow=workflow, caller_identity=identity, persistence=persistence
        )
        tally.starts.add(now_ns() - started)
        for turn in scenario.turn:
            await asyncio.sleep(think())
            if turn.event == "disconnect":
                assert call is not None
                if not await close_call(call, "caller dropped", CLOSE_TIMEOUT):
                    tally.hung_closes += 1
                call = None
            elif turn.event == "reconnect":
                started = now_ns()
                call = await start_call(
                    workflow=workflow, caller_identity=identity, persistence=persistence
                )
                tally.resumes.add(now_ns() - started)
                if not call.resumed:
                    tally.not_resumed += 1
            else:
                assert call is not None
                started = now_ns()
                await call.session.run(user_input=turn.say or "")
                tally.turns.add(now_ns() - started)
                paced_turns += 1
                if turn.expect_agent and call.session.current_agent.id != turn.expect_agent:
                    tally.wrong_agent += 1
        assert call is not None
        live[index] = call
        arrived += 1
        if arrived == n:
            reached.set()
        await burst_go.wait()
        for line in BURST_LINES[: settings.burst]:
            await call.session.run(user_input=line)
            tally.burst_turns += 1
        finished += 1
        await release.wait()
        if not await close_call(call, "caller hung up", CLOSE_TIMEOUT):
            tally.hung_closes += 1

    paced_start = time.monotonic()
    tasks = [asyncio.create_task(caller(i)) for i in range(n)]
    waiter = asyncio.create_task(reached.wait())
    pending: set[asyncio.Task[Any]] = {waiter, *tasks}
    while not reached.is_set():
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            error = task.exception()
            if error is not None:
                raise error
    paced_wall = time.monotonic() - paced_start
    cpu_paced = time.process_time() - cpu_start
    gc_watch.stop()

    # all N calls live: memory
    pool_in_use = _pool_in_use(client)
    flush_started = time.monotonic()
    acked = await asyncio.gather(*(call.flush(FLUSH_TIMEOUT) for call in live.values()))
    flush_wall = time.monotonic() - flush_started
    rss_live = rss_bytes()
    redis_live = int((await monitor.info("memory"))["used_memory"])
    per_session: list[int] = []
    for index, call in live.items():
        keys = [*store.session_keys(call.session_id), store.caller_key(f"+1555{index:07d}")]
        total = 0
        for key in keys:
            total += int(await monitor.memory_usage(key, samples=0) or 0)
        per_session.append(total)
    items_stored = [
        int(await monitor.llen(store.session_keys(call.session_id)[1])) for call in live.values()
    ]

    # saturated burst
    burst_cpu = time.process_time()
    burst_start = time.monotonic()
    burst_go.set()
    while finished < n:
        await asyncio.sleep(0.01)
    burst_wall = time.monotonic() - burst_start
    burst_cpu = time.process_time() - burst_cpu
    release.set()
    await asyncio.gather(*tasks)
    await monitor.flushall()
    await monitor.aclose()
    await client.aclose()
    say_turns = sum(1 for turn in scenario.turn if turn.say)
    return {
        "sessions": n,
        "max_connections": settings.max_connections,
        "think_time_s": [settings.think_min, settings.think_max],
        "paced": {
            "turns": len(tally.turns),
            "wall_s": paced_wall,
            "turns_per_s": len(tally.turns) / paced_wall,
            "cpu_s": cpu_paced,
            "cpu_ms_per_turn": 1000 * cpu_paced / max(1, paced_turns),
            "turn_latency": tally.turns.summary(),
            "call_start": tally.starts.summary(),
            "reconnect_resume": tally.resumes.summary(),
            "wrong_agent_turns": tally.wrong_agent,
            "hung_closes": tally.hung_closes,
            "not_resumed": tally.not_resumed,
            "scenario_caller_turns": say_turns,
        },
        "barrier": {
            "redis_pool_in_use_before_flush": pool_in_use,
            "sessions_not_acknowledged": acked.count(False),
            "flush_wall_s": flush_wall,
        },
        "memory": {
            "rss_base_bytes": rss_base,
            "rss_live_bytes": rss_live,
            "rss_per_session_bytes": (rss_live - rss_base) / n,
            "redis_used_memory_growth_bytes": redis_live - redis_base,
            "redis_used_memory_per_session_bytes": (redis_live - redis_base) / n,
            "redis_memory_usage_per_session_bytes": sum(per_session) / n,
            "redis_memory_usage_max_session_bytes": max(per_session),
            "list_tail_items_per_session": sum(items_stored) / n,
        },
        "burst": {
            "turns": tally.burst_turns,
            "wall_s": burst_wall,
            "turns_per_s": tally.burst_turns / burst_wall if burst_wall > 0 else None,
            "cpu_s": burst_cpu,
        },
        "gc_paced_phase": gc_watch.as_json(),
        "frontdesk_warnings": log_tally.kinds,
        "frontdesk_warning_examples": log_tally.examples,
        "redis_requests_per_caller_turn": counter.requests
        / max(1, paced_turns + tally.burst_turns),
    }


def _pool_in_use(client: Redis) -> int | None:
    in_use = getattr(client.connection_pool, "_in_use_connections", None)
    return len(in_use) if in_use is not None else None


def child_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.capacity")
    parser.add_argument("--child", required=True, help="JSON LevelSettings")
    args = parser.parse_args(argv)
    settings = LevelSettings(**json.loads(args.child))
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("livekit").setLevel(logging.ERROR)
    logging.getLogger("livekit.agents").setLevel(logging.ERROR)
    result = asyncio.run(_child(settings))
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()
    # a close that hung (reported in the result) may still hold tasks: do not wait on them
    os._exit(0)


# --------------------------------------------------------------------------- the parent


def _baseline_process_rss(with_vad: bool) -> int | None:
    """RSS of a fresh process that imported what a job process imports (and loaded Silero)."""
    code = (
        "import gc, sys\n"
        "import frontdesk.workflows.worker, frontdesk.workflows.runtime\n"
        "from livekit.plugins import silero\n"
        + ("vad = silero.VAD.load()\n" if with_vad else "")
        + "gc.collect(); gc.freeze()\n"
        "from bench.common import rss_bytes\n"
        "print(rss_bytes())\n"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=Path(__file__).resolve().parent.parent,
        )
        return int(done.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


async def _run_level(ctx: BenchContext, settings: LevelSettings) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.capacity",
        "--child",
        json.dumps(settings.__dict__),
        cwd=str(Path(__file__).resolve().parent.parent),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ},
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), CHILD_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise RuntimeError(f"capacity level {settings.sessions} timed out") from None
    for line in out.decode().splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[len("RESULT ") :])
            result["child_pid"] = process.pid
            warnings = [w for w in err.decode().splitlines() if w.strip()]
            result["child_log_lines"] = warnings[-20:]
            return result
    raise RuntimeError(
        f"capacity level {settings.sessions} failed (exit {process.returncode}): "
        f"{err.decode()[-2000:]}"
    )


async def run(ctx: BenchContext) -> dict[str, Any]:
    levels = LEVELS_QUICK if ctx.quick else LEVELS_FULL
    think = (0.5, 1.5) if ctx.quick else (2.0, 6.0)
    burst = 2 if ctx.quick else 4
    ctx.console.rule("[bold]capacity[/]: N concurrent text sessions in one process")
    results: list[dict[str, Any]] = []
    cpu = ctx.cpu_monitor()
    with ctx.task("capacity", len(levels) + 2) as task:
        baselines = {
            "job_process_rss_bytes_offline_profile": await asyncio.to_thread(
                _baseline_process_rss, False
            ),
            "job_process_rss_bytes_with_silero_vad": await asyncio.to_thread(
                _baseline_process_rss, True
            ),
        }
        ctx.advance(task)
        for n in levels:
            settings = LevelSettings(
                sessions=n, think_min=think[0], think_max=think[1], burst=burst, url=ctx.redis.url
            )
            results.append(await _run_level(ctx, settings))
            ctx.advance(task)
        # when the client as shipped ran out of pooled connections, the largest level again with a
        # pool big enough for it (connect_redis's max_connections keyword): what it gives then
        extra: dict[str, Any] | None = None
        if _redis_errors(results[-1]):
            largest = levels[-1]
            settings = LevelSettings(
                sessions=largest,
                think_min=think[0],
                think_max=think[1],
                burst=burst,
                url=ctx.redis.url,
                max_connections=POOL_FOR_EXTRA_ROW * largest,
            )
            extra = await _run_level(ctx, settings)
        ctx.advance(task)
    cpu_used = cpu.stop()

    rows = []
    for r in [*results, *([extra] if extra else [])]:
        paced, memory, burst_r = r["paced"], r["memory"], r["burst"]
        lat = paced["turn_latency"]
        gen2 = r["gc_paced_phase"]["gen2"]
        label = f"{r['sessions']:,}"
        if r["max_connections"] is not None:
            label += f" (pool {r['max_connections']:,})"
        rows.append(
            [
                label,
                f"{paced['turns_per_s']:.0f}",
                f"{fmt_ms(lat['median_ms'])} / {fmt_ms(lat['p99_ms'])}",
                f"{fmt_ms(paced['reconnect_resume']['median_ms'])} / "
                f"{fmt_ms(paced['reconnect_resume']['p99_ms'])}",
                f"{paced['cpu_ms_per_turn']:.1f}",
                f"{burst_r['turns_per_s']:.0f}",
                f"{gen2['collections']} / {gen2['max_ms']:.0f}",
                fmt_bytes(memory["rss_per_session_bytes"]),
                fmt_bytes(memory["redis_memory_usage_per_session_bytes"]),
                fmt_bytes(1000 * _redis_per_session(r)),
                f"{r['redis_requests_per_caller_turn']:.1f}",
                f"{paced['wrong_agent_turns'] + paced['not_resumed']} / "
                f"{paced['hung_closes']} / {_redis_errors(r)}",
            ]
        )
    ctx.console.print(
        make_table(
            f"capacity: demo call per session, think time {think[0]:g}-{think[1]:g} s, "
            f"then a burst of {burst} back-to-back turns each",
            [
                "sessions",
                "turns/s (paced)",
                "turn ms med / p99",
                "resume ms med / p99",
                "CPU ms / turn",
                "max turns/s",
                "full GCs / max ms",
                "RSS / session",
                "Redis / session",
                "Redis / 1,000 calls",
                "Redis trips / turn",
                "failed turns / hung closes / Redis errors",
            ],
            rows,
        )
    )
    vad_rss = baselines["job_process_rss_bytes_with_silero_vad"]
    offline_rss = baselines["job_process_rss_bytes_offline_profile"]
    ctx.console.print(
        f"[dim]a fresh job process (Frontdesk + LiveKit imported, heap frozen) is "
        f"{fmt_bytes(offline_rss)} RSS, {fmt_bytes(vad_rss)} with Silero's VAD loaded: "
        "LiveKit's default executor runs one call per process[/]"
    )
    cpu_line(ctx.console, cpu_used)
    targets = _targets(results, extra)
    ctx.console.print(targets_table(targets))
    payload = {
        "description": "N concurrent text sessions in one process (demo scenario, persistence on)",
        "settings": {
            "levels": list(levels),
            "think_time_s": list(think),
            "burst_turns": burst,
            "scenario": "workflows/runtime/demo_scenario.toml",
        },
        "baselines": baselines,
        "cpu": cpu_used,
        "results": results,
        "largest_level_with_big_pool": extra,
        "targets": [t.as_json() for t in targets],
        "notes": [
            "RSS per session = (RSS with N calls live - RSS after warm-up, heap frozen) / N",
            "Redis/session: MEMORY USAGE (SAMPLES 0) of the session's 5 keys + its caller index;"
            " used_memory: INFO memory growth / N",
            "turn latency includes the persistence path (recorder + writer) running in the loop",
        ],
    }
    path = write_json(ctx, "capacity", payload)
    ctx.console.print(f"[dim]wrote {path}[/]")
    return payload


def _redis_per_session(result: dict[str, Any]) -> float:
    """Bytes of Redis per live session: the larger of MEMORY USAGE and used_memory growth."""
    memory = result["memory"]
    return float(
        max(
            memory["redis_memory_usage_per_session_bytes"],
            memory["redis_used_memory_per_session_bytes"],
        )
    )


def _redis_errors(result: dict[str, Any]) -> int:
    return sum(
        count for kind, count in result["frontdesk_warnings"].items() if kind.startswith("redis")
    )


def _targets(results: list[dict[str, Any]], extra: dict[str, Any] | None) -> list[Target]:
    def clean(r: dict[str, Any]) -> bool:
        return (
            r["memory"]["rss_per_session_bytes"] <= 10 * 1024 * 1024
            and r["paced"]["wrong_agent_turns"] + r["paced"]["not_resumed"] == 0
            and r["paced"]["hung_closes"] == 0
            and _redis_errors(r) == 0
        )

    best = max((r["sessions"] for r in results if clean(r)), default=0)
    largest = max(results, key=lambda r: r["sessions"])
    rss = largest["memory"]["rss_per_session_bytes"]
    holds = best >= 200
    if holds:
        miss = ""
    elif largest["sessions"] < 200:
        miss = f"not measured (quick mode ran up to {largest['sessions']} sessions)"
    else:
        failing = [r for r in results if not clean(r)]
        first = min(failing, key=lambda r: r["sessions"])
        reasons = []
        if first["memory"]["rss_per_session_bytes"] > 10 * 1024 * 1024:
            reasons.append(f"{fmt_bytes(first['memory']['rss_per_session_bytes'])}/session")
        if _redis_errors(first):
            kinds = ", ".join(k for k in first["frontdesk_warnings"] if k.startswith("redis"))
            reasons.append(f"{_redis_errors(first)} Redis errors ({kinds})")
        if first["paced"]["wrong_agent_turns"] + first["paced"]["not_resumed"]:
            reasons.append("failed turns")
        if first["paced"]["hung_closes"]:
            reasons.append(f"{first['paced']['hung_closes']} Call.aclose hung")
        clean_part = f"clean up to {best} sessions" if best else "no level was clean"
        miss = f"{clean_part}; at {first['sessions']}: " + ", ".join(reasons)
    latency: list[Target] = []
    at_200 = [r for r in results if r["sessions"] == 200]
    if at_200:
        r = at_200[0]
        turns = r["paced"]["turn_latency"]
        p99 = turns["p99_ms"]
        full = r.get("gc_paced_phase", {}).get("gen2", {})
        latency.append(
            Target(
                "turn p99 at 200 sessions",
                "≤ 40 ms in one process (paced phase)",
                f"{fmt_ms(p99)} ms (median {fmt_ms(turns['median_ms'])}); "
                f"{full.get('collections', '?')} full GCs, longest {full.get('max_ms', '?')} ms",
                p99 <= 40.0,
                "" if p99 <= 40.0 else f"{fmt_ms(p99 - 40.0)} ms ({p99 / 40:.2f}×)",
                value=p99,
                noise=0.25,
            )
        )
    return [
        *latency,
        Target(
            "capacity",
            "≥ 200 concurrent sessions at ≤ 10 MB each, 2 cores",
            f"{largest['sessions']} sessions: {fmt_bytes(rss)} RSS each, p99 turn "
            f"{fmt_ms(largest['paced']['turn_latency']['p99_ms'])} ms"
            + (
                f"; with a {extra['max_connections']:,}-connection pool: "
                f"{_redis_errors(extra)} Redis errors, p99 turn "
                f"{fmt_ms(extra['paced']['turn_latency']['p99_ms'])} ms"
                if extra
                else ""
            ),
            holds,
            miss,
        ),
    ]


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
