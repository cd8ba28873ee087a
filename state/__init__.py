"""Session persistence and resume for Frontdesk (``frontdesk.state``).

The rest of Frontdesk uses :class:`SessionStore` (the Protocol) and :class:`SessionWriter`;
:class:`RedisSessionStore` is the implementation, :func:`connect_redis` builds its client and
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
from .redis_store import RedisSessionStore
from .resume import ResumePlan, plan_resume
from .store import Lease, SessionStore
from .writer import SessionWriter

__all__ = [
    "SCHEMA_VERSION",
    "CallRecord",
    "EmbeddedRedis",
    "HandoffEntry",
    "Lease",
    "RedisSessionStore",
    "ResumePlan",
    "SessionMeta",
    "SessionState",
    "SessionStore",
    "SessionSummary",
    "SessionWriter",
    "caller_hash",
    "caller_secret_from_env",
    "connect_redis",
    "find_redis_server",
    "plan_resume",
    "redact_url",
]
