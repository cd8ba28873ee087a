"""A call's transcript: who said what, which agent spoke each line, and the handoffs.

Built from LiveKit chat items (live ``session.history`` or the serialised items of a stored
session), so ``frontdesk sessions show`` and the worker's shutdown callback print the same thing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, Field


class TranscriptLine(BaseModel):
    """One spoken line."""

    role: str = Field(description="'caller' or 'agent'.")
    agent: str | None = Field(description="The agent on the call when the line was said.")
    text: str
    at: float | None = Field(default=None, description="Unix time the line was created.")


class TranscriptHandoff(BaseModel):
    """One agent change as LiveKit recorded it."""

    from_agent: str | None
    to_agent: str
    at: float | None = None


class Transcript(BaseModel):
    """Everything said in a call, in order."""

    session_id: str
    lines: list[TranscriptLine] = Field(default_factory=list)
    handoffs: list[TranscriptHandoff] = Field(default_factory=list)

    @property
    def agents_visited(self) -> list[str]:
        seen: list[str] = []
        for handoff in self.handoffs:
            if handoff.to_agent not in seen:
                seen.append(handoff.to_agent)
        return seen

    @property
    def caller_turns(self) -> int:
        return sum(1 for line in self.lines if line.role == "caller")


def _field(item: Any, name: str) -> Any:
    return item.get(name) if isinstance(item, dict) else getattr(item, name, None)


def _text(item: Any) -> str:
    content = _field(item, "content") or []
    return " ".join(part for part in content if isinstance(part, str)).strip()


def build_transcript(
    session_id: str, items: Iterable[Any], *, agent: str | None = None
) -> Transcript:
    """The transcript of ``items`` (LiveKit ``ChatItem`` objects or their serialised dicts).

    ``agent`` is the agent on the call before the first item (set when items are a resumed tail).
    """
    transcript = Transcript(session_id=session_id)
    current = agent
    for item in items:
        kind = _field(item, "type")
        at = _field(item, "created_at")
        if kind == "agent_handoff":
            current = _field(item, "new_agent_id")
            transcript.handoffs.append(
                TranscriptHandoff(from_agent=_field(item, "old_agent_id"), to_agent=current, at=at)
            )
        elif kind == "message" and _field(item, "role") in ("user", "assistant"):
            text = _text(item)
            if text:
                role = "caller" if _field(item, "role") == "user" else "agent"
                transcript.lines.append(TranscriptLine(role=role, agent=current, text=text, at=at))
    return transcript
