"""``[agents.<a>.transfer]``: passing the caller to a human on a phone number or SIP URI.

The agent gets a ``transfer_to_human`` tool (the model calls it when ``when`` applies). The
caller hears ``say`` verbatim, then:

- ``cold``: LiveKit's ``TransferSIPParticipant`` hands the caller's SIP leg to ``to``;
- ``warm``: the human is dialled with ``CreateSIPParticipant`` into a consult room, hears a
  summary of the call (made like the ``summary`` context policy's), then is moved into the
  caller's room (``MoveParticipant``) and the AI agent leaves.

Either way the session is stored as transferred and ended: it never resumes as an AI call.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

TRANSFER_TOOL = "transfer_to_human"
"""The tool name the model sees (an agent may not be named ``human`` beside a transfer)."""

_TEL = re.compile(r"^tel:\+[1-9]\d{6,14}$")
_SIP = re.compile(r"^sips?:[A-Za-z0-9._~%!$&'()*+,;=:-]+@[A-Za-z0-9.-]+(:\d{1,5})?(;[^\s]*)?$")


class HumanTransfer(BaseModel):
    """``[agents.<a>.transfer]``: where and how this agent passes the caller to a person."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    to: str = Field(
        description="'tel:+15550100200' (E.164) or a SIP URI such as 'sip:desk@pbx.acme.test'."
    )
    mode: Literal["cold", "warm"] = Field(
        default="cold",
        description="'cold': the caller's SIP leg is transferred (TransferSIPParticipant); "
        "'warm': the human is dialled and briefed first, then joined to the caller.",
    )
    when: str = Field(
        default="The caller asks for a person, or you cannot help them.",
        min_length=1,
        max_length=2000,
        description="When to transfer; the transfer_to_human tool's description.",
    )
    say: str = Field(
        default="I'm transferring you to a colleague now. Please stay on the line.",
        min_length=1,
        max_length=2000,
        description="Spoken verbatim to the caller before the transfer (`{field}`s filled).",
    )
    failure_line: str = Field(
        default="I'm sorry, I couldn't reach a colleague just now. Let me keep helping you.",
        min_length=1,
        max_length=2000,
        description="Spoken verbatim when the transfer fails; the AI call goes on.",
    )
    summary_prompt: str | None = Field(
        default=None,
        min_length=1,
        max_length=20_000,
        description="warm: the prompt asking the model for the summary the human hears "
        "(default: the `summary` policy's).",
    )
    sip_trunk_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="warm: the LiveKit SIP outbound trunk that dials the human "
        "(default: env LIVEKIT_SIP_OUTBOUND_TRUNK).",
    )
    play_dialtone: bool = Field(
        default=False, description="cold: play a dial tone to the caller while transferring."
    )

    @field_validator("to")
    @classmethod
    def _phone_or_sip(cls, value: str) -> str:
        if not (_TEL.match(value) or _SIP.match(value)):
            raise ValueError(
                f"{value!r} is not a transfer target: use 'tel:+<country code><number>' "
                "(E.164, e.g. 'tel:+15550100200') or a SIP URI ('sip:desk@pbx.example.com')"
            )
        return value

    @property
    def dial_target(self) -> str:
        """What ``CreateSIPParticipant.sip_call_to`` takes: the number without ``tel:``."""
        return self.to.removeprefix("tel:")
