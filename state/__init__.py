"""Session persistence and resume for Frontdesk (``frontdesk.state``).

The rest of Frontdesk uses the roles of :class:`SessionStore` (Protocols: :class:`CallStore`,
:class:`SessionLookup`, :class:`SessionAdmin`) and :class:`SessionWriter`;
:class:`RedisSessionStore` is the implementation (built with
:meth:`RedisSessionStore.from_settings`), :func:`connect_redis` builds its client and
:class:`EmbeddedRedis` provides a private server when none is configured. :func:`plan_resume`
decides what a returning caller gets. Nothing here imports ``frontdesk.agents`` or
``frontdesk.workflows``: dependencies point the other way.
"""

from __future__ import annotations

from .connection import connect_redis, redact_url
from .embedded import EmbeddedRedis, find_redis_server
from .identity import caller_hash, caller_secret_from_env
from .models import (
    SCHEMA_VERSION,
    CallRecord,
    HandoffEntry,
    SessionMeta,
    SessionState,
    SessionSummary,
)
from .recent import RecentSession, StoredItems
from .redis_store import RedisSessionStore, StoreSettings
from .resume import ResumePlan, plan_resume
from .store import (
    CallStore,
    Lease,
    SessionAdmin,
    SessionLookup,
    SessionOwnership,
    SessionStore,
    SessionWrites,
)
from .writer import SessionWriter

__all__ = [
    "SCHEMA_VERSION",
    "CallRecord",
    "CallStore",
    "EmbeddedRedis",
    "HandoffEntry",
    "Lease",
    "RecentSession",
    "RedisSessionStore",
    "ResumePlan",
    "SessionAdmin",
    "SessionLookup",
    "SessionMeta",
    "SessionOwnership",
    "SessionState",
    "SessionStore",
    "SessionSummary",
    "SessionWriter",
    "SessionWrites",
    "StoreSettings",
    "StoredItems",
    "caller_hash",
    "caller_secret_from_env",
    "connect_redis",
    "find_redis_server",
    "plan_resume",
    "redact_url",
]
