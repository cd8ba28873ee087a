"""A resumed call's stored items older than its window: kept as stored, read when needed.

A resume rebuilds only the latest ``[state.resume] context_items`` items as LiveKit items (what
the resumed agent's model can see; :func:`~.session.find_resume_plan`); the older ones stay
the JSON bytes Redis returned (:class:`~frontdesk.state.StoredItems`) until something reads
them: the call's transcript (at its end), a full rewrite of the session, and the background
check :func:`~.session.start_call` starts right after the first reply, which decodes them in
slices (yielding to the event loop between slices) and validates them as LiveKit items.

When they are not (JSON that does not parse, or JSON that is not a LiveKit chat item), the
stored session is quarantined as a load would quarantine it, the older items are dropped from
this call, and the call goes on with what it has: the recorder's next write finds the session
gone and stores the call anew (a full rewrite of the window and the new turns), while the
damaged copy stays under the quarantine keys for a human to inspect.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from livekit.agents.llm import ChatContext

from frontdesk.state.crypto import DataKeys, open_sealed
from frontdesk.state.recent import StoredItems
from frontdesk.workflows.runtime.chat_items import chat_context

logger = logging.getLogger(__name__)

Quarantine = Callable[[str], Awaitable[None]]
"""Moves the stored session aside, logging the reason (``SessionLookup.quarantine``)."""


def _validate(items: list[dict[str, Any]]) -> None:
    """``ValueError`` unless every item decodes as a LiveKit chat item (as the window did)."""
    try:
        chat_context(items)
    except (TypeError, KeyError) as exc:
        raise ValueError(str(exc)) from None


class EarlierItems:
    """The older part of a resumed session: decoded on first read, checked once, then trusted."""

    def __init__(
        self,
        stored: StoredItems,
        *,
        keys: DataKeys | None,
        quarantine: Quarantine,
        redact: Callable[[ChatContext], ChatContext] | None = None,
    ) -> None:
        self._stored = stored
        self._keys = keys
        self._quarantine = quarantine
        self.redact = redact
        """Set for an unverified caller: applied to these items wherever a transcript shows them."""
        self.checked = False
        self.problem: str | None = None
        """Why the items were found corrupt (they are then dropped); None while they are fine."""
        self._check: asyncio.Task[bool] | None = None
        self._quarantined: asyncio.Task[None] | None = None

    @property
    def session_id(self) -> str:
        return self._stored.session_id

    @property
    def count(self) -> int:
        """Items held (0 once they were found corrupt and dropped)."""
        return 0 if self.problem is not None else self._stored.count

    def items(self) -> list[dict[str, Any]]:
        """Every item, in order, as plain JSON (sealed strings opened); [] once found corrupt.

        The first read validates them (synchronously) unless the background check already did.
        """
        if self.problem is not None:
            return []
        try:
            items = self._stored.decode()
            if not self.checked:
                _validate(items)
        except ValueError as exc:
            self._found_corrupt(str(exc).splitlines()[0])
            return []
        self.checked = True
        return self._opened(items)

    def transcript_items(self) -> list[Any]:
        """What a transcript shows of these items (redacted for an unverified caller)."""
        items = self.items()
        if self.redact is None or not items:
            return items
        return list(self.redact(chat_context(items)).items)

    def check_soon(self) -> None:
        """Start the background check (see the module docstring); idempotent."""
        if self._check is None and not self.checked and self.problem is None:
            self._check = asyncio.create_task(self._run_check())

    async def check(self) -> bool:
        """Validate now (or wait for the background check); True when the items are fine."""
        if self._check is None and not self.checked and self.problem is None:
            self._check = asyncio.create_task(self._run_check())
        if self._check is not None:
            await asyncio.shield(self._check)
        if self._quarantined is not None:
            await asyncio.shield(self._quarantined)
        return self.problem is None

    async def _run_check(self) -> bool:
        try:
            for chunk in self._stored.chunks():
                await asyncio.sleep(0)  # a slice at a time: the call's own work goes first
                _validate(chunk)
                await asyncio.sleep(0)
        except ValueError as exc:
            self._found_corrupt(str(exc).splitlines()[0])
            return False
        self.checked = self.problem is None
        return self.checked

    def _opened(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self._keys is None:
            return items
        opened: list[dict[str, Any]] = open_sealed(items, self._keys, context=self.session_id)
        return opened

    def _found_corrupt(self, reason: str) -> None:
        if self.problem is not None:
            return
        self.problem = reason
        logger.warning(
            "session %s: %d stored items older than the resumed window are not LiveKit chat "
            "items (%s); the session is quarantined and the call goes on without them",
            self.session_id,
            self._stored.count,
            reason,
        )
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # read outside the call's event loop: nothing can be moved now
            return
        self._quarantined = loop.create_task(self._move_aside(reason))

    async def _move_aside(self, reason: str) -> None:
        try:
            await self._quarantine(f"stored items are not LiveKit chat items: {reason}")
        except Exception as exc:  # Redis unreachable: the session stays, the call goes on
            logger.warning("session %s: could not quarantine it: %s", self.session_id, exc)
