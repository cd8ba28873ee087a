"""From Redis's answers to Frontdesk's errors: the one place the mapping is made.

:func:`redis_errors` turns redis-py's exceptions into :mod:`frontdesk.errors` types;
:func:`check_status` turns a Lua script's status reply (``corrupt``, ``stale``, ``missing``)
into the error its caller raises.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from redis.exceptions import (
    ClusterDownError,
    ClusterError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from frontdesk.errors import (
    CorruptStateError,
    SessionNotFoundError,
    StaleOwnerError,
    StateError,
    StateUnavailableError,
)

from .store import Lease

_CLUSTER_RECONFIGURING = (
    "cannot be connected",
    "slots are not covered",
    "could not agree on a valid slots cache",
)
"""What redis-py's cluster client says when it cannot build a slot map (``NodesManager.initialize``):
every node unreachable, slots uncovered or nodes disagreeing, as during a failover."""


@contextmanager
def redis_errors(session_id: str | None, action: str) -> Iterator[None]:
    """Turn redis-py's exceptions into Frontdesk's, naming the session and what was being done."""
    where = f"session {session_id!r}" if session_id else "the session store"
    try:
        yield
    except StateError:
        raise
    except (
        RedisConnectionError,
        RedisTimeoutError,
        ReadOnlyError,
        TryAgainError,
        ClusterDownError,
        OSError,
    ) as exc:
        raise StateUnavailableError(
            f"Redis is unreachable while {action} {where}: {type(exc).__name__}: {exc}"
        ) from exc
    except ClusterError as exc:
        # 'TTL exhausted.': redis-py followed MOVED/ASK/TRYAGAIN as often as it does and the
        # slot is still moving (a reshard); transient, so the writer retries it (see .cluster).
        raise StateUnavailableError(
            f"Redis Cluster is moving the slot of {where} while {action} it: {exc}"
        ) from exc
    except RedisClusterException as exc:
        if not isinstance(exc, SlotNotCoveredError) and not any(
            sign in str(exc) for sign in _CLUSTER_RECONFIGURING
        ):
            raise StateError(f"Redis failed {action} {where}: {exc}") from exc
        # The client could not (re)build its slot map: nodes down or disagreeing mid-failover.
        raise StateUnavailableError(
            f"Redis Cluster is reconfiguring while {action} {where}: {exc}"
        ) from exc
    except (AttributeError, TypeError) as exc:
        if not raised_in_redis_transport(exc):
            raise
        # redis-py's cluster client closed the connection while this command used it (it
        # closes every connection on CLUSTER DOWN; see .cluster and redis-py issue #4287).
        raise StateUnavailableError(
            f"Redis connection closed under a command while {action} {where}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    except ResponseError as exc:
        if "WRONGTYPE" in str(exc):
            raise CorruptStateError(
                f"{where}: a stored key has the wrong Redis type ({action}): {exc}"
            ) from exc
        raise StateError(f"Redis refused {action} {where}: {exc}") from exc
    except RedisError as exc:
        raise StateError(f"Redis failed {action} {where}: {exc}") from exc


def raised_in_redis_transport(exc: BaseException) -> bool:
    """True when ``exc`` was raised inside redis-py or asyncio's streams, not in our code.

    A connection disconnected by another task has ``_writer``/``_reader`` set to None, or a
    transport whose internals were torn down: the write then fails with ``AttributeError`` or
    ``TypeError`` deep in redis-py or asyncio instead of ``ConnectionError``.
    """
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return False
    parts = Path(frames[-1].filename).parts
    return "asyncio" in parts or ("redis" in parts and "site-packages" in parts)


def text(value: object) -> str:
    """A Redis reply (bytes or not) as text, for messages and logs."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def check_status(status: bytes, detail: object, *, lease: Lease, action: str) -> None:
    """Raise the error a fenced write script's status stands for; return on any other status.

    ``corrupt``: the session's fence or lease is damaged (``detail`` says how) and nothing was
    written; ``stale``: ``lease``'s token is no longer current; ``missing``: the session's meta
    is not stored (expired, deleted or quarantined).
    """
    sid = lease.session_id
    if status == b"corrupt":
        raise CorruptStateError(
            f"session {sid!r} is corrupt: {text(detail)}; {action} it was refused and "
            "nothing written (a load or a new claim of it quarantines it)"
        )
    if status == b"stale":
        raise StaleOwnerError(
            f"session {sid!r}: fencing token {lease.fence} of {lease.owner!r} is "
            "stale; another worker owns this session now"
        )
    if status == b"missing":
        raise SessionNotFoundError(
            f"{action} session {sid!r} was refused: it is not stored (expired, deleted or "
            "quarantined)"
        )
