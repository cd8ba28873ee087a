"""What one append costs Redis: a bounded number of commands, whatever the history length.

Counted with MONITOR (every command a script runs shows as ``client_type == "lua"``), so the
figure is what the server executes, not what the script's text suggests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from frontdesk.state import EmbeddedRedis, RedisSessionStore, SessionState, connect_redis

Item = dict[str, Any]
MAX_COMMANDS_PER_APPEND = 8


async def _commands_run_by(
    redis_server: EmbeddedRedis, action: Callable[[], Any]
) -> tuple[list[str], list[str]]:
    """(commands the client sent, commands run inside scripts) while ``action`` runs."""
    watcher = connect_redis(redis_server.url)
    marker = connect_redis(redis_server.url)
    await marker.ping()  # its connection handshake happens before MONITOR starts
    seen: list[tuple[str, str]] = []
    try:
        async with watcher.monitor() as monitor:
            await action()
            await marker.echo("end-of-append-marker")
            while True:
                command = await asyncio.wait_for(monitor.next_command(), 5)
                if "end-of-append-marker" in command["command"]:
                    break
                seen.append((command["client_type"], command["command"].split(" ")[0].upper()))
    finally:
        await watcher.aclose()
        await marker.aclose()
    return (
        [name for source, name in seen if source != "lua"],
        [name for source, name in seen if source == "lua"],
    )


async def test_an_append_runs_at_most_eight_redis_commands_with_or_without_a_snapshot(
    redis_client: Any,
    redis_server: EmbeddedRedis,
    make_store: Callable[..., RedisSessionStore],
    new_state: Callable[..., SessionState],
    chat_item: Callable[..., Item],
) -> None:
    store = make_store(redis_client, snapshot_every=1000)
    lease = await store.claim("cost-1", owner="worker-a")
    # created with items: they live in the snapshot, so every key of the session exists
    await store.create(
        new_state("cost-1", items=[chat_item(i) for i in range(30)]),
        lease=lease,
        caller_identity=None,
    )
    count = await store.append(lease, items=[chat_item(99)], meta_update={}, base_len=30)
    for turn in range(3):

        async def one_turn(turn: int = turn) -> None:
            nonlocal count
            count = await store.append(
                lease,
                items=[chat_item(100 + 2 * turn), chat_item(101 + 2 * turn)],
                meta_update={"turns": turn + 1, "current_agent": "support"},
                base_len=count,
            )

        sent, inside = await _commands_run_by(redis_server, one_turn)
        assert sent == ["EVALSHA"]
        assert {"RPUSH", "HSET", "PEXPIRE"} <= set(inside)
        assert len(inside) <= MAX_COMMANDS_PER_APPEND, inside
    assert count == 37
    loaded = await store.load("cost-1")
    assert [item["id"] for item in loaded.items][-2:] == [
        chat_item(104)["id"],
        chat_item(105)["id"],
    ]


async def test_a_second_writer_compacting_does_not_fool_the_first_writers_count(
    redis_client: Any,
    make_store: Callable[..., RedisSessionStore],
    new_state: Callable[..., SessionState],
    chat_item: Callable[..., Item],
) -> None:
    """The store remembers ``_snap_n`` to skip a read; a stale memory must be caught."""
    first = make_store(redis_client, snapshot_every=5)
    second = make_store(redis_client, snapshot_every=5)
    lease = await first.claim("cost-2", owner="worker-a")
    await first.create(new_state("cost-2"), lease=lease, caller_identity=None)
    count = await first.append(lease, items=[chat_item(0)], meta_update={}, base_len=0)
    # the same lease used through another store instance: it compacts the list into snap
    for index in range(1, 6):
        count = await second.append(lease, items=[chat_item(index)], meta_update={}, base_len=count)
    meta_key = first.session_keys("cost-2")[0]
    assert int(await redis_client.hget(meta_key, "_snap_n")) == 5
    # ``first`` still believes _snap_n is 0; its retry of an applied write is still a duplicate
    assert await first.append(lease, items=[chat_item(5)], meta_update={}, base_len=5) == 6
    count = await first.append(lease, items=[chat_item(6)], meta_update={}, base_len=6)
    assert count == 7
    loaded = await first.load("cost-2")
    assert [item["id"] for item in loaded.items] == [chat_item(i)["id"] for i in range(7)]
