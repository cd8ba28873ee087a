"""How loaded this worker is: live calls over ``[worker] max_sessions``, not CPU.

A voice call is mostly waiting on providers, so CPU says little about capacity;
``load = live calls / [worker] max_sessions`` does.
"""

from __future__ import annotations

import logging
import threading

from livekit.agents import AgentServer

logger = logging.getLogger(__name__)


def compute_load(live: int, max_sessions: int) -> float:
    """``live / max_sessions`` clamped to 0..1 (LiveKit compares it with ``load_threshold``)."""
    if max_sessions <= 0:
        return 1.0
    return min(1.0, max(0.0, live / max_sessions))


class LiveSessions:
    """The live calls of this process (thread-safe: LiveKit runs ``load_fnc`` in an executor)."""

    def __init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()

    @property
    def count(self) -> int:
        with self._lock:
            return self._count

    def started(self) -> int:
        with self._lock:
            self._count += 1
            return self._count

    def ended(self) -> int:
        with self._lock:
            self._count = max(0, self._count - 1)
            return self._count


LIVE_SESSIONS = LiveSessions()
"""Incremented and decremented by :func:`entrypoint` around each call."""


class SessionLoad:
    """``load_fnc``: live calls over ``[worker] max_sessions``, logged when it changes.

    LiveKit calls it in the worker's main process, while calls run in job processes (one call per
    process), so the figure there is LiveKit's own count of running jobs; :data:`LIVE_SESSIONS`
    covers calls running in this very process (the thread executor used by ``console``).
    LiveKit Cloud's hosted agents ignore a custom ``load_fnc``.
    """

    def __init__(self, *, max_sessions: int) -> None:
        self.max_sessions = max_sessions
        self._last: float | None = None
        self._lock = threading.Lock()

    def __call__(self, server: AgentServer) -> float:
        live = max(len(server.active_jobs), LIVE_SESSIONS.count)
        return self.report(live)

    def report(self, live: int) -> float:
        load = compute_load(live, self.max_sessions)
        with self._lock:
            changed, self._last = load != self._last, load
        if changed:
            logger.info("worker load %.2f (%d/%d live calls)", load, live, self.max_sessions)
        return load
