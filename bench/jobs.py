"""``jobs``: memory per call as LiveKit runs calls, one job process each.

LiveKit's worker runs every job in a process of its own, started from a prewarmed process
(imports done, ``prewarm`` run, ``gc.freeze()``); pages the two never write stay shared. RSS
counts those shared pages in every process, so it overstates what one more call costs. This
benchmark starts one prewarmed parent (``python -m bench.jobs --parent``: Frontdesk and LiveKit
imported, the workflow loaded, optionally Silero's VAD, ``gc.collect(); gc.freeze()`` as
``workflows.worker.job.prewarm`` does), forks ``N`` idle and ``N`` live job processes from it
(a live one runs the demo call's first turns in text mode with persistence on the bench's
redis-server and keeps its session open), and reads ``/proc/<pid>/smaps_rollup`` of each while
all are alive:

* **USS** (``Private_Clean + Private_Dirty``): memory only that process holds: what a call adds;
* **PSS**: its own pages plus its share of shared ones (the processes' PSS add up to the real
  total), so 1 GiB / PSS of a live job is the calls-per-GiB figure with sharing counted;
* **RSS** for comparison with earlier figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .common import BenchContext, Target, fmt_bytes, make_table, targets_table, write_json

N_FULL = 8
N_QUICK = 3
TURNS = ("hi, my internet is down", "sure, it's AC-48213", "it keeps dropping every evening")
USS_TARGET_MIB = 60.0
MIB = 1024 * 1024
GIB = 1024 * MIB


def smaps_rollup(pid: int) -> dict[str, int]:
    """``Rss``, ``Pss``, ``Uss`` (private clean + dirty), ``Swap`` of a process, in bytes."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, _, rest = line.partition(":")
        parts = rest.split()
        if len(parts) >= 2 and parts[1] == "kB":
            fields[name.strip()] = int(parts[0]) * 1024
    return {
        "rss": fields.get("Rss", 0),
        "pss": fields.get("Pss", 0),
        "uss": fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0),
        "swap": fields.get("Swap", 0),
    }


# --------------------------------------------------------------------------- the parent process


async def _live_call(url: str, workflow: Any, index: int) -> Any:
    from frontdesk.workflows.runtime import Persistence, start_call

    from .common import BENCH_SECRET, WireCounter, counting_client, make_store

    client = counting_client(url, WireCounter())
    store = make_store(client, prefix="bench-jobs")
    persistence = Persistence(
        store=store, settings=workflow.config.state, caller_secret=BENCH_SECRET, owner="bench"
    )
    call = await start_call(
        workflow=workflow, caller_identity=f"+1555777{index:04d}", persistence=persistence
    )
    for line in TURNS:
        await call.session.run(user_input=line)
    await call.flush(10.0)
    return call


def _child(ready: int, url: str, workflow: Any, index: int, live: bool) -> None:
    """A job process: idle (prewarmed, waiting) or holding one live call; never returns."""
    try:
        if live:
            loop = asyncio.new_event_loop()
            call = loop.run_until_complete(_live_call(url, workflow, index))
            gc.collect()
            os.write(ready, b"L")
            # the call stays open (its session, recorder, writer and lease renewal live)
            loop.run_until_complete(asyncio.sleep(3600))
            del call
        else:
            os.write(ready, b"I")
            signal.pause()
    except BaseException as exc:  # report, then die: the parent counts the answers
        os.write(ready, f"E{type(exc).__name__}: {exc}"[:200].encode())
    finally:
        os._exit(0)


def parent_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.jobs --parent")
    parser.add_argument("--parent", action="store_true")
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--vad", action="store_true")
    args = parser.parse_args(argv)

    import frontdesk.workflows.runtime
    import frontdesk.workflows.worker
    from frontdesk.workflows.definition import load_workflow

    workflow = load_workflow()
    vad = None
    if args.vad:
        from livekit.plugins import silero

        vad = silero.VAD.load()
    del frontdesk
    gc.collect()
    gc.freeze()
    parent = smaps_rollup(os.getpid())
    pids: dict[int, str] = {}
    answers: dict[int, str] = {}
    reads: dict[int, int] = {}
    for index in range(2 * args.n):
        live = index >= args.n
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            _child(write, args.url, workflow, index, live)
        os.close(write)
        pids[pid] = "live" if live else "idle"
        reads[pid] = read
    deadline = time.monotonic() + 300
    for pid, read in reads.items():
        os.set_blocking(read, True)
        while pid not in answers and time.monotonic() < deadline:
            chunk = os.read(read, 256)
            answers[pid] = chunk.decode("utf-8", "replace") or "Eexited"
    time.sleep(1.0)  # let the live calls' background writes settle
    processes = []
    for pid, kind in pids.items():
        answer = answers.get(pid, "Etimeout")
        row: dict[str, Any] = {"pid": pid, "kind": kind, "ok": not answer.startswith("E")}
        if not row["ok"]:
            row["error"] = answer[1:]
        try:
            row.update(smaps_rollup(pid))
        except OSError as exc:
            row["ok"] = False
            row["error"] = str(exc)
        processes.append(row)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for pid in pids:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    print(json.dumps({"parent": parent, "processes": processes, "vad": vad is not None}))
    return 0


# --------------------------------------------------------------------------- the benchmark


def _mean(rows: list[dict[str, Any]], field: str) -> float:
    return sum(r[field] for r in rows) / len(rows) if rows else float("nan")


def measure(url: str, n: int, *, vad: bool) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.jobs", "--parent", "--n", str(n), "--url", url]
    if vad:
        command.append("--vad")
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"bench.jobs parent failed ({done.returncode}): {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    idle = [p for p in result["processes"] if p["kind"] == "idle" and p["ok"]]
    live = [p for p in result["processes"] if p["kind"] == "live" and p["ok"]]
    result["summary"] = {
        kind: {f: _mean(rows, f) for f in ("rss", "pss", "uss")}
        for kind, rows in (("idle", idle), ("live", live))
    }
    result["failed"] = [p for p in result["processes"] if not p["ok"]]
    return result


async def run(ctx: BenchContext) -> dict[str, Any]:
    n = N_QUICK if ctx.quick else N_FULL
    ctx.console.rule(f"[bold]jobs[/]: memory per call, {n} idle + {n} live job processes")
    results: dict[str, Any] = {}
    with ctx.task("jobs", 2) as task:
        for label, vad in (("text", False), ("silero", True)):
            results[label] = await asyncio.to_thread(measure, ctx.redis.url, n, vad=vad)
            ctx.advance(task)
    rows = []
    for label, result in results.items():
        s = result["summary"]
        rows.append(
            [
                label,
                fmt_bytes(result["parent"]["rss"]),
                " / ".join(fmt_bytes(s["idle"][f]) for f in ("uss", "pss", "rss")),
                " / ".join(fmt_bytes(s["live"][f]) for f in ("uss", "pss", "rss")),
                fmt_bytes(s["live"]["uss"] - s["idle"]["uss"]),
                f"{GIB / s['live']['uss']:.0f} / {GIB / s['live']['pss']:.0f}",
                str(len(result["failed"])),
            ]
        )
    ctx.console.print(
        make_table(
            "jobs: memory of forked job processes (mean per process)",
            [
                "profile",
                "prewarmed parent RSS",
                "idle USS / PSS / RSS",
                "live USS / PSS / RSS",
                "live − idle USS",
                "calls per GiB (USS / PSS)",
                "failed",
            ],
            rows,
        )
    )
    targets = _targets(results)
    ctx.console.print(targets_table(targets))
    payload = {
        "description": "memory per call, one forked job process per call",
        "settings": {"processes_per_kind": n, "turns_per_live_call": len(TURNS)},
        "results": results,
        "targets": [t.as_json() for t in targets],
        "notes": [
            "USS = Private_Clean + Private_Dirty of /proc/<pid>/smaps_rollup; PSS = Pss",
            "calls per GiB = 1 GiB / mean live USS (what one more call costs) and / mean "
            "live PSS (shared pages split among the processes)",
            "the parent is the prewarmed process: imports, workflow, VAD (silero row), "
            "gc.collect(); gc.freeze(), then fork",
        ],
    }
    path = write_json(ctx, "jobs", payload)
    ctx.console.print(f"[dim]wrote {path}[/]")
    return payload


def _targets(results: dict[str, Any]) -> list[Target]:
    targets: list[Target] = []
    for label, result in results.items():
        uss = result["summary"]["live"]["uss"] / MIB
        targets.append(
            Target(
                f"unique memory per live call ({label})",
                f"≤ {USS_TARGET_MIB:.0f} MiB USS per live job process",
                f"{uss:.1f} MiB ({GIB / (uss * MIB):.0f} calls/GiB)",
                uss <= USS_TARGET_MIB and not result["failed"],
                "" if uss <= USS_TARGET_MIB else f"{uss - USS_TARGET_MIB:.1f} MiB over",
                value=uss,
                noise=0.1,
            )
        )
    return targets


if __name__ == "__main__":
    sys.exit(parent_main(sys.argv[1:]))
