"""What a stored session is: the pydantic models persisted to Redis and read back on resume.

A session splits in two because the two halves are written differently: :class:`SessionMeta`
(small, rewritten field by field on every turn) and the chat items (append-only, never rewritten
on the hot path). :class:`SessionState` is both together, as the rest of Frontdesk sees it.

The chat items are LiveKit's own serialised form (``ChatContext.to_dict(exclude_timestamp=False)
["items"]``) and stay opaque dicts here: this package never interprets them, so a LiveKit upgrade
that adds an item type needs no change in ``state/``.

Models are strict: a stored ``"3"`` where an int belongs is corruption, not something to coerce,
because silently "repairing" a session on load hides the bug that wrote it.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

SCHEMA_VERSION = 1
"""Version of the stored layout. A session stored with any other version is refused on load."""


class HandoffEntry(BaseModel):
    """One transfer between agents, kept so a resumed call (and a human) can see how it got here."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    from_agent: str | None = Field(
        description="The agent that handed off; None for the call's first agent."
    )
    to_agent: str = Field(description="The agent that received the call.")
    reason: str = Field(description="Why: the route's description or the tool's stated reason.")
    at: float = Field(description="Unix time of the handoff, in seconds.")


class TransferEntry(BaseModel):
    """The call was passed to a human (``[agents.<a>.transfer]``): it never resumes as an AI call."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    from_agent: str = Field(description="The AI agent that transferred the caller.")
    to: str = Field(description="The human's number or SIP URI ('tel:+1555…', 'sip:…').")
    mode: str = Field(description="'cold' (SIP transfer) or 'warm' (dialled and briefed first).")
    at: float = Field(description="Unix time the transfer completed, in seconds.")
    summary: str | None = Field(
        default=None, description="warm: the summary of the call the human heard."
    )


class CallRecord(BaseModel):
    """One connection of the caller to the session: a call resumed twice has three records."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    started_at: float = Field(description="Unix time this connection started.")
    ended_at: float = Field(description="Unix time it ended.")
    reason: str = Field(description="Why it ended: 'caller hung up', 'caller dropped', …")
    resumed: bool = Field(description="True when this connection resumed a dropped call.")
    caller_turns: int = Field(ge=0, description="Caller turns in the session when it ended.")
    agents: list[str] = Field(description="Agents the caller talked to, in order of first visit.")
    metrics: dict[str, Any] = Field(
        default_factory=dict,
        description="Per-agent LLM/STT/TTS latency and usage from LiveKit's metrics events.",
    )


class SessionMeta(BaseModel):
    """Everything about a session except its chat items: small, and rewritten on every turn."""

    model_config = ConfigDict(extra="forbid", strict=True)

    schema_version: int = Field(
        default=SCHEMA_VERSION, description="Layout version; see SCHEMA_VERSION."
    )
    session_id: str = Field(min_length=1, description="The session's id; part of every key.")
    workflow: str = Field(description="Name of the workflow the call runs.")
    workflow_hash: str = Field(
        description="Content hash of the workflow config when the session was last written; "
        "a different hash on resume means the config changed during the call."
    )
    caller_hash: str | None = Field(
        default=None,
        description="HMAC-SHA256 (hex) of the caller's identity, never the identity itself; "
        "None when the caller is anonymous.",
    )
    current_agent: str = Field(description="The agent holding the call; a resume starts there.")
    caller_data: dict[str, str] = Field(
        default_factory=dict, description="Shared caller data collected so far, by field name."
    )
    greeted: list[str] = Field(
        default_factory=list,
        description="Agents that already greeted the caller, so a resume does not greet again.",
    )
    handoff_trail: list[HandoffEntry] = Field(
        default_factory=list, description="Every handoff of the call, oldest first."
    )
    created_at: float = Field(description="Unix time the session was created, in seconds.")
    updated_at: float = Field(
        description="Unix time of the last write, in seconds; drives the resume window."
    )
    turns: int = Field(default=0, ge=0, description="Caller turns handled so far.")
    ended: bool = Field(
        default=False, description="True once the call ended normally: such a call never resumes."
    )
    calls: list[CallRecord] = Field(
        default_factory=list, description="One record per connection of the caller, oldest first."
    )
    transfer: TransferEntry | None = Field(
        default=None,
        description="Set once the caller was passed to a human; such a session is ended.",
    )


class SessionState(SessionMeta):
    """A whole session: its meta plus the chat history in LiveKit's serialised form."""

    items: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Chat items as ChatContext.to_dict(exclude_timestamp=False)['items'], in "
        "order; opaque to this package.",
    )

    @property
    def meta(self) -> SessionMeta:
        """The meta half, without copying the items."""
        return SessionMeta.model_construct(**{name: getattr(self, name) for name in META_FIELDS})


class SessionSummary(BaseModel):
    """One line of ``list_sessions``: enough to pick a session without loading its history."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    session_id: str = Field(description="The session's id.")
    workflow: str = Field(description="Name of the workflow the call runs.")
    caller_hash: str | None = Field(description="HMAC of the caller's identity, or None.")
    agent: str = Field(description="The agent holding the call.")
    turns: int = Field(description="Caller turns handled so far.")
    created_at: float = Field(description="Unix time the session was created.")
    updated_at: float = Field(description="Unix time of the last write.")
    item_count: int = Field(description="Number of stored chat items.")
    ended: bool = Field(description="True once the call ended normally.")


META_FIELDS: frozenset[str] = frozenset(SessionMeta.model_fields)
"""Names a meta hash may hold (besides the store's own bookkeeping fields)."""

IMMUTABLE_META_FIELDS: frozenset[str] = frozenset({"schema_version", "session_id", "created_at"})
"""Meta fields an incremental update may not change: they are the session's identity."""


@cache
def _field_adapter(name: str) -> TypeAdapter[Any]:
    field = SessionMeta.model_fields[name]
    # Annotated with the FieldInfo so constraints (ge=0, min_length=1) apply to updates too.
    annotated: Any = Annotated[field.annotation, field]
    return TypeAdapter(annotated)


def encode_meta_update(update: dict[str, Any]) -> dict[str, bytes]:
    """Validate an incremental meta update and encode each value as JSON.

    Checked here, before anything reaches Redis, so that a wrong value is a clear error at the
    writer instead of a session that no longer loads. Raises ``ValueError`` naming the field.
    """
    encoded: dict[str, bytes] = {}
    for name, value in update.items():
        if name not in META_FIELDS:
            raise ValueError(f"unknown session field {name!r}")
        if name in IMMUTABLE_META_FIELDS:
            raise ValueError(f"session field {name!r} cannot be changed by an update")
        adapter = _field_adapter(name)
        try:
            checked = adapter.validate_python(value, strict=True)
        except ValueError as exc:
            raise ValueError(f"session field {name!r}: {exc}") from None
        encoded[name] = adapter.dump_json(checked)
    return encoded


def encode_meta(meta: SessionMeta) -> dict[str, bytes]:
    """Every meta field of ``meta`` encoded as JSON, one hash field each."""
    plain = meta.model_dump(mode="json", exclude={"items"})
    return {name: orjson.dumps(value) for name, value in plain.items()}


def decode_meta(fields: dict[str, bytes]) -> SessionMeta:
    """The inverse of :func:`encode_meta`.

    Each field is parsed on its own, so a damaged value cannot spill into its neighbours.
    Raises ``ValueError`` (orjson's and pydantic's errors included) on an unknown field, bad
    JSON or a wrong type.
    """
    unknown = sorted(set(fields) - META_FIELDS)
    if unknown:
        raise ValueError(f"unknown session fields {unknown}")
    plain = {name: orjson.loads(value) for name, value in fields.items()}
    return SessionMeta.model_validate(plain)
