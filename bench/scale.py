"""``scale``: K worker processes sharing one Redis; callers hop between workers; workers die.

Each worker is a real process (``python -m bench.scale --worker``) running many concurrent calls
with ``start_call`` and ``session.run`` on the offline brain, persistence on, exactly as a
LiveKit job runs them, driven by JSON lines on stdin (one task per request, so its calls run
concurrently). The parent plays N callers, each the default workflow's support → sales flow
(:data:`tests`-style distinct lines) plus a few more turns, with think time between turns:

* now and then a caller **drops** and reconnects to a *different* worker (the old one closes
  the call; half the time the new one claims it before the old one has finished closing);
* now and then a **worker is SIGKILLed** mid-call: every caller on it reconnects to another
  worker (a replacement is started in its slot, as a Deployment would), and repeats the turn in
  flight unless the dead worker had already stored it.

Every reconnect must resume (same session, the agent the stored history leads to). At the end
every session is read back: an acknowledged turn that is missing is *lost*, a caller line stored
twice is *duplicated* (targets: 0 and 0). Also measured: the store's append latency inside the
workers (p50/p99), Redis commands per second (``INFO stats`` of every master), Redis memory per
session (``MEMORY USAGE`` of its keys and its caller index), and the workers' CPU per turn.

The same code runs small in ``tests/scale/test_multi_worker.py`` and bigger in ``python -m bench``
on a standalone server and on a 3-master Redis Cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import random
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "config.toml"
SECRET = "frontdesk-scale-bench-secret-0123456789abcdef"
PREFIX = "scale"
AGAIN = "(again) "
"""Marks a line the caller repeats because the worker died mid-turn (so it is not a duplicate)."""

SCRIPT: tuple[tuple[str, str], ...] = (
    # (what the caller says, the agent holding the call afterwards) on the default config.
    ("hi, my internet is down", "support"),
    ("sure, it's AC-48213", "support"),
    ("how long will the repair take?", "support"),
    ("the lights on my modem are blinking", "support"),
    ("actually I'd also like to upgrade to a faster plan", "sales"),
    ("94103", "sales"),
    ("which of those is cheapest?", "sales"),
    ("thanks, that is all", "sales"),
)


def session_keys(session_id: str) -> list[str]:
    """The store's keys of a session (see state/redis_store.py), for the independent reader."""
    tag = f"{PREFIX}:s:{{{session_id}}}"
    return [f"{tag}:meta", f"{tag}:items", f"{tag}:snap", f"{tag}:fence", f"{tag}:lease"]


def caller_lines(extra: int) -> list[str]:
    return [text for text, _ in SCRIPT] + [f"and one more thing, number {i}" for i in range(extra)]


def agent_after(turns: int) -> str:
    """The agent holding the call once ``turns`` caller lines are done."""
    if turns == 0:
        return "receptionist"
    return SCRIPT[min(turns, len(SCRIPT)) - 1][1]


# =========================================================================== the worker process


def _user_texts(items: list[Any]) -> list[str]:
    return [
        item.text_content or "" for item in items if item.type == "message" and item.role == "user"
    ]


async def _worker(args: argparse.Namespace) -> None:
    from frontdesk.workflows.definition import load_workflow
    from frontdesk.workflows.runtime import Call, start_call
    from frontdesk.workflows.runtime.persistence import REDIS_URL_ENV, open_persistence

    workflow = load_workflow(args.config)
    os.environ[REDIS_URL_ENV] = args.redis_url
    overrides = {"mode": args.mode, "key_prefix": PREFIX, "durability": args.durability}
    state = workflow.config.state.model_copy(update=overrides)
    # The bench measures turns, resumes and Redis on the shipped support flow; a caller resumed
    # by caller ID repeating a sensitive field first is a security rule (tests/security), so the
    # simulated callers' account number is not sensitive here.
    fields = {
        name: spec.model_copy(update={"sensitive": False})
        for name, spec in workflow.config.caller_data.items()
    }
    config = workflow.config.model_copy(update={"state": state, "caller_data": fields})
    workflow = dataclasses.replace(workflow, config=config)
    write_lock = asyncio.Lock()
    latencies: list[float] = []
    appends = 0

    async def emit(message: dict[str, Any]) -> None:
        async with write_lock:
            sys.stdout.write("@@" + json.dumps(message) + "\n")
            sys.stdout.flush()

    async with open_persistence(workflow, allow_embedded=False) as configured:
        persistence = dataclasses.replace(configured, owner=args.owner)
        store = persistence.store
        append = store.append

        async def timed_append(*a: Any, **kw: Any) -> int:
            nonlocal appends
            started = time.perf_counter()
            count = await append(*a, **kw)
            latencies.append((time.perf_counter() - started) * 1000)
            appends += 1
            return count

        setattr(store, "append", timed_append)  # noqa: B010 (the instance's, for timing)
        calls: dict[str, Call] = {}

        async def handle(command: dict[str, Any]) -> None:
            rid = command.get("rid")
            op = command["op"]
            caller = command.get("caller", "")
            try:
                if op == "open":
                    old = calls.pop(caller, None)
                    if old is not None:
                        await old.aclose("next call")
                    call = await asyncio.wait_for(
                        start_call(
                            workflow=workflow, caller_identity=caller, persistence=persistence
                        ),
                        60,
                    )
                    calls[caller] = call
                    acked = await call.flush(30)
                    await emit(
                        {
                            "rid": rid,
                            "event": "opened",
                            "session_id": call.session_id,
                            "resumed": call.resumed,
                            "agent": call.session.current_agent.id,
                            "user_texts": _user_texts(list(call.session.history.items)),
                            "acked": acked,
                            "plan": call.plan.reason if call.plan is not None else "",
                            "stored_agent": (
                                call.plan.state.current_agent
                                if call.plan is not None and call.plan.state is not None
                                else ""
                            ),
                        }
                    )
                elif op == "say":
                    call = calls[caller]
                    await asyncio.wait_for(call.session.run(user_input=command["text"]), 60)
                    acked = await call.flush(30)
                    await emit(
                        {
                            "rid": rid,
                            "event": "ack" if acked else "unacked",
                            "agent": call.session.current_agent.id,
                        }
                    )
                elif op == "drop":
                    dropped = calls.pop(caller, None)
                    if dropped is not None:
                        await dropped.aclose("caller dropped")
                    await emit({"rid": rid, "event": "closed"})
                else:
                    await emit({"rid": rid, "event": "error", "error": f"unknown op {op!r}"})
            except Exception as exc:
                await emit({"rid": rid, "event": "error", "error": f"{type(exc).__name__}: {exc}"})

        async def report() -> None:
            while True:
                await asyncio.sleep(0.5)
                if latencies:
                    batch = latencies[:]
                    latencies.clear()
                    await emit({"event": "latency", "ms": batch})

        loop = asyncio.get_running_loop()
        reporter = asyncio.create_task(report())
        tasks: set[asyncio.Task[None]] = set()
        await emit({"event": "ready", "pid": os.getpid()})
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            command = json.loads(line)
            if command.get("op") == "exit":
                break
            task = asyncio.create_task(handle(command))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        reporter.cancel()
        if latencies:
            await emit({"event": "latency", "ms": latencies[:]})
        for call in list(calls.values()):
            with contextlib.suppress(Exception):
                await call.aclose("worker exiting")
        await emit({"event": "bye", "appends": appends})


def worker_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale --worker")
    parser.add_argument("--worker", action="store_true", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--mode", default="standalone", choices=["standalone", "cluster"])
    parser.add_argument("--durability", default="leader", choices=["leader", "replica"])
    parser.add_argument("--owner", default=f"worker-{os.getpid()}")
    parser.add_argument("--config", default=str(CONFIG))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(_worker(args))
    return 0


# =========================================================================== the parent


class WorkerDied(Exception):
    pass


class WorkerProcess:
    """One worker process and its request/answer plumbing."""

    def __init__(self, slot: int, generation: int, process: asyncio.subprocess.Process) -> None:
        self.slot = slot
        self.name = f"w{slot}.{generation}"
        self.process = process
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.next_rid = 0
        self.alive = True
        self.ready = asyncio.get_running_loop().create_future()
        self.latencies: list[float] = []
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def spawn(
        cls, slot: int, generation: int, *, url: str, mode: str, durability: str, log: Path
    ) -> WorkerProcess:
        env = {**os.environ, "FRONTDESK_STATE_SECRET": SECRET}
        env.pop("FRONTDESK_REDIS_URL", None)
        with log.open("ab") as stderr:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.scale",
                "--worker",
                "--redis-url",
                url,
                "--mode",
                mode,
                "--durability",
                durability,
                "--owner",
                f"w{slot}.{generation}",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
                cwd=REPO,
                env=env,
            )
        worker = cls(slot, generation, process)
        await asyncio.wait_for(worker.ready, 120)
        return worker

    async def _read(self) -> None:
        assert self.process.stdout is not None
        try:
            while True:
                line = await self.process.stdout.readline()
                if not line:
                    break
                if not line.startswith(b"@@"):
                    continue
                message = json.loads(line[2:])
                event = message.get("event")
                if event == "ready":
                    if not self.ready.done():
                        self.ready.set_result(message)
                elif event == "latency":
                    self.latencies.extend(message["ms"])
                elif "rid" in message:
                    future = self.pending.pop(message["rid"], None)
                    if future is not None and not future.done():
                        future.set_result(message)
        finally:
            self.alive = False
            if not self.ready.done():
                self.ready.set_exception(WorkerDied(f"{self.name} exited before it was ready"))
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(WorkerDied(self.name))
            self.pending.clear()

    async def request(self, op: str, **fields: Any) -> dict[str, Any]:
        if not self.alive or self.process.stdin is None:
            raise WorkerDied(self.name)
        rid = self.next_rid
        self.next_rid += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[rid] = future
        try:
            self.process.stdin.write(json.dumps({"op": op, "rid": rid, **fields}).encode() + b"\n")
            await self.process.stdin.drain()
        except (BrokenPipeError, ConnectionResetError, RuntimeError) as exc:
            self.pending.pop(rid, None)
            raise WorkerDied(self.name) from exc
        answer = await asyncio.wait_for(future, 120)
        if answer.get("event") == "error":
            raise RuntimeError(f"{self.name}: {answer['error']}")
        return answer

    def cpu_seconds(self) -> float:
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return 0.0

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        if self.alive and self.process.stdin is not None:
            with contextlib.suppress(Exception):
                self.process.stdin.write(b'{"op": "exit"}\n')
                await self.process.stdin.drain()
        try:
            await asyncio.wait_for(self.process.wait(), 20)
        except TimeoutError:
            self.kill()
            await self.process.wait()
        await asyncio.gather(self.reader, return_exceptions=True)


@dataclass
class SimSettings:
    workers: int = 4
    callers: int = 40
    extra_turns: int = 4
    think: tuple[float, float] = (0.05, 0.3)
    drop_probability: float = 0.12
    kill_every: float | None = 6.0
    """Roughly the least time between two worker kills (None: no kill); kills are spread over
    the run's progress (acknowledged turns)."""
    max_kills: int = 2
    respawn: bool = True
    durability: str = "leader"
    seed: int = 19
    log_dir: Path = field(default_factory=lambda: Path("/tmp"))


@dataclass
class Tally:
    turns_acked: int = 0
    turns_unacked: int = 0
    drops: int = 0
    resumes: int = 0
    resumes_right_agent: int = 0
    resumes_wrong: list[str] = field(default_factory=list)
    not_resumed: int = 0
    crash_reconnects: int = 0
    inflight_found_stored: int = 0
    repeated_in_flight: int = 0
    kills: int = 0
    lost: int = 0
    duplicated: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class CallerRecord:
    caller: str
    lines: list[str]
    agents: list[str] = field(default_factory=list)
    """The agent holding the call after each line."""
    session_id: str = ""
    acked: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.agents:
            self.agents = [agent_after(turn + 1) for turn in range(len(self.lines))]

    def agent_after(self, done: int) -> str:
        return "receptionist" if done == 0 else self.agents[done - 1]


class RedisTarget:
    """Where the workers' Redis is: its URL, mode, and the master nodes to read counters from."""

    def __init__(self, url: str, mode: str, masters: Callable[[], list[int]], label: str) -> None:
        self.url = url
        self.mode = mode
        self.masters = masters
        self.label = label

    def stored_caller_lines(self, session_id: str) -> list[str]:
        """The caller's lines stored for a session (snapshot + item list), in order."""
        from redis import Redis
        from redis.exceptions import ResponseError

        _, items_key, snap_key, _, _ = session_keys(session_id)
        for port in self.masters():
            with Redis(host="127.0.0.1", port=port) as node:
                try:
                    pipe = node.pipeline(transaction=False)
                    pipe.get(snap_key)
                    pipe.lrange(items_key, 0, -1)
                    snap, tail = pipe.execute()
                except ResponseError:  # MOVED: another master owns this session
                    continue
            items = json.loads(b"[" + snap + b"]") if snap else []
            items += [json.loads(element) for element in tail]
            return [
                " ".join(part for part in item.get("content", []) if isinstance(part, str))
                for item in items
                if item.get("type") == "message" and item.get("role") == "user"
            ]
        raise RuntimeError(f"no master holds session {session_id}")

    def memory_usage(self, keys: list[str]) -> int:
        """``MEMORY USAGE … SAMPLES 0`` summed over ``keys``, each asked of the master owning it."""
        from redis import Redis
        from redis.exceptions import ResponseError

        total = 0
        remaining = list(keys)
        for port in self.masters():
            with Redis(host="127.0.0.1", port=port) as node:
                for key in list(remaining):
                    try:
                        used = node.memory_usage(key, samples=0)
                    except ResponseError:  # MOVED: another master owns it
                        continue
                    total += int(used or 0)
                    remaining.remove(key)
        return total

    def cpu_seconds(self) -> float:
        """``used_cpu_user`` + ``used_cpu_sys`` of every master (Redis's own CPU time)."""
        from redis import Redis

        total = 0.0
        for port in self.masters():
            with Redis(host="127.0.0.1", port=port) as node:
                info = node.info("cpu")
                total += float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
        return total

    def commands_processed(self) -> int:
        from redis import Redis

        total = 0
        for port in self.masters():
            with Redis(host="127.0.0.1", port=port) as node:
                total += int(node.info("stats")["total_commands_processed"])
        return total


async def simulate(target: RedisTarget, settings: SimSettings) -> dict[str, Any]:
    """Run the simulation; returns the figures (see the module docstring)."""
    from frontdesk.state.identity import caller_hash

    rng = random.Random(settings.seed)
    tally = Tally()
    log = settings.log_dir / f"scale-workers-{os.getpid()}.log"
    generations = [0] * settings.workers
    spawn: Callable[[int], Awaitable[WorkerProcess]] = lambda slot: WorkerProcess.spawn(  # noqa: E731
        slot,
        generations[slot],
        url=target.url,
        mode=target.mode,
        durability=settings.durability,
        log=log,
    )
    started_spawn = time.monotonic()
    workers: list[WorkerProcess] = list(
        await asyncio.gather(*(spawn(slot) for slot in range(settings.workers)))
    )
    spawn_seconds = time.monotonic() - started_spawn
    retired: list[WorkerProcess] = []
    cpu_of_retired = 0.0
    cpu_base = {w.name: w.cpu_seconds() for w in workers}

    def pick(exclude: WorkerProcess | None) -> WorkerProcess:
        live = [w for w in workers if w.alive and w is not exclude]
        if not live:
            live = [w for w in workers if w.alive]
        if not live:
            raise RuntimeError("every worker is dead")
        return rng.choice(live)

    commands_before = target.commands_processed()
    redis_cpu_before = target.cpu_seconds()
    wall_started = time.monotonic()
    records: list[CallerRecord] = []

    async def reconnect(
        record: CallerRecord,
        old: WorkerProcess | None,
        done: int,
        in_flight: str | None,
        why: str = "crash",
    ) -> tuple[WorkerProcess, int]:
        """Open the caller's call on another worker; returns it and the lines done so far."""
        for _ in range(20):
            worker = pick(old)
            try:
                opened = await worker.request("open", caller=record.caller)
            except WorkerDied:
                old = worker
                continue
            stored = opened["user_texts"]
            now_done = done
            if in_flight is not None and stored[-1:] == [in_flight]:
                now_done = done + 1
                tally.inflight_found_stored += 1
            tally.resumes += 1
            if not opened["resumed"] or opened["session_id"] != record.session_id:
                tally.not_resumed += 1
            expected = {record.agent_after(now_done)}
            if now_done > done:  # the stored in-flight turn may lack its handoff
                expected.add(record.agent_after(done))
            if now_done > done and opened["agent"] != record.agent_after(now_done):
                # The dead worker stored the caller's words but not the handoff they asked
                # for: the caller, who never heard an answer, says it again.
                assert in_flight is not None
                record.lines.insert(now_done, AGAIN + in_flight)
                record.agents.insert(now_done, record.agents[now_done - 1])
                record.agents[now_done - 1] = record.agent_after(done)
                tally.repeated_in_flight += 1
            if opened["agent"] in expected:
                tally.resumes_right_agent += 1
            else:
                tally.resumes_wrong.append(
                    f"{record.caller}: on {opened['agent']} after {now_done} turns ({why}, "
                    f"{old.name if old else '-'} -> {worker.name}, stored {len(stored)} lines, "
                    f"resumed={opened['resumed']}, stored agent {opened.get('stored_agent')}: "
                    f"{opened.get('plan')})"
                )
            return worker, now_done
        raise RuntimeError(f"{record.caller}: could not reconnect")

    async def caller(index: int) -> None:
        record = CallerRecord(
            caller=f"+1555{800000 + index:07d}", lines=caller_lines(settings.extra_turns)
        )
        records.append(record)
        await asyncio.sleep(rng.uniform(0, settings.think[1] * 4))
        worker = pick(None)
        for _ in range(20):
            try:
                opened = await worker.request("open", caller=record.caller)
                break
            except WorkerDied:  # killed while starting the call: the caller simply calls again
                worker = pick(worker)
        else:
            raise RuntimeError(f"{record.caller}: no worker could start the call")
        record.session_id = opened["session_id"]
        done = 0
        while done < len(record.lines):
            await asyncio.sleep(rng.uniform(*settings.think))
            if done > 0 and rng.random() < settings.drop_probability:
                tally.drops += 1
                dropping = worker
                if rng.random() < 0.5:
                    why = "drop"
                    with contextlib.suppress(WorkerDied):
                        await dropping.request("drop", caller=record.caller)
                else:  # the caller is back elsewhere before the old worker has closed
                    why = "drop, back before the close"
                    closing = asyncio.create_task(dropping.request("drop", caller=record.caller))
                    closing.add_done_callback(lambda t: t.exception())
                worker, done = await reconnect(record, dropping, done, None, why)
                continue
            text = record.lines[done]
            try:
                answer = await worker.request("say", caller=record.caller, text=text)
            except WorkerDied:
                tally.crash_reconnects += 1
                worker, done = await reconnect(record, worker, done, text)
                continue
            if answer["event"] == "ack":
                record.acked.append(text)
                tally.turns_acked += 1
            else:
                tally.turns_unacked += 1
            done += 1
        with contextlib.suppress(WorkerDied):
            await worker.request("drop", caller=record.caller)

    async def killer() -> None:
        nonlocal cpu_of_retired
        if settings.kill_every is None:
            return
        expected = settings.callers * (len(SCRIPT) + settings.extra_turns)
        while tally.kills < settings.max_kills:
            # Kill at evenly spread points of the run's progress (so a kill always lands on
            # live calls, however fast or slow the machine), at least kill_every apart.
            await asyncio.sleep(settings.kill_every * rng.uniform(0.2, 0.4))
            share = (tally.kills + rng.uniform(0.6, 1.0)) / (settings.max_kills + 1)
            while tally.turns_acked < expected * share:
                await asyncio.sleep(0.02)
            live = [w for w in workers if w.alive]
            if len(live) < 2:
                continue
            victim = rng.choice(live)
            cpu_of_retired += victim.cpu_seconds() - cpu_base.get(victim.name, 0.0)
            victim.kill()
            tally.kills += 1
            retired.append(victim)
            if settings.respawn:
                generations[victim.slot] += 1
                replacement = await spawn(victim.slot)
                cpu_base[replacement.name] = replacement.cpu_seconds()
                workers[victim.slot] = replacement

    killing = asyncio.create_task(killer())
    callers = [asyncio.create_task(caller(i)) for i in range(settings.callers)]
    try:
        results = await asyncio.gather(*callers, return_exceptions=True)
    finally:
        killing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await killing
    wall = time.monotonic() - wall_started
    commands = target.commands_processed() - commands_before
    redis_cpu = target.cpu_seconds() - redis_cpu_before
    for result in results:
        if isinstance(result, BaseException):
            tally.errors.append(f"{type(result).__name__}: {result}")
    cpu_workers = cpu_of_retired + sum(
        w.cpu_seconds() - cpu_base.get(w.name, 0.0) for w in workers if w.alive
    )
    await asyncio.gather(*(w.stop() for w in workers))
    for w in retired:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(w.process.wait(), 10)
        await asyncio.gather(w.reader, return_exceptions=True)
    latencies = sorted(ms for w in [*workers, *retired] for ms in w.latencies)

    # Read every session back, with plain commands on the master owning each session (an
    # independent reader: it does not trust the store's own load).
    memory: list[int] = []
    for record in records:
        if not record.session_id:
            tally.errors.append(f"{record.caller}: never got a session")
            continue
        said = await asyncio.to_thread(target.stored_caller_lines, record.session_id)
        tally.lost += sum(1 for text in record.acked if text not in said)
        tally.duplicated += len(said) - len(set(said))
        if said != record.lines:
            tally.errors.append(f"{record.caller}: stored lines {said[-3:]} differ")
        index = f"{PREFIX}:caller:{caller_hash(record.caller, SECRET.encode())}"
        memory.append(
            await asyncio.to_thread(target.memory_usage, [*session_keys(record.session_id), index])
        )

    def pct(q: float) -> float | None:
        if not latencies:
            return None
        position = (len(latencies) - 1) * q / 100
        low = int(position)
        high = min(low + 1, len(latencies) - 1)
        return latencies[low] + (latencies[high] - latencies[low]) * (position - low)

    turns_total = tally.turns_acked + tally.turns_unacked
    return {
        "redis": target.label,
        "durability": settings.durability,
        "workers": settings.workers,
        "calls": len(records),
        "turns": tally.turns_acked,
        "turns_unacknowledged": tally.turns_unacked,
        "drops": tally.drops,
        "worker_kills": tally.kills,
        "crash_reconnects": tally.crash_reconnects,
        "in_flight_turns_found_stored": tally.inflight_found_stored,
        "in_flight_turns_said_again": tally.repeated_in_flight,
        "resumes": tally.resumes,
        "resumes_right_agent": tally.resumes_right_agent,
        "resumes_not_resumed": tally.not_resumed,
        "resumes_wrong": tally.resumes_wrong[:10],
        "turns_lost": tally.lost,
        "turns_duplicated": tally.duplicated,
        "persist_ms_p50": pct(50),
        "persist_ms_p99": pct(99),
        "persist_samples": len(latencies),
        "redis_commands": commands,
        "redis_ops_per_s": commands / wall if wall > 0 else None,
        "redis_commands_per_turn": commands / max(1, turns_total),
        "redis_bytes_per_session": sum(memory) / max(1, len(memory)),
        "redis_cpu_s": redis_cpu,
        "redis_cpu_us_per_turn": 1e6 * redis_cpu / max(1, turns_total),
        "wall_s": wall,
        "worker_spawn_s": spawn_seconds,
        "worker_cpu_s": cpu_workers,
        "worker_cpu_ms_per_turn": 1000 * cpu_workers / max(1, turns_total),
        "turns_per_s": turns_total / wall if wall > 0 else None,
        "errors": tally.errors[:10],
    }


def summary_line(figures: dict[str, Any]) -> str:
    return (
        f"[scale {figures['redis']}, durability={figures['durability']}] "
        f"workers={figures['workers']} calls={figures['calls']} turns={figures['turns']} "
        f"drops={figures['drops']} worker kills={figures['worker_kills']} "
        f"resumes={figures['resumes']} on the right agent={figures['resumes_right_agent']} "
        f"turns lost={figures['turns_lost']} duplicated={figures['turns_duplicated']} "
        f"persist p50/p99={_ms(figures['persist_ms_p50'])}/{_ms(figures['persist_ms_p99'])} ms "
        f"Redis ops/s={figures['redis_ops_per_s']:.0f} "
        f"({figures['redis_commands_per_turn']:.1f} per turn) "
        f"Redis/session={figures['redis_bytes_per_session'] / 1024:.1f} KiB "
        f"Redis CPU/turn={figures['redis_cpu_us_per_turn']:.0f} µs "
        f"worker CPU/turn={figures['worker_cpu_ms_per_turn']:.1f} ms "
        f"turns/s={figures['turns_per_s']:.1f} wall={figures['wall_s']:.1f}s"
    )


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


# =========================================================================== python -m bench


async def run(ctx: Any) -> dict[str, Any]:
    """The ``scale`` entry of ``python -m bench``: standalone, then a 3-master Cluster."""
    from bench.common import Target, make_table, targets_table, write_json
    from bench.topology import LocalCluster

    quick = bool(ctx.quick)
    settings = SimSettings(
        workers=4,
        callers=40 if quick else 160,
        extra_turns=2 if quick else 6,
        think=(0.05, 0.3) if quick else (0.2, 1.0),
        kill_every=4.0 if quick else 8.0,
        max_kills=1 if quick else 3,
    )
    ctx.console.rule(
        f"[bold]scale[/]: {settings.workers} worker processes, {settings.callers} callers "
        "hopping between them, workers SIGKILLed"
    )
    runs: list[dict[str, Any]] = []
    with ctx.task("scale", 2) as task:
        server = ctx.redis
        standalone = RedisTarget(server.url, "standalone", lambda: [server.port], "standalone")
        runs.append(await simulate(standalone, settings))
        ctx.console.print(summary_line(runs[-1]))
        ctx.advance(task)
        cluster = await asyncio.to_thread(LocalCluster(masters=3, replicas=1).start)
        try:

            def masters() -> list[int]:
                return [n.port for n in cluster.topology() if n.role == "master"]

            target = RedisTarget(cluster.seed_url, "cluster", masters, "cluster 3+3")
            runs.append(await simulate(target, dataclasses.replace(settings, seed=20)))
            ctx.console.print(summary_line(runs[-1]))
        finally:
            await asyncio.to_thread(cluster.stop)
        ctx.advance(task)
    rows = [
        [
            r["redis"],
            f"{r['calls']}",
            f"{r['turns']}",
            f"{r['resumes']} / {r['resumes_right_agent']}",
            f"{r['worker_kills']}",
            f"{r['turns_lost']} / {r['turns_duplicated']}",
            f"{_ms(r['persist_ms_p50'])} / {_ms(r['persist_ms_p99'])}",
            f"{r['redis_ops_per_s']:.0f}",
            f"{r['redis_bytes_per_session'] / 1024:.1f} KiB",
            f"{r['redis_cpu_us_per_turn']:.0f}",
            f"{r['worker_cpu_ms_per_turn']:.1f}",
        ]
        for r in runs
    ]
    ctx.console.print(
        make_table(
            "scale: calls over K worker processes sharing one Redis",
            [
                "Redis",
                "calls",
                "turns",
                "resumes / on the right agent",
                "worker kills",
                "turns lost / duplicated",
                "persist ms p50 / p99",
                "Redis ops/s",
                "Redis / session",
                "Redis CPU µs / turn",
                "worker CPU ms / turn",
            ],
            rows,
        )
    )
    targets = [
        Target(
            name=f"turns lost ({r['redis']})",
            target="0",
            measured=str(r["turns_lost"]),
            holds=r["turns_lost"] == 0,
        )
        for r in runs
    ] + [
        Target(
            name=f"turns duplicated ({r['redis']})",
            target="0",
            measured=str(r["turns_duplicated"]),
            holds=r["turns_duplicated"] == 0,
        )
        for r in runs
    ]
    ctx.console.print(targets_table(targets))
    payload = {
        "description": "K worker processes, callers hopping between them, workers killed",
        "settings": {
            **{k: v for k, v in dataclasses.asdict(settings).items() if k != "log_dir"},
        },
        "results": runs,
        "targets": [t.as_json() for t in targets],
    }
    path = write_json(ctx, "scale", payload)
    ctx.console.print(f"[dim]wrote {path}[/]")
    return payload


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1:]))
