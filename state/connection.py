"""Build the async Redis client the session store runs on, from one URL and a mode.

One function so that the worker, the CLI, the tests and the benchmarks all get the same client
settings: bytes responses (the store decodes JSON itself), short timeouts and few retries (the
:class:`~.writer.SessionWriter` does its own retrying; a call must not hang in redis-py's), and
no password in any log line.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal
from urllib.parse import unquote, urlsplit, urlunsplit

from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialWithJitterBackoff

from frontdesk.errors import StateError

from .cluster import REINITIALIZE_STEPS, SlotRoutedCluster

logger = logging.getLogger(__name__)

RedisMode = Literal["standalone", "sentinel", "cluster"]

DEFAULT_CLIENT_OPTIONS: dict[str, Any] = {
    "socket_connect_timeout": 2.0,
    "socket_timeout": 5.0,
    "health_check_interval": 30,
    "client_name": "frontdesk",
}
"""Settings every client gets unless overridden by keyword."""

DEFAULT_MAX_CONNECTIONS = 1000
"""Connections one worker process may open to a standalone Redis (one per concurrent command)."""
POOL_WAIT_TIMEOUT = 5.0
"""Seconds a command waits for a free pooled connection before failing as unavailable."""


def _default_retry() -> Retry:
    # Two quick retries absorb a dropped idle connection; a real outage surfaces in well
    # under a second so the caller (the writer) can queue and back off on its own terms.
    return Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.1), retries=2)


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***``: the only form of a URL that is logged."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{user}:***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _parse_sentinel(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise StateError(f"invalid sentinel address {address!r}: expected host:port")
    return host.strip("[]"), int(port)


def connect_redis(
    url: str,
    *,
    mode: RedisMode = "standalone",
    sentinels: Sequence[str] = (),
    sentinel_service: str = "mymaster",
    **kw: Any,
) -> Redis | RedisCluster:
    """An async Redis client for ``url``; no I/O happens until its first command.

    ``url`` is ``redis://[user:password@]host:port/db``, ``rediss://`` for TLS or
    ``unix:///path/to.sock?db=0``. ``mode="sentinel"`` asks the ``sentinels`` (``host:port``
    each) for the master of ``sentinel_service`` and takes credentials, db and TLS from ``url``
    (its host is ignored); ``mode="cluster"`` uses ``RedisCluster`` (:class:`.cluster.SlotRoutedCluster`)
    with ``url`` as a seed node.
    Extra keywords go to the client (``ssl_ca_certs=...``, ``socket_timeout=...``, ...);
    ``sentinel_kwargs`` goes to the Sentinel connections in Sentinel mode.
    """
    if kw.get("decode_responses"):
        raise StateError("the session store needs bytes responses: do not pass decode_responses")
    options: dict[str, Any] = {**DEFAULT_CLIENT_OPTIONS, "retry": _default_retry(), **kw}
    options["decode_responses"] = False
    scheme = urlsplit(url).scheme
    if scheme not in ("redis", "rediss", "unix"):
        raise StateError(
            f"unsupported Redis URL {redact_url(url)!r}: use redis://, rediss:// or unix://"
        )
    logger.info("state: connecting to %s (%s)", redact_url(url), mode)
    if mode == "standalone":
        # Waits for a free connection instead of failing: redis-py's default pool raises
        # MaxConnectionsError past 100, which the writer would read as an outage.
        options.setdefault("max_connections", DEFAULT_MAX_CONNECTIONS)
        options.setdefault("timeout", POOL_WAIT_TIMEOUT)
        return Redis.from_pool(BlockingConnectionPool.from_url(url, **options))
    if mode == "cluster":
        if scheme == "unix":
            raise StateError("Redis Cluster cannot be reached over a unix:// socket")
        # Routed by slot from the first command, MOVED patching one slot (see .cluster).
        options.setdefault("reinitialize_steps", REINITIALIZE_STEPS)
        return SlotRoutedCluster.from_url(url, **options)
    if mode == "sentinel":
        return _sentinel_master(url, sentinels, sentinel_service, options)
    raise StateError(f"unknown Redis mode {mode!r}: use standalone, sentinel or cluster")


def _sentinel_master(
    url: str, sentinels: Sequence[str], service: str, options: dict[str, Any]
) -> Redis:
    if not sentinels:
        raise StateError("Redis mode 'sentinel' needs at least one sentinel address (host:port)")
    parts = urlsplit(url)
    if parts.scheme == "unix":
        raise StateError("Sentinel mode needs a redis:// or rediss:// URL, not unix://")
    db_text = parts.path.lstrip("/") or "0"
    if not db_text.isdigit():
        raise StateError(f"invalid database number in {redact_url(url)!r}")
    if parts.username:
        options.setdefault("username", unquote(parts.username))
    if parts.password:
        options.setdefault("password", unquote(parts.password))
    options.setdefault("db", int(db_text))
    if parts.scheme == "rediss":
        options.setdefault("ssl", True)
    sentinel_kwargs = options.pop("sentinel_kwargs", None)
    if sentinel_kwargs is None:
        sentinel_kwargs = {
            key: options[key]
            for key in ("socket_connect_timeout", "socket_timeout", "ssl")
            if key in options
        }
    manager = Sentinel(
        [_parse_sentinel(address) for address in sentinels],
        sentinel_kwargs=sentinel_kwargs,
    )
    return manager.master_for(service, **options)
