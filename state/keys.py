"""THE Redis key layout of Frontdesk's session state: every key name is made here.

``P`` is ``key_prefix``, ``SID`` the session id, ``H`` the caller's hex HMAC-SHA256; the braces
are literal: they are Redis Cluster hash tags, so every key of one session lives in one slot and
each per-session Lua script is a single-slot operation::

    key                      type    holds                                              TTL
    P:s:{SID}:meta           hash    one field per SessionMeta field, each value JSON;  ttl
                                     plus ``_snap_n`` = number of items in ``snap``
    P:s:{SID}:items          list    chat items after the first ``_snap_n``, one JSON   ttl
                                     object per element, append-only
    P:s:{SID}:snap           string  items [0, _snap_n) as the *body* of one JSON array ttl
                                     (comma-separated objects, no brackets)
    P:s:{SID}:fence          string  the fencing token (positive decimal integer)       ttl
    P:s:{SID}:lease          string  ``<token>:<owner>`` of the current lease           lease_ttl
    P:q:{SID}:meta|items|snap        a quarantined session's keys, renamed aside        ttl
    P:caller:H               zset    session ids of one caller, scored by created_at    ttl
    P:wf:HASH                string  a workflow version live sessions use (JSON config) ttl

The Lua scripts (``lua/*.lua``) receive these names as ``KEYS`` in the order of
:meth:`KeyLayout.session` (then :meth:`KeyLayout.quarantine`), and write the ``_snap_n`` field
(:data:`SNAP_N`) by that name. Why the layout has this shape is told in :mod:`.redis_store`.
"""

from __future__ import annotations

import re

from redis.asyncio import Redis, RedisCluster

from frontdesk.errors import StateError

AsyncRedisClient = Redis | RedisCluster
"""What the store runs on: a plain/Sentinel client or a cluster client, bytes responses."""

SNAP_N = "_snap_n"
"""The meta field holding how many chat items ``snap`` holds (the Lua scripts use the name)."""

SessionKeys = tuple[str, str, str, str, str]
"""``(meta, items, snap, fence, lease)``."""

_PREFIX_RE = re.compile(r"^[A-Za-z0-9_.-]{1,40}\Z")
_SESSION_ID_RE = re.compile(r"^[^\s{}*?\[\]\\\x00-\x1f\x7f]{1,200}\Z")
# (\Z, not $: $ also matches before a trailing newline)
FENCE_RE = re.compile(rb"^[1-9][0-9]{0,17}\Z")
"""A fence value this store could have written (the Lua scripts apply the same rule)."""


def is_session_id(text: str) -> bool:
    return _SESSION_ID_RE.match(text) is not None


def check_session_id(session_id: str) -> None:
    if not is_session_id(session_id):
        raise StateError(
            f"invalid session id {session_id!r}: 1-200 characters, no whitespace, braces, "
            "glob characters or control characters"
        )


def valid_session_id(member: bytes) -> str | None:
    """A stored session id (index member) as text, or None if this store could not have written it."""
    try:
        sid = member.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return sid if is_session_id(sid) else None


class KeyLayout:
    """The key names under one ``key_prefix``."""

    def __init__(self, prefix: str) -> None:
        if not _PREFIX_RE.match(prefix):
            raise StateError(
                f"invalid state key prefix {prefix!r}: use 1-40 letters, digits, '_', '.', '-'"
            )
        self.prefix = prefix

    def session(self, session_id: str) -> SessionKeys:
        """``(meta, items, snap, fence, lease)`` keys of a session, in the scripts' order."""
        check_session_id(session_id)
        tag = f"{self.prefix}:s:{{{session_id}}}"
        return (f"{tag}:meta", f"{tag}:items", f"{tag}:snap", f"{tag}:fence", f"{tag}:lease")

    def quarantine(self, session_id: str) -> tuple[str, str, str]:
        """``(meta, items, snap)`` names a corrupt session is renamed to."""
        check_session_id(session_id)
        tag = f"{self.prefix}:q:{{{session_id}}}"
        return (f"{tag}:meta", f"{tag}:items", f"{tag}:snap")

    def script_keys(self, session_id: str) -> list[str]:
        """The eight keys of the scripts that can quarantine: session keys, quarantine names."""
        return [*self.session(session_id), *self.quarantine(session_id)]

    def quarantined_as(self, session_id: str) -> str:
        """The pattern of a quarantined session's keys, for logs and messages."""
        return f"{self.prefix}:q:{{{session_id}}}:*"

    def caller(self, hashed_identity: str) -> str:
        """The caller index key of an HMAC of a caller identity."""
        return f"{self.prefix}:caller:{hashed_identity}"

    def workflow_version(self, content_hash: str) -> str:
        """The key of one kept workflow version (:mod:`frontdesk.state.versions`)."""
        if not re.match(r"^[0-9a-f]{1,64}\Z", content_hash):
            raise StateError(f"invalid workflow content hash {content_hash!r}")
        return f"{self.prefix}:wf:{content_hash}"

    def meta_pattern(self, kinds: str) -> str:
        """A ``SCAN`` pattern of meta keys: ``kinds`` ``s`` (live), ``q`` or ``[sq]``."""
        return f"{self.prefix}:{kinds}:*:meta"

    def session_id_of(self, key: bytes) -> str | None:
        """The session id in a (live or quarantined) meta key's name, or None."""
        text = key.decode("utf-8", "replace")
        for kind in ("s", "q"):
            head = f"{self.prefix}:{kind}:{{"
            if text.startswith(head) and text.endswith("}:meta"):
                return text[len(head) : -len("}:meta")]
        return None
