"""The shared caller data of one call: LiveKit's ``session.userdata`` (``AgentSession[CallerData]``).

Every agent of the call reads and writes the same :class:`CallerData`, so what the caller told the
receptionist is known to support. It is a pydantic model so that it is validated on assignment
and persisted as is (the state layer stores ``model_dump()`` next to the chat items).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from frontdesk.state.models import HandoffEntry, TransferEntry


class CallerData(BaseModel):
    """Shared, typed state of one call, visible to every agent through ``RunContext.userdata``."""

    model_config = ConfigDict(validate_assignment=True, arbitrary_types_allowed=True)

    session_id: str = Field(description="The stored session's id (also in logs).")
    caller_identity: str | None = Field(
        default=None, description="Phone number or participant identity; never stored raw."
    )
    fields: dict[str, str] = Field(
        default_factory=dict, description="Caller data collected so far, by field name."
    )
    greeted: set[str] = Field(
        default_factory=set, description="Agents that have greeted the caller."
    )
    handoff_trail: list[HandoffEntry] = Field(
        default_factory=list, description="Every handoff of the call, in order."
    )
    current_agent: str = Field(default="", description="The agent speaking now.")
    tools_run: set[str] = Field(
        default_factory=set, description="HTTP tools run this call (an `auto` tool runs once)."
    )
    pending_handoff: HandoffEntry | None = Field(
        default=None,
        exclude=True,
        description="Set by a transfer tool, moved to the trail by the old agent's on_exit.",
    )

    transfer: TransferEntry | None = Field(
        default=None, description="Set once the caller was passed to a human (the call ends)."
    )
    line: Any = Field(
        default=None,
        exclude=True,
        repr=False,
        description="The call's CallLine (frontdesk.agents.transfer): where the caller is on "
        "LiveKit, for a transfer to a human; None in text mode.",
    )
    arrival_reply: Any = Field(
        default=None,
        exclude=True,
        repr=False,
        description="The new agent's first reply after a handoff (a LiveKit SpeechHandle) until "
        "it is spoken: the caller's turn ends with it, not with the route's say line before it.",
    )

    gate: Any = Field(
        default=None,
        exclude=True,
        repr=False,
        description="The call's VerificationGate (frontdesk.agents.verification) while a caller "
        "resumed by caller ID has not verified yet; never shown to the model.",
    )

    def missing(self, wanted: tuple[str, ...] | list[str]) -> list[str]:
        """The fields of ``wanted`` not collected yet, in order."""
        return [name for name in wanted if name not in self.fields]
