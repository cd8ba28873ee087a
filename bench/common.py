"""What every benchmark shares: timing, percentiles, Redis accounting, machine info, output.

* Timing is ``time.perf_counter_ns`` around the measured code only; setup and resets are not
  timed. Percentiles interpolate linearly between order statistics (numpy's default method).
* Ratios between columns are always computed from **medians** (p99s are too noisy to divide).
* Round trips and bytes are counted on the client by :class:`CountingConnection` (one
  ``send_packed_command`` = one request written to the socket, a pipeline or a script counts
  once; bytes are the RESP bytes written, framing included) and cross-checked on the server with
  ``INFO commandstats`` / ``INFO stats`` deltas (:func:`server_counters`), where commands run
  inside a Lua script are counted too.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

import orjson
from redis.asyncio import Redis
from redis.asyncio.connection import Connection
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from frontdesk.state import EmbeddedRedis, RedisSessionStore, connect_redis
from frontdesk.workflows.definition import StateSection

from .peer_langgraph import PeerStatus

REPO = Path(__file__).resolve().parent.parent
BENCH_SECRET = b"frontdesk-bench-caller-secret-0123456789"
"""Caller-index HMAC key for benchmark sessions (never a production secret)."""

now_ns = time.perf_counter_ns


# --------------------------------------------------------------------------- statistics


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of already sorted values, linear interpolation."""
    if not sorted_values:
        return math.nan
    if len(sorted_values) == 1:
        return float(sorted_values[0])
    position = (len(sorted_values) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    fraction = position - low
    return float(sorted_values[low]) * (1 - fraction) + float(sorted_values[high]) * fraction


@dataclass
class Samples:
    """Durations of one measured operation, in nanoseconds."""

    ns: list[int] = field(default_factory=list)

    def add(self, value: int) -> None:
        self.ns.append(value)

    def __len__(self) -> int:
        return len(self.ns)

    def ms(self, q: float) -> float:
        return percentile(sorted(self.ns), q) / 1e6

    @property
    def median_ms(self) -> float:
        return self.ms(50)

    @property
    def p99_ms(self) -> float:
        return self.ms(99)

    def noise(self, q: float) -> float:
        """Run-to-run noise of percentile ``q`` measured in this run: the relative difference
        between that percentile of the odd-numbered and of the even-numbered samples (two
        interleaved half-runs of the same measurement)."""
        if len(self.ns) < 4:
            return math.inf
        a = percentile(sorted(self.ns[0::2]), q)
        b = percentile(sorted(self.ns[1::2]), q)
        middle = (a + b) / 2
        return abs(a - b) / middle if middle > 0 else math.inf

    def summary(self) -> dict[str, Any]:
        values = sorted(self.ns)
        if not values:
            return {"n": 0}
        return {
            "n": len(values),
            "median_ms": percentile(values, 50) / 1e6,
            "p90_ms": percentile(values, 90) / 1e6,
            "p99_ms": percentile(values, 99) / 1e6,
            "min_ms": values[0] / 1e6,
            "max_ms": values[-1] / 1e6,
            "mean_ms": sum(values) / len(values) / 1e6,
        }


def ratio(slower_median: float, faster_median: float) -> float:
    """How many times faster ``faster`` is, from medians."""
    if faster_median <= 0 or math.isnan(faster_median) or math.isnan(slower_median):
        return math.nan
    return slower_median / faster_median


def fmt_ms(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def fmt_x(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:.1f}×" if value < 100 else f"{value:.0f}×"


def fmt_bytes(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    if value >= 10 * 1024 * 1024:
        return f"{value / 1024 / 1024:.0f} MiB"
    if value >= 1024 * 1024:
        return f"{value / 1024 / 1024:.1f} MiB"
    if value >= 10 * 1024:
        return f"{value / 1024:.0f} KiB"
    if value >= 1024:
        return f"{value / 1024:.1f} KiB"
    return f"{value:.0f} B"


# --------------------------------------------------------------------------- Redis accounting


@dataclass
class WireCounter:
    """Requests and bytes a client wrote to Redis."""

    requests: int = 0
    bytes: int = 0

    def snapshot(self) -> tuple[int, int]:
        return self.requests, self.bytes


class CountingConnection(Connection):
    """A redis-py asyncio connection that counts what it writes (see module docstring)."""

    counter: ClassVar[WireCounter] = WireCounter()

    async def send_packed_command(
        self, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        if isinstance(command, str):
            command = command.encode()
        chunks = [command] if isinstance(command, bytes) else list(command)
        counter = type(self).counter
        counter.requests += 1
        counter.bytes += sum(len(chunk) for chunk in chunks)
        await super().send_packed_command(chunks, check_health)


def counting_class(counter: WireCounter) -> type[CountingConnection]:
    """A connection class whose instances all add to ``counter``."""
    return type("CountingConnection", (CountingConnection,), {"counter": counter})


def counting_client(url: str, counter: WireCounter, **kw: Any) -> Redis:
    """A Frontdesk client (``connect_redis`` settings, ``kw`` added) that counts its traffic."""
    client = connect_redis(url, connection_class=counting_class(counter), **kw)
    assert isinstance(client, Redis)
    return client


def make_store(
    client: Redis, *, prefix: str = "bench", snapshot_every: int = 200
) -> RedisSessionStore:
    """A ``RedisSessionStore`` with the production defaults of config.toml ([state])."""
    settings = StateSection(key_prefix=prefix, snapshot_every=snapshot_every)
    return RedisSessionStore.from_settings(settings, client=client, caller_secret=BENCH_SECRET)


@dataclass
class ServerCounters:
    commands: dict[str, int]
    net_input_bytes: int
    evalsha_usec: int = 0
    """Microseconds Redis spent in ``EVALSHA`` (the scripts' own run time, server side)."""

    def minus(self, before: ServerCounters) -> ServerCounters:
        names = set(self.commands) | set(before.commands)
        return ServerCounters(
            evalsha_usec=self.evalsha_usec - before.evalsha_usec,
            commands={
                name: self.commands.get(name, 0) - before.commands.get(name, 0)
                for name in names
                if self.commands.get(name, 0) - before.commands.get(name, 0)
            },
            net_input_bytes=self.net_input_bytes - before.net_input_bytes,
        )

    @property
    def total(self) -> int:
        return sum(self.commands.values())


_OBSERVER_COMMANDS = {"info", "memory|usage", "client|setname", "hello", "ping"}


async def server_counters(client: Redis) -> ServerCounters:
    """``INFO commandstats`` calls per command (observer commands left out) and net input bytes."""
    stats = await client.info("commandstats")
    net = await client.info("stats")
    commands = {
        str(name).removeprefix("cmdstat_"): int(value["calls"])
        for name, value in stats.items()
        if isinstance(value, dict)
    }
    commands = {k: v for k, v in commands.items() if k not in _OBSERVER_COMMANDS}
    evalsha = stats.get("cmdstat_evalsha")
    return ServerCounters(
        commands=commands,
        net_input_bytes=int(net["total_net_input_bytes"]),
        evalsha_usec=int(evalsha["usec"]) if isinstance(evalsha, dict) else 0,
    )


# --------------------------------------------------------------------------- machine info


def _dist(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


async def machine_info(client: Redis) -> dict[str, Any]:
    """What the numbers were measured on."""
    import redis
    import redis.utils

    server = await client.info("server")
    config = await client.config_get("appendonly")
    config.update(await client.config_get("appendfsync"))
    memory_kib = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        memory_kib = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
    commit = _git("rev-parse", "--short", "HEAD")
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "redis_server": server.get("redis_version"),
        "redis_server_executable": server.get("executable"),
        "redis_appendonly": _text(config.get("appendonly")),
        "redis_appendfsync": _text(config.get("appendfsync")),
        "redis_py": redis.__version__,
        "hiredis": _dist("hiredis") if redis.utils.HIREDIS_AVAILABLE else None,
        "livekit_agents": _dist("livekit-agents"),
        "orjson": _dist("orjson"),
        "pydantic": _dist("pydantic"),
        "frontdesk_commit": (commit + ("+dirty" if dirty else "")) if commit else None,
    }


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def print_machine(console: Console, info: dict[str, Any]) -> None:
    console.print(
        f"[bold]Machine[/]: {info['cpu_count']} CPUs ({info['cpus_usable']} usable) "
        f"{info['cpu_model']}, {info['memory_gib']} GiB · Python {info['python']} · "
        f"Redis {info['redis_server']} (AOF {info['redis_appendonly']}, "
        f"appendfsync {info['redis_appendfsync']}) · redis-py {info['redis_py']} · "
        f"hiredis {info['hiredis'] or 'NOT installed'} · livekit-agents {info['livekit_agents']} · "
        f"frontdesk {info['frontdesk_commit']}"
    )


# --------------------------------------------------------------------------- context and output


@dataclass
class Target:
    """One target from the brief, checked against a measurement."""

    name: str
    target: str
    measured: str
    holds: bool
    miss: str = ""
    value: float | None = None
    """The measured figure as a number (lower is better), for ``python -m bench --check``."""
    noise: float | None = None
    """Relative run-to-run noise of ``value`` measured in this run (see :meth:`Samples.noise`)."""

    def as_json(self) -> dict[str, Any]:
        return {
            "target": self.name,
            "wanted": self.target,
            "measured": self.measured,
            "holds": self.holds,
            "missed_by": self.miss or None,
            "value": self.value,
            "noise": self.noise,
        }


@dataclass
class BenchContext:
    """Everything a benchmark gets from ``python -m bench``."""

    quick: bool
    console: Console
    progress: Progress
    redis: EmbeddedRedis
    json_dir: Path
    peer: PeerStatus
    machine: dict[str, Any]
    peer_redis: EmbeddedRedis | None = None
    peer_machine: dict[str, Any] | None = None

    @property
    def mode(self) -> str:
        return "quick" if self.quick else "full"

    @contextlib.contextmanager
    def task(self, description: str, total: int) -> Iterator[TaskID]:
        task = self.progress.add_task(description, total=total)
        try:
            yield task
        finally:
            self.progress.update(task, completed=total, visible=False)
            self.progress.remove_task(task)

    def advance(self, task: TaskID, steps: int = 1) -> None:
        self.progress.update(task, advance=steps)

    def peer_note(self) -> str:
        return (
            "LangGraph peer SKIPPED: "
            + self.peer.reason
            + " (the LangGraph column is left out; nothing else is affected)"
        )

    def cpu_monitor(self) -> CpuMonitor:
        pids = [os.getpid(), self.redis.pid, self.peer_redis.pid if self.peer_redis else None]
        return CpuMonitor(pids).start()

    def settle(self) -> None:
        """Collect, then freeze the heap, as the worker's prewarm does after imports.

        Called after a benchmark's setup: the histories it built and the imports are moved out
        of the garbage collector's sight, so full collections during measurement scan only what
        the measured code allocates, as in a worker process.
        """
        gc.collect()
        gc.freeze()

    def loud_skip(self) -> None:
        if not self.peer.available:
            self.console.print(f"[bold red on yellow] ⚠ {self.peer_note()} [/]")


def make_progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def make_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[str]]) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index == 0 else "right")
    for row in rows:
        table.add_row(*row)
    return table


def targets_table(targets: Sequence[Target]) -> Table:
    table = Table(title="Targets", title_justify="left", header_style="bold")
    for column in ("target", "wanted", "measured", "", "missed by"):
        table.add_column(column)
    for target in targets:
        table.add_row(
            target.name,
            target.target,
            target.measured,
            "[green]✓ holds[/]" if target.holds else "[red]✗ missed[/]",
            target.miss,
        )
    return table


def write_json(ctx: BenchContext, name: str, payload: dict[str, Any]) -> Path:
    ctx.json_dir.mkdir(parents=True, exist_ok=True)
    path = ctx.json_dir / f"{name}.json"
    document = {
        "benchmark": name,
        "mode": ctx.mode,
        "written_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": ctx.machine,
        "peer_machine": ctx.peer_machine,
        **payload,
    }
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))
    return path


def _proc_cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0
    # utime + stime (all threads) + cutime + cstime (children waited for: capacity's levels)
    return int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs from /proc/stat."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = sum(values[:8])
    return total - idle, total


class CpuMonitor:
    """How busy the machine was during a benchmark, and how much of that was someone else.

    The benchmark's share is this process plus the redis-servers it started; the rest is other
    processes on the machine (noise: on a 2-core machine any of it shows in the p99s).
    """

    def __init__(self, pids: Iterable[int | None]) -> None:
        self._pids = [pid for pid in pids if pid]
        self._start: tuple[int, int, int] | None = None

    def start(self) -> CpuMonitor:
        busy, total = _machine_ticks()
        self._start = (busy, total, sum(_proc_cpu_ticks(pid) for pid in self._pids))
        return self

    def stop(self) -> dict[str, float]:
        assert self._start is not None
        busy, total = _machine_ticks()
        ours = sum(_proc_cpu_ticks(pid) for pid in self._pids)
        d_busy, d_total, d_ours = (
            busy - self._start[0],
            total - self._start[1],
            ours - self._start[2],
        )
        cpus = os.cpu_count() or 1
        if d_total <= 0:
            return {}
        return {
            "machine_busy_pct_of_all_cpus": 100.0 * d_busy / d_total,
            "bench_and_redis_pct_of_all_cpus": 100.0 * d_ours / d_total,
            "other_processes_pct_of_all_cpus": max(0.0, 100.0 * (d_busy - d_ours) / d_total),
            "cpus": cpus,
            "loadavg_1m_at_end": os.getloadavg()[0],
        }


def cpu_line(console: Console, cpu: dict[str, float]) -> None:
    if not cpu:
        return
    other = cpu["other_processes_pct_of_all_cpus"]
    text = (
        f"CPU during this benchmark: bench + its redis-servers "
        f"{cpu['bench_and_redis_pct_of_all_cpus']:.0f}%, other processes {other:.0f}% "
        f"of {cpu['cpus']:.0f} CPUs (load average {cpu['loadavg_1m_at_end']:.1f})"
    )
    if other > 5:
        console.print(
            f"[bold yellow]⚠ {text}: other processes competed for the CPUs, so tails (p99) "
            "are inflated; re-run on a quiet machine for clean figures[/]"
        )
    else:
        console.print(f"[dim]{text}[/]")


class GcWatch:
    """Garbage-collector pauses while installed (``gc.callbacks``), by generation."""

    def __init__(self) -> None:
        self._started: float | None = None
        self._ignoring = False
        self.count = [0, 0, 0]
        self.total_ms = [0.0, 0.0, 0.0]
        self.max_ms = [0.0, 0.0, 0.0]

    def collect(self) -> None:
        """An explicit, untimed ``gc.collect()`` that the watch does not count."""
        self._ignoring = True
        try:
            gc.collect()
        finally:
            self._ignoring = False

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if self._ignoring:
            return
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started is not None:
            generation = int(info.get("generation", 0))
            elapsed = (time.perf_counter() - self._started) * 1000
            self.count[generation] += 1
            self.total_ms[generation] += elapsed
            self.max_ms[generation] = max(self.max_ms[generation], elapsed)
            self._started = None

    def start(self) -> GcWatch:
        gc.callbacks.append(self._callback)
        return self

    def stop(self) -> None:
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._callback)

    def as_json(self) -> dict[str, Any]:
        return {
            f"gen{g}": {
                "collections": self.count[g],
                "total_ms": round(self.total_ms[g], 2),
                "max_ms": round(self.max_ms[g], 2),
            }
            for g in range(3)
        }

    def line(self) -> str:
        return (
            f"GC during measurement: {self.count[2]} full collections "
            f"(max {self.max_ms[2]:.1f} ms), {self.count[1]} gen-1 (max {self.max_ms[1]:.1f} ms), "
            f"{self.count[0]} gen-0"
        )


HUNG_CLOSES: list[asyncio.Task[Any]] = []
"""``Call.aclose`` tasks that did not finish in time (see :func:`close_call`)."""


async def close_call(call: Any, reason: str, timeout: float = 20.0) -> bool:
    """``await call.aclose(reason)``, but give up after ``timeout`` seconds (False).

    A close that hangs is a Frontdesk bug the benchmark must report, not wait on forever: with
    Python 3.11 a cancelled lease-renewal task can swallow its cancellation (``asyncio.wait_for``
    inside redis-py), and ``SessionRecorder.aclose`` awaits it without a timeout.
    """
    task = asyncio.ensure_future(call.aclose(reason))
    done, _ = await asyncio.wait([task], timeout=timeout)
    if done:
        task.result()
        return True
    HUNG_CLOSES.append(task)
    return False


def rss_bytes() -> int:
    """Resident set size of this process, from /proc/self/status (VmRSS)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    import psutil

    return int(psutil.Process().memory_info().rss)
