"""The workflow versions live sessions use, kept in Redis so any worker can resume a call on the
version it started with after the config changed (live reload).

``P:wf:<content hash>`` holds one version's normalised config (JSON), with the state's ``ttl``:
every call start and end refreshes the version it runs, so a version outlives the last session
using it by at least ``ttl``. A version that has expired (or was never kept) is *gone*: a call
resumed under it follows the rule for a changed workflow (:func:`frontdesk.state.resume.plan_resume`).
"""

from __future__ import annotations

from typing import Any, Protocol

from frontdesk.state.keys import KeyLayout


class WorkflowVersions(Protocol):
    """Where workflow versions are kept, by content hash."""

    async def keep(self, content_hash: str, document: bytes) -> None: ...

    async def get(self, content_hash: str) -> bytes | None: ...


class RedisWorkflowVersions:
    """:class:`WorkflowVersions` on Redis: ``SET P:wf:<hash> <document> PX <ttl>``."""

    def __init__(self, client: Any, *, key_prefix: str, ttl: float) -> None:
        self._client = client
        self._keys = KeyLayout(key_prefix)
        self._ttl_ms = max(1, int(ttl * 1000))

    async def keep(self, content_hash: str, document: bytes) -> None:
        await self._client.set(self._keys.workflow_version(content_hash), document, px=self._ttl_ms)

    async def get(self, content_hash: str) -> bytes | None:
        raw = await self._client.get(self._keys.workflow_version(content_hash))
        return bytes(raw) if raw is not None else None


class MemoryWorkflowVersions:
    """:class:`WorkflowVersions` in this process only (tests, calls without Redis)."""

    def __init__(self) -> None:
        self.kept: dict[str, bytes] = {}

    async def keep(self, content_hash: str, document: bytes) -> None:
        self.kept[content_hash] = document

    async def get(self, content_hash: str) -> bytes | None:
        return self.kept.get(content_hash)
