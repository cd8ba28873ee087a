"""LiveKit chat items from their stored JSON, as ``ChatContext.from_dict`` makes them.

``ChatContext.from_dict`` builds a pydantic ``TypeAdapter(list[ChatItem])`` on every call (a
schema build of about a millisecond) before validating; a resume decodes a window of items and
the background check decodes the older ones in slices, so the adapter is built once here. The
validation is LiveKit's own: the same adapter over LiveKit's ``ChatItem`` union, the same
``ChatContext``.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from livekit.agents.llm import ChatContext, ChatItem
from pydantic import TypeAdapter


@cache
def _adapter() -> TypeAdapter[list[ChatItem]]:
    return TypeAdapter(list[ChatItem])


def chat_context(items: list[dict[str, Any]]) -> ChatContext:
    """``ChatContext.from_dict({"items": items})``; pydantic's ``ValidationError`` when invalid."""
    return ChatContext(_adapter().validate_python(items))
