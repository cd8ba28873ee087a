"""What keeps a call on its feet when the model misbehaves or fails.

Attached to every ``AgentSession`` a call runs on (:func:`frontdesk.workflows.runtime.start_call`):

- **Model failures.** When the profile's every model failed a turn (LiveKit reports a
  non-recoverable ``llm_error`` once its retries, or a ``FallbackAdapter``'s whole chain, are
  spent), the caller hears ``[workflow] error_line`` verbatim and the call goes on: the caller
  simply speaks again. After ``max_consecutive_errors`` failed turns in a row the caller hears
  ``error_goodbye`` and the call ends through the normal path (state saved), never through
  LiveKit's "closing due to unrecoverable error" (the session's own limit is set above ours).
- **Handoffs are one reply.** When a model response hands off, the old agent is not asked for a
  tool reply even if another tool of the same response (a ``record_`` call) wants one: the new
  agent speaks next, so a handoff turn costs the transfer request plus the new agent's reply.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from livekit.agents import AgentSession, llm
from livekit.agents.voice.events import (
    ConversationItemAddedEvent,
    ErrorEvent,
    FunctionToolsExecutedEvent,
)

from frontdesk.workflows.definition import WorkflowSection

logger = logging.getLogger(__name__)

EndCall = Callable[[str], None]
"""Ends the call with a reason (the session is closed and the state saved by the caller's code)."""


def livekit_error_limit(settings: WorkflowSection) -> int:
    """LiveKit's own consecutive-error limit: above ours, so ours always acts first."""
    return settings.max_consecutive_errors + 2


class CallGuard:
    """Counts failed model turns, speaks the configured lines, ends the call politely."""

    def __init__(self, session: AgentSession[Any], settings: WorkflowSection) -> None:
        self._session = session
        self._settings = settings
        self.consecutive_errors = 0
        self.failed_turns = 0
        self.ended_reason: str | None = None
        self._own_lines = {settings.error_line, settings.error_goodbye}

    def attach(self) -> None:
        self._session.on("error", self._on_error)
        self._session.on("conversation_item_added", self._on_item)
        self._session.on("function_tools_executed", self._on_tools)

    def detach(self) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._session.off("error", self._on_error)
            self._session.off("conversation_item_added", self._on_item)
            self._session.off("function_tools_executed", self._on_tools)

    # ------------------------------------------------------------------ events

    def _on_error(self, event: ErrorEvent) -> None:
        error = event.error
        if not isinstance(error, llm.LLMError) or error.recoverable or self.ended_reason:
            return
        self.consecutive_errors += 1
        self.failed_turns += 1
        userdata = self._session.userdata
        session_id = getattr(userdata, "session_id", "?")
        logger.error(
            "session %s: every language model failed this turn (%d in a row): %s",
            session_id,
            self.consecutive_errors,
            error.error,
        )
        if self.consecutive_errors >= self._settings.max_consecutive_errors:
            self.ended_reason = f"ended after {self.consecutive_errors} failed model turns in a row"
            logger.error("session %s: %s; saying goodbye", session_id, self.ended_reason)
            handle = self._session.say(self._settings.error_goodbye, allow_interruptions=False)
            handle.add_done_callback(lambda _: self._session.shutdown(drain=True))
            return
        self._session.say(self._settings.error_line)

    def _on_item(self, event: ConversationItemAddedEvent) -> None:
        item = event.item
        if (
            isinstance(item, llm.ChatMessage)
            and item.role == "assistant"
            and (item.text_content or "") not in self._own_lines
        ):
            self.consecutive_errors = 0

    def _on_tools(self, event: FunctionToolsExecutedEvent) -> None:
        self.consecutive_errors = 0
        if event.has_agent_handoff:
            event.cancel_tool_reply()
