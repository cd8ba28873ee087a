"""``record_<field>`` tools: how an agent writes caller data into the shared userdata.

The tool's one argument is named after the field (``account_number``), with the field's
description, pattern and example in its JSON schema. A value that fails the field's ``pattern``,
or an argument of the wrong name or type, is refused with a :class:`ToolError` whose message
tells the model what was wrong and what to ask, so it can recover on its next step. A field
already collected is never overwritten silently: the caller correcting it is the only reason to
call the tool again, and the tool says so.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from livekit.agents import RunContext, ToolError, function_tool
from livekit.agents.llm import RawFunctionTool

from frontdesk.agents.userdata import CallerData
from frontdesk.workflows.definition import CallerField, templates

logger = logging.getLogger(__name__)

MAX_VALUE_LENGTH = 200
"""Longer values are refused: caller data are short facts, never whole utterances."""

OnRecorded = Callable[[RunContext[CallerData]], Awaitable[None]]


def record_tool_name(field_name: str) -> str:
    return f"record_{field_name}"


def refusal(
    field_name: str, spec: CallerField, value: str, values: Mapping[str, object] | None = None
) -> str:
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
    ask = f" Ask again: {templates.fill(spec.ask, values or {}, fallback='')}" if spec.ask else ""
    return reason + hint + ask


def record_schema(field_name: str, spec: CallerField) -> dict[str, Any]:
    """The JSON schema of ``record_<field>``: one string argument named after the field."""
    parameter: dict[str, Any] = {"type": "string", "description": spec.description}
    if spec.pattern:
        parameter["pattern"] = spec.pattern
    if spec.example:
        parameter["description"] += f" (for example {spec.example})"
        parameter["examples"] = [spec.example]
    return {
        "name": record_tool_name(field_name),
        "description": f"Record the caller's {field_name.replace('_', ' ')}: {spec.description}. "
        "Call it as soon as the caller gives it, then continue.",
        "parameters": {
            "type": "object",
            "properties": {field_name: parameter},
            "required": [field_name],
            "additionalProperties": False,
        },
    }


def _shown(value: str) -> str:
    return value[:40] + ("…" if len(value) > 40 else "")


def argument_problem(
    field_name: str,
    spec: CallerField,
    arguments: dict[str, object],
    values: Mapping[str, object] | None = None,
) -> str | None:
    """What is wrong with the arguments of a ``record_<field>`` call, as one sentence; or None."""
    tool = record_tool_name(field_name)
    others = sorted(str(key) for key in arguments if key != field_name)
    if field_name not in arguments:
        got = f"got {', '.join(repr(key) for key in others)}" if others else "got no argument"
        return f"{tool} takes one argument named '{field_name}' ({got})."
    if others:
        return f"{tool} takes only '{field_name}' (unexpected: {', '.join(others)})."
    raw = arguments[field_name]
    if not isinstance(raw, str):
        return f"'{field_name}' must be a string, got {type(raw).__name__} {_shown(repr(raw))}."
    value = raw.strip()
    if not value or len(value) > MAX_VALUE_LENGTH or not spec.accepts(value):
        return refusal(field_name, spec, value, values)
    return None


def make_record_tool(
    field_name: str, spec: CallerField, *, on_recorded: OnRecorded
) -> RawFunctionTool[Any, Any]:
    """The ``record_<field>`` tool for one caller-data field.

    Arguments of the wrong name or shape, and values that fail the field's pattern, are refused
    with a :class:`ToolError` saying exactly what was wrong; the log line says the same.
    """

    async def record(raw_arguments: dict[str, object], context: RunContext[CallerData]) -> str:
        data = context.userdata
        problem = argument_problem(field_name, spec, raw_arguments, data.fields)
        if problem is not None:
            logger.info(
                "session %s: refused %s: %s", data.session_id, record_tool_name(field_name), problem
            )
            raise ToolError(problem)
        value = str(raw_arguments[field_name]).strip()
        gate = data.gate
        if gate is not None and gate.guards(field_name):
            # a resumed caller repeating a verification field: checked against the stored value
            await gate.check(field_name, value, context)
        previous = data.fields.get(field_name)
        data.fields = {**data.fields, field_name: value}
        await on_recorded(context)
        if previous and previous != value:
            return f"Updated {field_name} from {previous} to {value}."
        return f"Recorded {field_name} = {value}."

    return function_tool(record, raw_schema=record_schema(field_name, spec))
