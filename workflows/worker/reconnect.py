"""Short drops: a caller whose connection drops has ``[worker] reconnect_grace`` seconds to
rejoin the same room before the call ends; a caller who hangs up ends it at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from livekit import rtc

logger = logging.getLogger(__name__)

DELIBERATE_LEAVE_REASONS: frozenset[int] = frozenset(
    {
        rtc.DisconnectReason.CLIENT_INITIATED,
        rtc.DisconnectReason.ROOM_DELETED,
        rtc.DisconnectReason.USER_REJECTED,
        rtc.DisconnectReason.PARTICIPANT_REMOVED,
        rtc.DisconnectReason.ROOM_CLOSED,
    }
)
"""Disconnects that are a hang-up or a removal, not a network drop: no point waiting for a
rejoin. The first three are those on which LiveKit's own ``close_on_disconnect`` closes a
session; a removed participant (moderation, a completed SIP transfer) or a closed room does not
come back either. ``DUPLICATE_IDENTITY`` is *not* here: it is the caller rejoining."""


class ReconnectWatch:
    """Ends the call when the caller leaves, after a grace period if it looks like a drop.

    Wire :meth:`participant_disconnected` and :meth:`participant_connected` to the room's events.
    A hang-up (:data:`DELIBERATE_LEAVE_REASONS`) ends the call at once; any other disconnect
    waits ``grace`` seconds, and the same identity rejoining cancels the wait.
    """

    def __init__(
        self,
        *,
        identity: str,
        grace: float,
        end_call: Callable[[str], None],
        label: str = "the caller",
    ) -> None:
        self.identity = identity
        self.label = label
        """How logs name the caller (a hash prefix, never the identity)."""
        self.grace = grace
        self._end_call = end_call
        self._timer: asyncio.Task[None] | None = None
        self._dropped_at = 0.0
        self._closed = False
        self.hung_up = False
        """True once the caller left on purpose (hang-up, removal): the session ends."""

    @property
    def waiting(self) -> bool:
        return self._timer is not None and not self._timer.done()

    def participant_disconnected(self, participant: rtc.RemoteParticipant) -> None:
        if self._closed or participant.identity != self.identity:
            return
        reason = getattr(participant, "disconnect_reason", None)
        reason_name = _reason_name(reason)
        if reason in DELIBERATE_LEAVE_REASONS or self.grace <= 0:
            self.hung_up = reason in DELIBERATE_LEAVE_REASONS
            self._end(f"caller left ({reason_name})")
            return
        if self.waiting:
            return
        logger.info(
            "%s dropped (%s); waiting up to %gs for them to rejoin",
            self.label,
            reason_name,
            self.grace,
        )
        self._dropped_at = time.monotonic()
        self._timer = asyncio.get_running_loop().create_task(self._expire(), name="reconnect_grace")

    def participant_connected(self, participant: rtc.RemoteParticipant) -> None:
        if participant.identity != self.identity or not self.waiting:
            return
        assert self._timer is not None
        self._timer.cancel()
        self._timer = None
        logger.info("%s rejoined after %.1fs", self.label, time.monotonic() - self._dropped_at)

    async def _expire(self) -> None:
        await asyncio.sleep(self.grace)
        self._timer = None
        self._end(f"caller did not rejoin within {self.grace:g}s")

    def _end(self, reason: str) -> None:
        if not self._closed:
            self._closed = True
            self._end_call(reason)

    def close(self) -> None:
        """Stop watching (the call is ending anyway)."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _reason_name(reason: object) -> str:
    if isinstance(reason, int):
        with contextlib.suppress(ValueError):
            return rtc.DisconnectReason.Name(reason)  # type: ignore[arg-type]
    return "unknown reason"
