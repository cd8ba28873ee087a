"""From Redis's answers to Frontdesk's errors: the one place the mapping is made.

:func:`redis_errors` turns redis-py's exceptions into :mod:`frontdesk.errors` types;
:func:`check_status` turns a Lua script's status reply (``corrupt``, ``stale``, ``missing``)
into the error its caller raises.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from redis.exceptions import (
    ClusterDownError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    ResponseError,
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
    except ResponseError as exc:
        if "WRONGTYPE" in str(exc):
            raise CorruptStateError(
                f"{where}: a stored key has the wrong Redis type ({action}): {exc}"
            ) from exc
        raise StateError(f"Redis refused {action} {where}: {exc}") from exc
    except (RedisError, RedisClusterException) as exc:
        raise StateError(f"Redis failed {action} {where}: {exc}") from exc


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
