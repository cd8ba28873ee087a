"""Shared fixtures: a real, private redis-server (never a fake) and a session store on it.

``redis_server`` is one server for the whole test run (starting one costs ~30 ms, but there is
no reason to pay it per test); ``redis_client`` empties it before each test, so tests do not see
each other's keys. Tests that crash or restart Redis take ``fault_redis``, a server of their own.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis, RedisCluster

from frontdesk.state import (
    EmbeddedRedis,
    Lease,
    RedisSessionStore,
    SessionState,
    connect_redis,
)
from frontdesk.workflows.definition import StateSection

TEST_CALLER_SECRET = b"test-caller-secret-0123456789abcdef"

SHIPPED_CONFIG = Path(__file__).resolve().parents[1] / "config.toml"


def config_without_sensitive_fields() -> str:
    """The shipped config.toml with its account number NOT sensitive.

    For tests of the resume mechanics themselves (the caller is not asked again, the history
    continues, the data comes back as stored): with the shipped config a caller resumed by
    caller ID repeats the sensitive account number first, which tests/security covers.
    """
    text = SHIPPED_CONFIG.read_text()
    assert text.count("sensitive = true\n") == 1, "the shipped config marks one field sensitive"
    return text.replace("sensitive = true\n", "sensitive = false\n")


@pytest.fixture(scope="session", autouse=True)
def _private_state_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Commands run by tests (``frontdesk demo`` …) keep their data in the run's tmp folder,
    not in the user's ``~/.local/state`` (subprocesses inherit it)."""
    os.environ["FRONTDESK_STATE_DIR"] = str(tmp_path_factory.mktemp("frontdesk-state"))


@pytest.fixture(scope="session")
def redis_server() -> Iterator[EmbeddedRedis]:
    """One private redis-server (AOF on) for the run."""
    with EmbeddedRedis() as server:
        yield server


@pytest.fixture
async def redis_client(redis_server: EmbeddedRedis) -> AsyncIterator[Redis | RedisCluster]:
    """A client of ``redis_server``, with the server emptied first."""
    client = connect_redis(redis_server.url)
    await client.flushall()
    yield client
    await client.aclose()


TEST_STATE_SETTINGS: dict[str, Any] = {
    "key_prefix": "test",
    "ttl": 3600.0,
    "lease_ttl": 5.0,
    "snapshot_every": 20,
}
"""Test-sized ``[state]`` keys (small snapshots, so compaction happens in tests); the size
bounds are production's."""


def _make_store(client: Redis | RedisCluster, **overrides: Any) -> RedisSessionStore:
    """A store built as production builds it, from ``[state]`` settings with test values.

    The settings are not validated here (``model_construct``), so that the store's own checks of
    bad values are what a test meets.
    """
    settings = StateSection.model_construct(**{**TEST_STATE_SETTINGS, **overrides})
    return RedisSessionStore.from_settings(
        settings, client=client, caller_secret=TEST_CALLER_SECRET
    )


@pytest.fixture
def make_store() -> Callable[..., RedisSessionStore]:
    """``make_store(client, **overrides)``: a store with test settings on any client."""
    return _make_store


@pytest.fixture
def store(redis_client: Redis | RedisCluster) -> RedisSessionStore:
    return _make_store(redis_client)


@pytest.fixture
def fault_redis() -> Iterator[EmbeddedRedis]:
    """A server of this test's own, to kill and restart (AOF everysec)."""
    with EmbeddedRedis() as server:
        yield server


@pytest.fixture
async def fault_client(fault_redis: EmbeddedRedis) -> AsyncIterator[Redis | RedisCluster]:
    """A client of ``fault_redis``, closed after the test."""
    client = connect_redis(fault_redis.url)
    yield client
    await client.aclose()


@pytest.fixture
def fault_store(fault_client: Redis | RedisCluster) -> RedisSessionStore:
    """A store with test settings on ``fault_redis``."""
    return _make_store(fault_client)


def _chat_item(index: int, *, size: int = 64) -> dict[str, Any]:
    """A LiveKit-shaped chat message item (as ChatContext.to_dict produces) of about ``size`` bytes."""
    text = f"message {index} " + "x" * max(0, size - 180)
    return {
        "id": f"item_{index:08d}",
        "type": "message",
        "role": "user" if index % 2 == 0 else "assistant",
        "content": [text],
        "interrupted": False,
        "extra": {},
        "metrics": {},
        "created_at": 1_700_000_000.0 + index,
    }


@pytest.fixture
def chat_item() -> Callable[..., dict[str, Any]]:
    """``chat_item(i, size=...)``: a LiveKit-shaped message item, distinct per index."""
    return _chat_item


@pytest.fixture
def new_state() -> Callable[..., SessionState]:
    """A factory of fresh session states: ``new_state("s1", items=[...], current_agent=...)``."""

    def build(session_id: str = "s1", **fields: Any) -> SessionState:
        now = time.time()
        values: dict[str, Any] = {
            "session_id": session_id,
            "workflow": "support_line",
            "workflow_hash": "abc123",
            "current_agent": "receptionist",
            "created_at": now,
            "updated_at": now,
        }
        values.update(fields)
        return SessionState(**values)

    return build


@pytest.fixture
def stored_session(
    store: RedisSessionStore,
    new_state: Callable[..., SessionState],
    chat_item: Callable[..., dict[str, Any]],
) -> Callable[[str], Awaitable[Lease]]:
    """``await stored_session(sid)``: 26 items stored in ``store`` (25 in the snapshot, one in
    the list tail) under a claim of ``worker-a``, whose lease it returns."""

    async def stored(sid: str) -> Lease:
        lease = await store.claim(sid, owner="worker-a")
        items = [chat_item(i) for i in range(25)]
        await store.create(new_state(sid, items=items), lease=lease, caller_identity=None)
        await store.append(lease, items=[chat_item(25)], meta_update={}, base_len=25)
        return lease

    return stored
