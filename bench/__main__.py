"""``python -m bench [--quick] [--only NAME[,NAME]] [--json-dir bench/results] [--no-peer] [--check]``.

Starts one private ``redis-server`` (the project's :class:`~frontdesk.state.EmbeddedRedis`, AOF
on with ``appendfsync everysec`` as in production) and, when the optional LangGraph peer is
installed, one Redis Stack server; runs the benchmarks in order in this one process; prints a
table per benchmark and a summary of the targets; writes ``<json-dir>/<name>.json``.
With ``--check`` the run is written to a temporary folder instead (unless ``--json-dir`` is
given) and compared with the committed results (:mod:`bench.check`): exit status 1 when a
target that held there regresses beyond the noise measured.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from rich.console import Console

from frontdesk.errors import StateError
from frontdesk.state import EmbeddedRedis

from . import check
from .common import (
    HUNG_CLOSES,
    BenchContext,
    Target,
    machine_info,
    make_progress,
    print_machine,
    targets_table,
)
from .peer_langgraph import INSTALL_HINT, PeerStatus, check_peer, peer_server

NAMES = ("persist", "resume", "handoff", "capacity", "jobs", "voice", "realmodel", "scale")
PEER_USERS = {"persist", "resume"}
DEFAULT_JSON_DIR = Path(__file__).resolve().parent / "results"


def _runner(name: str) -> Callable[[BenchContext], Awaitable[dict[str, Any]]]:
    if name == "persist":
        from . import persist

        return persist.run
    if name == "resume":
        from . import resume

        return resume.run
    if name == "handoff":
        from . import handoff

        return handoff.run
    if name == "jobs":
        from . import jobs

        return jobs.run
    if name == "voice":
        from . import voice

        return voice.run
    if name == "realmodel":
        from . import realmodel

        return realmodel.run
    if name == "scale":
        from . import scale

        return scale.run
    from . import capacity

    return capacity.run


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="Frontdesk benchmarks (see bench/README_SECTION.md)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer sizes and iterations (< 3 minutes)"
    )
    parser.add_argument(
        "--only",
        metavar="NAME",
        help=f"run only these benchmarks, comma-separated: {', '.join(NAMES)}",
    )
    parser.add_argument(
        "--json-dir",
        type=Path,
        default=DEFAULT_JSON_DIR,
        help="where to write <name>.json (default: bench/results)",
    )
    parser.add_argument(
        "--no-peer",
        action="store_true",
        help="skip the optional LangGraph peer even if it is installed",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="compare with the committed results (--baseline) and exit 1 when a target that "
        "held there regresses beyond the run-to-run noise measured",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        default=DEFAULT_JSON_DIR,
        help="the results --check compares with (default: bench/results)",
    )
    args = parser.parse_args(argv)
    if args.check and args.json_dir == DEFAULT_JSON_DIR:
        args.json_dir = Path(tempfile.mkdtemp(prefix="frontdesk-bench-"))
    selected = list(NAMES)
    if args.only:
        selected = [name.strip() for name in args.only.split(",") if name.strip()]
        unknown = [name for name in selected if name not in NAMES]
        if unknown:
            parser.error(f"unknown benchmark(s) {unknown}; choose from {', '.join(NAMES)}")
    args.selected = selected
    return args


async def _main(args: argparse.Namespace, console: Console) -> int:
    started = time.monotonic()
    selected: list[str] = args.selected
    wants_peer = bool(PEER_USERS & set(selected))
    if args.no_peer:
        peer = PeerStatus(available=False, reason="--no-peer was given")
    elif wants_peer:
        with console.status("checking the optional LangGraph peer…"):
            peer = await asyncio.to_thread(check_peer, fetch=True)
    else:
        peer = PeerStatus(available=False, reason="not needed by the selected benchmarks")

    async with EmbeddedRedis(appendonly=True, appendfsync="everysec") as server:
        monitor = Redis.from_url(server.url)
        machine = await machine_info(monitor)
        await monitor.aclose()
        peer_redis: EmbeddedRedis | None = None
        peer_machine: dict[str, Any] | None = None
        if peer.available and wants_peer:
            candidate = peer_server(peer)
            try:
                await asyncio.to_thread(candidate.start)
            except (StateError, OSError) as exc:
                peer = PeerStatus(
                    available=False,
                    reason=f"Redis Stack server did not start: {exc}",
                    versions=peer.versions,
                    notes=peer.notes,
                )
            else:
                peer_redis = candidate
                peer_monitor = Redis.from_url(peer_redis.url)
                peer_machine = await machine_info(peer_monitor)
                peer_machine["modules"] = [
                    _name(module) for module in await peer_monitor.module_list()
                ]
                await peer_monitor.aclose()
        try:
            console.print(
                f"[bold]Frontdesk benchmarks[/] ({'quick' if args.quick else 'full'} mode): "
                f"{', '.join(selected)}"
            )
            print_machine(console, machine)
            if peer_machine is not None:
                console.print(
                    f"[bold]LangGraph peer[/]: Redis Stack {peer_machine['redis_server']} "
                    f"(modules {', '.join(peer_machine['modules'])}), "
                    + ", ".join(f"{k} {v}" for k, v in peer.versions.items())
                )
                for note in peer.notes:
                    console.print(f"[dim]  {note}[/]")
            elif wants_peer:
                console.print(
                    "[bold red on yellow] ⚠ LangGraph peer NOT available: "
                    f"{peer.reason}. Its column is skipped. To enable: {INSTALL_HINT} [/]"
                )
            summary: list[tuple[str, Target]] = []
            with make_progress(console) as progress:
                ctx = BenchContext(
                    quick=args.quick,
                    console=console,
                    progress=progress,
                    redis=server,
                    json_dir=args.json_dir,
                    peer=peer,
                    machine=machine,
                    peer_redis=peer_redis,
                    peer_machine=peer_machine,
                )
                for name in selected:
                    payload = await _runner(name)(ctx)
                    summary += [(name, _target(t)) for t in payload.get("targets", [])]
        finally:
            if peer_redis is not None:
                await asyncio.to_thread(peer_redis.stop)
    if HUNG_CLOSES:
        console.print(
            f"[bold red]⚠ {len(HUNG_CLOSES)} Call.aclose() never finished (a Frontdesk bug: see "
            "bench/common.py close_call); they were abandoned[/]"
        )
        for task in HUNG_CLOSES:
            task.cancel()
        await asyncio.wait(HUNG_CLOSES, timeout=5)
    console.rule("[bold]summary")
    console.print(targets_table([t for _, t in summary]))
    missed = [t for _, t in summary if not t.holds]
    console.print(
        f"{len(summary) - len(missed)} targets hold, {len(missed)} missed · "
        f"{time.monotonic() - started:.0f} s · JSON in {args.json_dir}"
    )
    if args.check:
        return _check(console, selected, args.baseline, args.json_dir)
    return 0


def _check(console: Console, selected: list[str], baseline_dir: Path, run_dir: Path) -> int:
    verdicts: list[check.Verdict] = []
    for name in selected:
        baseline = check.load_targets(baseline_dir, name)
        current = check.load_targets(run_dir, name) or []
        if baseline is None:
            console.print(f"[yellow]--check: no committed {name}.json in {baseline_dir}[/]")
            continue
        verdicts += check.compare(name, baseline, current)
    console.rule(f"[bold]check against {baseline_dir}")
    for v in verdicts:
        colour = {"regressed": "red", "fixed": "green", "within noise": "yellow"}.get(
            v.status, "default"
        )
        console.print(f"[{colour}]{v.status:>12}[/] {v.benchmark} · {v.target}: {v.detail}")
    regressed = [v for v in verdicts if v.status == "regressed"]
    console.print(
        f"{len(regressed)} regression(s) beyond the measured noise"
        if regressed
        else "no target that held regressed beyond the measured noise"
    )
    return 1 if regressed else 0


def _name(module: Any) -> str:
    name = module.get(b"name", module.get("name", "?")) if isinstance(module, dict) else module
    return name.decode() if isinstance(name, bytes) else str(name)


def _target(data: dict[str, Any]) -> Target:
    return Target(
        name=data["target"],
        target=data["wanted"],
        measured=data["measured"],
        holds=data["holds"],
        miss=data.get("missed_by") or "",
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("livekit.agents").setLevel(logging.ERROR)
    logging.getLogger("livekit").setLevel(logging.ERROR)
    os.environ.setdefault("LIVEKIT_EVALS_VERBOSE", "0")
    console = Console(width=None if sys.stdout.isatty() else 200)
    try:
        return asyncio.run(_main(args, console))
    except KeyboardInterrupt:
        console.print("[red]interrupted[/]")
        return 130


if __name__ == "__main__":
    sys.exit(main())
