"""Feeds a live ``AgentSession`` into the state store as the call goes.

LiveKit tells us when the conversation changes (``conversation_item_added``,
``function_tools_executed``, ``agent_state_changed``); on each we hand whatever is new in
``session.history`` plus the current meta (agent, caller data, greeted set, handoff trail) to the
:class:`~frontdesk.state.writer.SessionWriter`, which persists in the background: the reply path
never waits for Redis. Items are tracked by id, not by position, because LiveKit orders history by
creation time and an item may land before the last one.
"""

from __future__ import annotations

import time
from typing import Any

from frontdesk.agents.userdata import CallerData
from frontdesk.state.models import HandoffEntry, SessionState
from frontdesk.state.writer import SessionWriter
from frontdesk.workflows.config import Workflow
from livekit.agents import AgentSession
from livekit.agents.llm import ChatContext

_EVENTS = ("conversation_item_added", "function_tools_executed", "agent_state_changed")


def serialize_items(items: list[Any]) -> list[dict[str, Any]]:
    """LiveKit chat items in their own serialised form (timestamps kept: results order by them)."""
    items_dict: list[dict[str, Any]] = ChatContext(items).to_dict(exclude_timestamp=False)["items"]
    return items_dict


def meta_of(data: CallerData, *, turns: int) -> dict[str, Any]:
    """The per-session fields stored beside the chat items."""
    return {
        "current_agent": data.current_agent,
        "caller_data": dict(data.fields),
        "greeted": sorted(data.greeted),
        "handoff_trail": [
            HandoffEntry(
                from_agent=h.from_agent, to_agent=h.to_agent, reason=h.reason, at=h.at
            ).model_dump(mode="json")
            for h in data.handoff_trail
        ],
        "turns": turns,
        "updated_at": time.time(),
    }


class SessionRecorder:
    """Watches one session and submits its changes to a writer."""

    def __init__(
        self,
        *,
        session: AgentSession[CallerData],
        writer: SessionWriter,
        workflow: Workflow,
        caller_hash: str | None,
        created_at: float,
        persisted_ids: set[str] | None = None,
    ) -> None:
        self._session = session
        self._writer = writer
        self._workflow = workflow
        self._caller_hash = caller_hash
        self._created_at = created_at
        self._persisted: set[str] = set(persisted_ids or ())
        self._attached = False

    @property
    def turns(self) -> int:
        return sum(
            1
            for item in self._session.history.items
            if item.type == "message" and item.role == "user"
        )

    def attach(self) -> None:
        for event in _EVENTS:
            self._session.on(event, self._on_change)
        self._attached = True

    def detach(self) -> None:
        if self._attached:
            for event in _EVENTS:
                self._session.off(event, self._on_change)
            self._attached = False

    def _on_change(self, _event: object = None) -> None:
        self.capture()

    def capture(self) -> int:
        """Submit what changed since the last capture; returns the number of new items."""
        new_items = [item for item in self._session.history.items if item.id not in self._persisted]
        self._persisted.update(item.id for item in new_items)
        self._writer.submit(
            serialize_items(new_items), meta_of(self._session.userdata, turns=self.turns)
        )
        return len(new_items)

    def full_state(self) -> SessionState:
        """The whole call as it is in memory: what a full rewrite stores after an outage."""
        data = self._session.userdata
        return SessionState(
            session_id=data.session_id,
            workflow=self._workflow.name,
            workflow_hash=self._workflow.content_hash,
            caller_hash=self._caller_hash,
            created_at=self._created_at,
            items=serialize_items(list(self._session.history.items)),
            **meta_of(data, turns=self.turns),
        )
