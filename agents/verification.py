"""Verification of a caller resumed by caller ID, before their sensitive data is released.

Caller ID is a hint, not a credential: anyone can present someone else's number. Under
``[state.resume] trust = "caller_id+verify"`` a returning caller is put back on the agent they
were talking to with the *non-sensitive* context (which agent, what the problem was), while every
field marked ``sensitive = true`` is withheld:

- from the caller data, so it is in no agent's call-context block, no template and no spoken line
  (the agent sees it as still needed, and asks for it);
- from the history the model sees: every stored copy of a withheld value (the caller's words,
  the agent's replies, stored instructions) is replaced by :data:`WITHHELD`, and tool calls that
  carried one are dropped.

The caller verifies by giving the ``verify_with`` field(s) again: the ``record_<field>`` tool
passes the answer to :meth:`VerificationGate.check`, which compares it in constant time with the
stored value. Wrong answers are counted in Redis per caller (:mod:`frontdesk.state.attempts`); at
``verify_attempts`` the caller is locked out: the ``lockout_line`` is said verbatim, a log line
records it, and the identity cannot resume until ``lockout`` has passed. Nothing of an unverified
call is stored in the session the genuine caller resumes from (the recorder is held back until
:meth:`VerificationGate.check` succeeds, and the turns before that are never written).
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from livekit.agents import ToolError
from livekit.agents.llm import ChatContext, ChatItem, ChatMessage

logger = logging.getLogger(__name__)

WITHHELD = "[withheld until the caller is verified]"
"""What the model sees in place of a withheld value."""

OnVerified = Callable[[], Awaitable[None]]


class AttemptCounter(Protocol):
    """Failed verification attempts per caller hash (see ``frontdesk.state.attempts``)."""

    async def record_failure(self, caller_hash: str, *, window: float) -> int: ...

    async def clear(self, caller_hash: str) -> None: ...


Finder = Callable[[str], Iterable[tuple[int, int]]]
"""Spans ``(start, end)`` of values to hide in a text (a sensitive field's pattern)."""


def _same(given: str, stored: str) -> bool:
    """Constant-time comparison of a caller's answer with the stored value."""
    a = " ".join(given.split()).casefold().encode()
    b = " ".join(stored.split()).casefold().encode()
    return hmac.compare_digest(a, b)


@dataclass
class VerificationGate:
    """The verification state of one resumed call (kept out of the model's sight)."""

    session_id: str
    caller_hash: str
    withheld: dict[str, str]
    """Sensitive values not released yet, by field."""
    required: tuple[str, ...]
    """Fields the caller must repeat (each with a stored value among ``stored``)."""
    stored: Mapping[str, str]
    """The stored values the answers are compared with."""
    attempts: AttemptCounter
    max_attempts: int
    lockout: float
    lockout_line: str
    on_verified: OnVerified | None = None
    on_locked_out: Callable[[], None] | None = None
    """Called once when the caller is locked out (the ``verification_failed`` resume metric)."""
    confirmed: set[str] = field(default_factory=set)
    verified: bool = False
    locked: bool = False

    def guards(self, field_name: str) -> bool:
        """True when a value recorded for ``field_name`` is a verification answer."""
        return not self.verified and field_name in self.required

    async def check(self, field_name: str, value: str, context: Any) -> None:
        """Check one answer; return when it matches, raise ``ToolError`` (or stop) otherwise.

        On the last required answer the withheld data is released into the caller data and
        ``on_verified`` runs (it starts persisting the call).
        """
        data = context.userdata
        if self.locked:
            raise ToolError(
                "This caller is locked out of verification: do not ask for it again, and tell "
                "them: I can't check those details on this call, but I can help with anything else."
            )
        if _same(value, self.stored[field_name]):
            self.confirmed.add(field_name)
            if set(self.required) <= self.confirmed:
                self.verified = True
                data.fields = {**data.fields, **self.withheld}
                self.withheld = {}
                logger.info("session %s: caller verified (%s)", self.session_id, field_name)
                try:
                    await self.attempts.clear(self.caller_hash)
                except Exception as exc:  # Redis down: the counter expires by itself
                    logger.warning("session %s: could not clear attempts: %s", self.session_id, exc)
                if self.on_verified is not None:
                    await self.on_verified()
            return
        try:
            failures = await self.attempts.record_failure(self.caller_hash, window=self.lockout)
        except Exception as exc:  # Redis down: count in this call at least
            logger.warning("session %s: could not count a failed attempt: %s", self.session_id, exc)
            failures = self.max_attempts
        logger.warning(
            "session %s: verification answer for %s did not match (%d of %d attempts)",
            self.session_id,
            field_name,
            failures,
            self.max_attempts,
        )
        if failures >= self.max_attempts:
            self.locked = True
            if self.on_locked_out is not None:
                self.on_locked_out()
            logger.warning(
                "session %s: caller#%s locked out of verification for %.0fs after %d wrong "
                "answers; their saved data stays withheld",
                self.session_id,
                self.caller_hash[:8],
                self.lockout,
                failures,
            )
            from livekit.agents.llm import StopResponse

            context.session.say(self.lockout_line)
            raise StopResponse()
        raise ToolError(
            f"That {field_name.replace('_', ' ')} does not match our records. "
            f"Ask again: Could you repeat your {field_name.replace('_', ' ')}?"
        )


# --------------------------------------------------------------------------- what the model sees


def hide_values(text: str, values: Iterable[str], finders: Iterable[Finder] = ()) -> str:
    """``text`` with every copy of ``values`` (and every span a finder reports) replaced."""
    spans: list[tuple[int, int]] = []
    lowered = text.casefold()
    for value in values:
        needle = value.strip().casefold()
        if len(needle) < 2:
            continue
        start = lowered.find(needle)
        while start >= 0:
            spans.append((start, start + len(needle)))
            start = lowered.find(needle, start + 1)
    for finder in finders:
        spans.extend(finder(text))
    if not spans:
        return text
    out: list[str] = []
    position = 0
    for start, end in sorted(spans):
        if end <= position:
            continue
        out.append(text[position : max(start, position)])
        out.append(WITHHELD)
        position = end
    out.append(text[position:])
    return "".join(out)


def _contains(text: str, values: Iterable[str], finders: Iterable[Finder]) -> bool:
    return hide_values(text, values, finders) != text


def withheld_history(
    history: ChatContext, values: Iterable[str], finders: Iterable[Finder] = ()
) -> ChatContext:
    """A copy of ``history`` with no trace of ``values``: what an unverified caller's agent sees.

    Messages keep their place (and id) with the values replaced; a tool call or output that
    carried a value is dropped with its pair; config updates (stored instructions) are redacted.
    """
    values = [v for v in values if v]
    finders = list(finders)
    items: list[ChatItem] = []
    dropped_calls: set[str] = set()
    for item in history.items:
        if item.type in ("function_call", "function_call_output"):
            text = item.arguments if item.type == "function_call" else item.output
            if _contains(text or "", values, finders):
                dropped_calls.add(item.call_id)
    for item in history.items:
        if item.type in ("function_call", "function_call_output"):
            if item.call_id in dropped_calls:
                continue
            items.append(item)
        elif item.type == "message":
            content = [
                hide_values(part, values, finders) if isinstance(part, str) else part
                for part in item.content
            ]
            if content != item.content:
                item = ChatMessage(
                    id=item.id,
                    role=item.role,
                    content=content,
                    interrupted=item.interrupted,
                    created_at=item.created_at,
                )
            items.append(item)
        elif item.type == "agent_config_update":
            instructions = item.instructions
            if instructions is not None and _contains(instructions, values, finders):
                item = item.model_copy(
                    update={"instructions": hide_values(instructions, values, finders)}
                )
            items.append(item)
        else:
            items.append(item)
    return ChatContext(items)


def history_mentions(history: ChatContext, values: Iterable[str]) -> bool:
    """True when any value appears anywhere in ``history`` (for tests and assertions)."""
    dumped = json.dumps(history.to_dict(exclude_timestamp=True))
    return any(value and value in dumped for value in values)
