"""``record_<field>`` tools: how an agent writes caller data into the shared userdata.

A value that fails the field's ``pattern`` is refused with a :class:`ToolError` whose message
tells the model what was wrong and what to ask, so it can recover on its next step. A field
already collected is never overwritten silently: the caller correcting it is the only reason to
call the tool again, and the tool says so.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from livekit.agents import RunContext, ToolError, function_tool
from livekit.agents.llm import RawFunctionTool

from frontdesk.agents.userdata import CallerData
from frontdesk.workflows.definition import CallerField

logger = logging.getLogger(__name__)

MAX_VALUE_LENGTH = 200
"""Longer values are refused: caller data are short facts, never whole utterances."""

OnRecorded = Callable[[RunContext[CallerData]], Awaitable[None]]


def record_tool_name(field_name: str) -> str:
    return f"record_{field_name}"


def refusal(field_name: str, spec: CallerField, value: str) -> str:
    """Why ``value`` is refused for ``field_name``, in words the model can repeat to the caller.

    Reads as a sentence whatever the field declares: an empty value, one too long, one that
    does not match; with or without an ``example`` (the hint) and an ``ask`` (what to ask next).
    """
    label = field_name.replace("_", " ")
    if not value:
        reason = f"No {label} was given."
    elif len(value) > MAX_VALUE_LENGTH:
        reason = f"That is too long for the {label} ({len(value)} characters; at most {MAX_VALUE_LENGTH})."
    else:
        shown = "".join(ch if ch.isprintable() else " " for ch in value[:40]).strip()
        shown += "…" if len(value) > 40 else ""
        reason = f'"{shown}" is not a valid {label}.'
    hint = f" It must look like {spec.example}." if spec.example else ""
    ask = f" Ask again: {spec.ask}" if spec.ask else ""
    return reason + hint + ask


def make_record_tool(
    field_name: str, spec: CallerField, *, on_recorded: OnRecorded
) -> RawFunctionTool[Any, Any]:
    """The ``record_<field>`` tool for one caller-data field."""
    parameter: dict[str, Any] = {"type": "string", "description": spec.description}
    if spec.example:
        parameter["description"] += f" (for example {spec.example})"
    schema = {
        "name": record_tool_name(field_name),
        "description": f"Record the caller's {field_name.replace('_', ' ')}: {spec.description}. "
        "Call it as soon as the caller gives it, then continue.",
        "parameters": {
            "type": "object",
            "properties": {"value": parameter},
            "required": ["value"],
            "additionalProperties": False,
        },
    }

    async def record(raw_arguments: dict[str, object], context: RunContext[CallerData]) -> str:
        raw = raw_arguments.get("value")
        value = raw.strip() if isinstance(raw, str) else ""
        data = context.userdata
        if not value or len(value) > MAX_VALUE_LENGTH or not spec.accepts(value):
            logger.info(
                "session %s: refused %s value (%s)",
                data.session_id,
                field_name,
                "empty" if not value else "does not match its pattern",
            )
            raise ToolError(refusal(field_name, spec, value))
        previous = data.fields.get(field_name)
        data.fields = {**data.fields, field_name: value}
        await on_recorded(context)
        if previous and previous != value:
            return f"Updated {field_name} from {previous} to {value}."
        return f"Recorded {field_name} = {value}."

    return function_tool(record, raw_schema=schema)
