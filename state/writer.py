"""Write-behind persistence for one live call: the reply path never waits for Redis.

A voice agent must answer in a few hundred milliseconds whether or not Redis is healthy, so the
call code only ever calls :meth:`SessionWriter.submit` (no await, no exception) and a background
task does the writing: everything submitted since the last write goes out as ONE
:meth:`~.store.SessionWrites.append`, in order.

When Redis is unreachable the batch is kept and retried with capped backoff; because each
append names the item count it builds on (``base_len``), a retry whose first attempt did land
is recognised by the store and not applied twice. Memory is bounded: past ``queue_limit``
queued items the queue is dropped and, once Redis is back, the whole session is rewritten from
``full_state()`` (the live call's own state), so nothing is lost while the process lives. If
another worker claims the session (the caller reconnected elsewhere), the store refuses our
stale fencing token and this writer stops for good: the other worker's state wins.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from frontdesk import telemetry
from frontdesk.errors import StaleOwnerError, StateError, StateUnavailableError

from .models import SessionState, encode_meta_update
from .store import Lease, SessionWrites

logger = logging.getLogger(__name__)

_RETRYABLE: tuple[type[BaseException], ...] = (
    StateUnavailableError,
    ConnectionError,
    TimeoutError,
    OSError,
)


@dataclass(frozen=True, kw_only=True, slots=True)
class _Batch:
    """One append in flight: resent unchanged until acknowledged (idempotence needs that)."""

    items: list[dict[str, Any]]
    meta: dict[str, Any]
    base_len: int
    seq: int


class SessionWriter:
    """The per-call write-behind queue in front of a store's :class:`~.store.SessionWrites`.

    ``full_state`` must return the call's current state including every item passed to
    :meth:`submit` so far (it may hold more, which then must never be submitted later); it is
    only called after the queue overflowed or the stored session diverged.
    """

    def __init__(
        self,
        *,
        store: SessionWrites,
        lease: Lease,
        base_len: int,
        full_state: Callable[[], SessionState],
        queue_limit: int = 1000,
        retry_initial: float = 0.05,
        retry_max: float = 2.0,
        op_timeout: float = 10.0,
    ) -> None:
        if queue_limit < 1:
            raise ValueError("queue_limit must be at least 1")
        self._store = store
        self._lease = lease
        self._full_state = full_state
        self._queue_limit = queue_limit
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._op_timeout = op_timeout
        self._pending_items: list[dict[str, Any]] = []
        self._pending_meta: dict[str, Any] = {}
        self._batch: _Batch | None = None
        self._submitted_seq = 0
        self._acked_seq = 0
        self._acked_items = base_len
        self._submitted_total = base_len
        self._needs_rewrite = False
        self._overflow_gen = 0
        self._overflow_logged = False
        self._connected = True
        self._outage_since: float | None = None
        self._failure: StateError | None = None
        self._closed = False
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ public surface

    @property
    def session_id(self) -> str:
        return self._lease.session_id

    @property
    def acked_items(self) -> int:
        """Items Redis has acknowledged (the stored item count as far as this writer knows)."""
        return self._acked_items

    @property
    def pending_items(self) -> int:
        """Items submitted but not yet acknowledged (queued, in flight or awaiting a rewrite)."""
        return max(0, self._submitted_total - self._acked_items)

    @property
    def connected(self) -> bool:
        """False from the first failed write of an outage until the next successful one."""
        return self._connected

    @property
    def lost_ownership(self) -> StaleOwnerError | None:
        """The error that stopped this writer because another worker claimed the session."""
        return self._failure if isinstance(self._failure, StaleOwnerError) else None

    @property
    def failure(self) -> StateError | None:
        """Why the writer stopped for good (lost ownership or an unrecoverable write), if it did."""
        return self._failure

    def submit(self, items: list[dict[str, Any]], meta_update: dict[str, Any]) -> None:
        """Queue chat items and meta changes for the next write. Never blocks, never raises.

        Submitted dicts are encoded later, in the background: do not mutate them afterwards.
        """
        try:
            if self._failure is not None or self._closed:
                logger.debug("session %s: writer stopped; submit ignored", self.session_id)
                return
            if meta_update:
                try:
                    encode_meta_update(meta_update)
                except ValueError as exc:
                    # Refused here, not at the store: a bad update would fail every retry.
                    logger.error(
                        "session %s: meta update dropped (items kept): %s", self.session_id, exc
                    )
                    meta_update = {}
            if not items and not meta_update:
                return
            self._submitted_seq += 1
            self._submitted_total += len(items)
            self._pending_items.extend(items)
            self._pending_meta.update(meta_update)
            if self._queued_items() > self._queue_limit:
                self._overflow()
            self._ensure_task()
            self._wake.set()
            telemetry.queue_depth(self.session_id, self.pending_items)
        except Exception:  # a bug must not take the call down
            logger.exception("session %s: submit failed unexpectedly", self.session_id)

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything submitted so far is acknowledged; False on timeout or failure."""
        target = self._submitted_seq
        if self._acked_seq >= target:
            return True
        if self._failure is not None:
            return False
        self._ensure_task()
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while self._acked_seq < target:
            if self._failure is not None:
                return False
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self._progress.wait(), remaining)
            except TimeoutError:
                return False
        return True

    async def aclose(self, timeout: float | None = 5.0) -> None:
        """Flush (up to ``timeout`` seconds), then stop the background task."""
        if self._closed:
            return
        flushed = await self.flush(timeout)
        self._closed = True
        if not flushed and self._failure is None:
            logger.warning(
                "session %s: closing with %d items not persisted (Redis unavailable)",
                self.session_id,
                self.pending_items,
            )
        task, self._task = self._task, None
        telemetry.queue_depth(self.session_id, 0)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # ------------------------------------------------------------------ queue

    def _queued_items(self) -> int:
        in_flight = len(self._batch.items) if self._batch is not None else 0
        return len(self._pending_items) + in_flight

    def _overflow(self) -> None:
        queued = self._queued_items()
        if not self._overflow_logged:
            logger.warning(
                "session %s: %d writes queued while Redis is unavailable, over the limit of %d "
                "(queue_limit); dropping the queue from memory. The session will be rewritten "
                "in full from the live call once Redis is back.",
                self.session_id,
                queued,
                self._queue_limit,
            )
            self._overflow_logged = True
        self._pending_items = []
        self._pending_meta = {}
        self._batch = None
        self._needs_rewrite = True
        self._overflow_gen += 1

    def _has_work(self) -> bool:
        return bool(
            self._needs_rewrite
            or self._batch is not None
            or self._pending_items
            or self._pending_meta
        )

    def _ensure_task(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"frontdesk-state-writer:{self.session_id}"
            )

    def _notify(self) -> None:
        telemetry.queue_depth(self.session_id, 0 if self._failure else self.pending_items)
        self._progress.set()
        self._progress = asyncio.Event()

    # ------------------------------------------------------------------ background task

    async def _run(self) -> None:
        delay = self._retry_initial
        while self._failure is None:
            if not self._has_work():
                if self._closed:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            rewriting = self._needs_rewrite
            try:
                if rewriting:
                    await self._rewrite()
                else:
                    await self._append()
            except StaleOwnerError as exc:
                self._stop(exc)
                logger.warning(
                    "session %s: another worker owns session %s now; this worker stops "
                    "writing it (%s)",
                    self.session_id,
                    self.session_id,
                    exc,
                )
                return
            except _RETRYABLE as exc:
                self._on_outage(exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max)
                continue
            except StateError as exc:
                if rewriting:
                    self._stop(exc)
                    logger.error(
                        "session %s: a full rewrite failed; persistence stops for this call: %s",
                        self.session_id,
                        exc,
                    )
                    return
                logger.warning(
                    "session %s: the stored session no longer matches this call (%s); "
                    "rewriting it in full",
                    self.session_id,
                    exc,
                )
                self._needs_rewrite = True
                continue
            except Exception as exc:  # a bug in a store: keep the data, retry slowly
                if self._connected:
                    logger.exception("session %s: unexpected error while writing", self.session_id)
                self._on_outage(exc)
                await asyncio.sleep(self._retry_max)
                continue
            delay = self._retry_initial
            self._on_success()

    async def _append(self) -> None:
        if self._batch is None:
            self._batch = _Batch(
                items=self._pending_items,
                meta=self._pending_meta,
                base_len=self._acked_items,
                seq=self._submitted_seq,
            )
            self._pending_items = []
            self._pending_meta = {}
        batch = self._batch
        started_ns = time.time_ns()
        count = await asyncio.wait_for(
            self._store.append(
                self._lease, items=batch.items, meta_update=batch.meta, base_len=batch.base_len
            ),
            self._op_timeout,
        )
        if self._batch is not batch:
            return  # dropped by an overflow meanwhile; the rewrite covers it
        self._batch = None
        self._acked_items = count
        self._acked_seq = batch.seq
        telemetry.persisted(self.session_id, "append", started_ns, len(batch.items))
        self._notify()

    async def _rewrite(self) -> None:
        generation = self._overflow_gen
        seq = self._submitted_seq
        expected = self._submitted_total
        state = self._full_state()
        if len(state.items) < expected:  # (more is fine: lines not captured yet)
            logger.warning(
                "session %s: full_state() holds %d items but %d were submitted; "
                "storing full_state()",
                self.session_id,
                len(state.items),
                expected,
            )
        state = state.model_copy(update={"updated_at": max(state.updated_at, time.time())})
        # Everything queued so far is inside ``state``; later submits queue after it.
        self._pending_items = []
        self._pending_meta = {}
        self._batch = None
        started_ns = time.time_ns()
        await asyncio.wait_for(self._store.rewrite(self._lease, state), self._op_timeout)
        telemetry.persisted(self.session_id, "rewrite", started_ns, len(state.items))
        self._acked_items = len(state.items)
        self._submitted_total = self._acked_items + len(self._pending_items)
        self._acked_seq = max(self._acked_seq, seq)
        if self._overflow_gen == generation:
            self._needs_rewrite = False
        logger.info(
            "session %s: rewrote the stored session in full (%d items)",
            self.session_id,
            self._acked_items,
        )
        self._notify()

    def _on_outage(self, exc: BaseException) -> None:
        if self._connected:
            self._connected = False
            self._outage_since = time.monotonic()
            telemetry.redis_outage_started()
            logger.warning(
                "session %s: Redis unavailable (%s); keeping writes in memory (up to %d items) "
                "and retrying",
                self.session_id,
                exc,
                self._queue_limit,
            )

    def _on_success(self) -> None:
        if not self._connected:
            lasted = time.monotonic() - (self._outage_since or time.monotonic())
            telemetry.redis_outage_ended(lasted)
            logger.info(
                "session %s: Redis is back after %.1f s; queued writes persisted",
                self.session_id,
                lasted,
            )
            self._connected = True
            self._outage_since = None
            self._overflow_logged = False

    def _stop(self, exc: StateError) -> None:
        self._failure = exc
        self._pending_items = []
        self._pending_meta = {}
        self._batch = None
        self._notify()
