"""``record_<field>`` tools: how an agent writes caller data into the shared userdata.

The tool's one argument is named after the field (``account_number``), with the field's
description, type and constraints (pattern, choices, min/max, items) and example in its JSON
schema. A value is normalised by the field's type before it is stored ("four" → 4, "March 9th
2014" → "2014-03-09", a synonym → its choice; see
:mod:`frontdesk.workflows.definition.field_types`). A value that fails the field's rules, or an
argument of the wrong name or type, is refused with a :class:`ToolError` whose message tells the
model what was wrong, what is allowed and what to ask, so it can recover on its next step. A field
already collected is never overwritten silently: the caller correcting it is the only reason to
call the tool again, and the tool says so ("Updated party_size from 4 to 5.").

A field with ``confirm = true`` is read back first: the first call holds the value and asks the
model to read it back; the same value recorded again (the caller agreed) is stored.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from livekit.agents import RunContext, ToolError, function_tool
from livekit.agents.llm import RawFunctionTool

from frontdesk.agents.userdata import CallerData
from frontdesk.workflows.definition import CallerField, templates
from frontdesk.workflows.definition.field_types import (
    FieldValue,
    FieldValueError,
    as_text,
    describe,
    json_schema,
    label_of,
)

logger = logging.getLogger(__name__)

MAX_VALUE_LENGTH = 200
"""Longer values are refused: caller data are short facts, never whole utterances."""

OnRecorded = Callable[[RunContext[CallerData]], Awaitable[None]]

READ_BACK_MARKER = "[frontdesk:read-back]"
"""Starts the record tool's answer to a ``confirm = true`` field's first call."""


def record_tool_name(field_name: str) -> str:
    return f"record_{field_name}"


def refusal(
    field_name: str,
    spec: CallerField,
    value: str,
    values: Mapping[str, object] | None = None,
    reason: str | None = None,
) -> str:
    """Why ``value`` is refused for ``field_name``, in words the model can repeat to the caller.

    Reads as a sentence whatever the field declares: an empty value, one too long, one that
    does not match; with or without an ``example`` (the hint) and an ``ask`` (what to ask next).
    """
    label = field_name.replace("_", " ")
    shown = "".join(ch if ch.isprintable() else " " for ch in value[:40]).strip()
    shown += "…" if len(value) > 40 else ""
    question = ask_line(spec, values or {})
    ask = f" Ask again: {question}" if question is not None else ""
    if reason is not None and spec.type != "string":
        said = f'"{shown}" is not accepted: ' if shown else ""
        return f"{said}{reason[:1].upper() if not said else reason[:1]}{reason[1:]}.{ask}"
    if not value:
        reason = f"No {label} was given."
    elif len(value) > MAX_VALUE_LENGTH:
        reason = f"That is too long for the {label} ({len(value)} characters; at most {MAX_VALUE_LENGTH})."
    else:
        reason = f'"{shown}" is not a valid {label}.'
    hint = f" It must look like {spec.example}." if spec.example else ""
    return reason + hint + ask


def ask_line(spec: CallerField, values: Mapping[str, object]) -> str | None:
    """The field's ``ask`` with its ``{field}``s filled (a missing one without a default left
    out); None when the field has no ``ask``."""
    return templates.fill(spec.ask, values, fallback="") if spec.ask else None


def record_schema(field_name: str, spec: CallerField) -> dict[str, Any]:
    """The JSON schema of ``record_<field>``: one argument named after the field, typed by the
    field's ``type`` with its constraints (``minimum``/``maximum``, ``enum``, ``items``…)."""
    parameter: dict[str, Any] = json_schema(spec, spec.description)
    if spec.pattern:
        parameter["pattern"] = spec.pattern
    if spec.confirm:
        parameter["description"] += (
            " Read the value back to the caller and record it again once they agree."
        )
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
    typed = spec.type != "string"
    if not isinstance(raw, str) and not (typed and isinstance(raw, int | float | bool | list)):
        kind = "a string" if not typed else "a JSON value"
        return f"'{field_name}' must be {kind}, got {type(raw).__name__} {_shown(repr(raw))}."
    if not typed:
        value = str(raw).strip()
        if not value or len(value) > MAX_VALUE_LENGTH or not spec.accepts(value):
            return refusal(field_name, spec, value, values)
        return None
    try:
        spec.normalise(raw, label=label_of(field_name))
    except FieldValueError as exc:
        shown = raw.strip() if isinstance(raw, str) else as_text(raw)
        return refusal(field_name, spec, shown, values, reason=str(exc))
    return None


def normalised(field_name: str, spec: CallerField, raw: object) -> FieldValue:
    """The value ``record_<field>`` stores for an accepted argument."""
    if spec.type == "string":
        return str(raw).strip()
    return spec.normalise(raw, label=label_of(field_name))


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
        value = normalised(field_name, spec, raw_arguments[field_name])
        shown = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
        if spec.confirm and data.unconfirmed.get(field_name) != value:
            data.unconfirmed = {**data.unconfirmed, field_name: value}
            return (
                f"{READ_BACK_MARKER} {field_name} = {shown} is not stored yet. Read it back to "
                f'the caller and ask if it is right: "{label_of(field_name)} {as_text(value)}, is '
                f'that right?" If they agree, call {record_tool_name(field_name)} again with the '
                "same value; if not, ask for it again."
            )
        data.unconfirmed = {k: v for k, v in data.unconfirmed.items() if k != field_name}
        gate = data.gate
        if gate is not None and gate.guards(field_name):
            # a resumed caller repeating a verification field: checked against the stored value
            await gate.check(field_name, as_text(value), context)
        previous = data.fields.get(field_name)
        data.fields = {**data.fields, field_name: value}
        await on_recorded(context)
        if previous is not None and previous != value:
            old = (
                json.dumps(previous, ensure_ascii=False)
                if not isinstance(previous, str)
                else previous
            )
            return f"Updated {field_name} from {old} to {shown} (the caller corrected it)."
        return f"Recorded {field_name} = {shown}."

    return function_tool(record, raw_schema=record_schema(field_name, spec))


def needed_line(
    field_name: str, spec: CallerField, values: Mapping[str, object] | None = None
) -> str:
    """The call-context line of a field still needed: its question (``{field}``s filled from
    ``values``), and for a typed field what a valid value is ("How many people? (a whole
    number between 1 and 12)")."""
    question = ask_line(spec, values or {}) or spec.description
    if spec.type == "string":
        return question
    return f"{question} ({describe(spec, label_of(field_name))})"
