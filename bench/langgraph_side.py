"""The LangGraph column: the same session kept as ``AsyncRedisSaver`` checkpoints.

An *equivalent checkpoint* holds what Frontdesk stores: the chat items (the same LiveKit dicts,
not converted to LangChain messages, so no extra conversion cost is charged to LangGraph) in a
``messages`` channel and the session meta in a ``session`` channel. Each turn is one ``aput`` of a
new checkpoint whose parent is the previous one, as a LangGraph graph step does; a load is
``aget_tuple`` of the thread's latest checkpoint.

Imported only when the peer is available (``langgraph`` is not a Frontdesk dependency).
"""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.base import empty_checkpoint

from frontdesk.state.models import SessionMeta, SessionState


class LangGraphSession:
    """One thread of an ``AsyncRedisSaver`` used as a session store."""

    def __init__(self, saver: Any, thread_id: str) -> None:
        self._saver = saver
        self.thread_id = thread_id
        self._step = 0
        self._config: dict[str, Any] = {
            "configurable": {"thread_id": thread_id, "checkpoint_ns": ""}
        }

    async def save(self, meta: dict[str, Any], items: list[dict[str, Any]]) -> None:
        """Store the whole session as the thread's next checkpoint."""
        self._step += 1
        version = str(self._step)
        checkpoint = empty_checkpoint()
        checkpoint["channel_values"] = {"messages": items, "session": meta}
        checkpoint["channel_versions"] = {"messages": version, "session": version}
        self._config = await self._saver.aput(
            self._config,
            checkpoint,
            {"source": "loop", "step": self._step, "parents": {}},
            {"messages": version, "session": version},
        )

    async def load(self) -> SessionState:
        config = {"configurable": {"thread_id": self.thread_id, "checkpoint_ns": ""}}
        found = await self._saver.aget_tuple(config)
        if found is None:
            raise KeyError(self.thread_id)
        values = found.checkpoint["channel_values"]
        meta = SessionMeta.model_validate(values["session"])
        return SessionState.model_construct(**dict(meta), items=values["messages"])

    async def reset(self) -> None:
        """Delete every checkpoint of the thread (untimed housekeeping between samples)."""
        await self._saver.adelete_thread(self.thread_id)
        self._config = {"configurable": {"thread_id": self.thread_id, "checkpoint_ns": ""}}
