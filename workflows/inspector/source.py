"""Where the inspector reads sessions: the state layer's store, plus two facts it has no call for.

Everything about a session comes from :class:`~frontdesk.state.redis_store.RedisSessionStore`
(``list_sessions``, ``load``, ``delete``). Two things the store's Protocol does not answer are
read from the key layout it documents (``session_keys`` / ``quarantine_keys``): whether a
worker holds a session's lease right now (its state is then *live*), and which sessions were
quarantined (moved aside as corrupt; ``load`` no longer sees them).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from frontdesk.errors import SessionNotFoundError, StateError
from frontdesk.state.connection import redact_url
from frontdesk.state.crypto import DataKeyError, DataKeys, open_sealed
from frontdesk.state.identity import DEVELOPMENT_SECRET, SECRET_ENV
from frontdesk.state.keys import KeyLayout, is_session_id
from frontdesk.state.local_dir import default_state_dir, local_redis
from frontdesk.state.models import SessionState
from frontdesk.state.redis_store import RedisSessionStore
from frontdesk.workflows.definition import StateSection, Workflow
from frontdesk.workflows.runtime import configured_redis_url, connect_state_redis

from .views import SessionRow, quarantined_row, row_of, session_state

logger = logging.getLogger(__name__)

MAX_TRAILS = 2000
"""Sessions whose handoff trails are counted on the workflow page (most recent first)."""


@dataclass
class RedisSource:
    """Read (and, when allowed, delete) sessions of one store."""

    store: RedisSessionStore
    client: Any
    settings: StateSection
    where: str
    """Where the sessions are, for the page header (a URL without its password, or a folder)."""
    keys: DataKeys | None = None
    """The data keys that open sealed (sensitive) values: the page shows them masked, never raw."""

    async def rows(self) -> list[SessionRow]:
        """Every stored session and every quarantined one, most recently updated first."""
        now = time.time()
        summaries = await self.store.list_sessions()
        pipe = self.client.pipeline(transaction=False)
        for summary in summaries:
            meta, _, _, _, lease = self.store.session_keys(summary.session_id)
            pipe.exists(lease)
            pipe.hmget(meta, ["calls", "workflow_hash"])
        try:
            replies = await pipe.execute(raise_on_error=False)
        except Exception as exc:
            raise StateError(f"Redis is unreachable while listing sessions: {exc}") from exc
        rows: list[SessionRow] = []
        for index, summary in enumerate(summaries):
            live_reply, meta_reply = replies[2 * index], replies[2 * index + 1]
            live = live_reply is True or (isinstance(live_reply, int) and live_reply > 0)
            calls_raw, hash_raw = meta_reply if isinstance(meta_reply, list) else [None, None]
            calls = _json(calls_raw)
            last_call = calls[-1] if isinstance(calls, list) and calls else None
            workflow_hash = _json(hash_raw)
            rows.append(
                row_of(
                    summary,
                    state=session_state(
                        summary,
                        live=live,
                        last_call=last_call if isinstance(last_call, dict) else None,
                        now=now,
                        resume_window=self.settings.resume_window,
                    ),
                    workflow_hash=workflow_hash if isinstance(workflow_hash, str) else "",
                )
            )
        rows.extend(await self._quarantined())
        rows.sort(key=lambda row: row.updated_at or 0.0, reverse=True)
        return rows

    async def _quarantined(self) -> list[SessionRow]:
        layout = KeyLayout(self.store.key_prefix)
        ids: set[str] = set()
        try:
            async for key in self.client.scan_iter(match=layout.meta_pattern("q"), count=500):
                session_id = layout.session_id_of(bytes(key))
                if session_id is not None and is_session_id(session_id):
                    ids.add(session_id)
        except Exception as exc:
            raise StateError(f"Redis is unreachable while listing sessions: {exc}") from exc
        rows = []
        for session_id in sorted(ids):
            rows.append(quarantined_row(session_id, await self.quarantined_meta(session_id)))
        return rows

    async def quarantined_meta(self, session_id: str) -> dict[str, Any]:
        """What still decodes of a quarantined session's meta (empty if none, or not a hash)."""
        try:
            meta_key = self.store.quarantine_keys(session_id)[0]
        except StateError:
            return {}
        try:
            if await self.client.type(meta_key) != b"hash":
                return {
                    "_exists": bool(
                        await self.client.exists(*self.store.quarantine_keys(session_id))
                    )
                }
            raw = await self.client.hgetall(meta_key)
        except Exception as exc:
            raise StateError(f"Redis is unreachable while reading {session_id!r}: {exc}") from exc
        decoded: dict[str, Any] = {"_exists": True}
        for name, value in raw.items():
            field = bytes(name).decode("utf-8", "replace")
            parsed = _json(value)
            decoded[field] = (
                parsed if parsed is not None else bytes(value).decode("utf-8", "replace")
            )
        return decoded

    async def is_live(self, session_id: str) -> bool:
        try:
            lease = self.store.session_keys(session_id)[4]
        except StateError:
            return False
        return bool(await self.client.exists(lease))

    async def load(self, session_id: str) -> SessionState:
        """The whole session; ``SessionNotFoundError`` when nothing (or only quarantine) is there.

        Sealed values are opened with :attr:`keys` (the page masks them: a transcript line reads
        "it's •••", not a ciphertext); what no key opens stays sealed and shows as encrypted.
        """
        state = await self.store.load(session_id)
        if self.keys is None:
            return state
        opened = open_sealed(state.model_dump(mode="json"), self.keys, context=session_id)
        return SessionState.model_validate(opened)

    async def delete(self, session_id: str) -> None:
        await self.store.delete(session_id)

    async def trails(self, workflow_name: str) -> list[list[tuple[str | None, str]]]:
        """The handoff trails of the stored sessions of ``workflow_name`` (newest first)."""
        trails: list[list[tuple[str | None, str]]] = []
        summaries = [s for s in await self.store.list_sessions() if s.workflow == workflow_name]
        for summary in summaries[:MAX_TRAILS]:
            try:
                state = await self.store.load(summary.session_id)
            except (SessionNotFoundError, StateError) as exc:
                logger.info("session %s skipped in route counts: %s", summary.session_id, exc)
                continue
            trails.append([(entry.from_agent, entry.to_agent) for entry in state.handoff_trail])
        return trails


def _json(value: object) -> Any:
    if not isinstance(value, bytes | bytearray | str):
        return None
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return None


@contextlib.asynccontextmanager
async def open_source(
    workflow: Workflow, *, state_dir: Path | None = None
) -> AsyncIterator[RedisSource]:
    """The sessions of ``workflow``'s Redis: ``FRONTDESK_REDIS_URL``, ``[state] redis_url``, or the
    embedded server's data folder (``state_dir``, default the one ``frontdesk demo`` writes)."""
    settings = workflow.config.state
    url = configured_redis_url(workflow)
    async with contextlib.AsyncExitStack() as stack:
        if url and state_dir is None:
            where = redact_url(url)
        else:
            folder = state_dir or default_state_dir()
            url = await stack.enter_async_context(local_redis(folder))
            where = f"embedded redis-server, data in {folder}"
        client = connect_state_redis(url, settings)
        stack.push_async_callback(client.aclose)
        # Reading and deleting never hash a caller identity: the secret is not needed here.
        secret = os.environ.get(SECRET_ENV, "").encode() or DEVELOPMENT_SECRET
        store = RedisSessionStore.from_settings(settings, client=client, caller_secret=secret)
        try:
            keys: DataKeys | None = DataKeys.from_env(secret)
        except DataKeyError as exc:
            logger.warning("sealed values stay encrypted on the pages: %s", exc)
            keys = None
        yield RedisSource(store=store, client=client, settings=settings, where=where, keys=keys)
