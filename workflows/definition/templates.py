"""``{field}`` templates: the one placeholder syntax of every configured text.

Spoken lines (``greeting``, ``say``, ``resume``, ``end_call``, a field's ``ask``, the offline
brain's ``reply``), an agent's ``instructions`` and the HTTP tools' ``url``, ``headers``,
``query`` and ``body`` all use it:

- ``{name}``: the caller-data field ``name``;
- ``{name|default text}``: the same, with the text to use while the field is not known (or is
  withheld from a caller who has not verified yet); the default may be empty (``{name|}``) and
  holds no ``{``, ``}`` or ``|``;
- ``{env.NAME}``: the worker's environment variable ``NAME`` (HTTP tools' headers, query and
  body only: secrets are never spoken, logged or put in a URL).

A placeholder without a default whose field is not known makes :func:`fill` return ``None``:
the caller of :func:`fill` decides what happens then (a verbatim line is handed to the model
instead, an HTTP tool does not run). :func:`check` is what ``validate`` runs over every template:
a name that is not a declared field is an error with a "did you mean".
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from frontdesk.workflows.definition.field_types import as_text

PLACEHOLDER = re.compile(
    r"\{(?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)(?:\|(?P<default>[^{}|]*))?\}"
)
"""``{name}``, ``{name|default}`` or ``{env.NAME}``."""

ENV_PREFIX = "env."


@dataclass(frozen=True)
class Placeholder:
    """One placeholder of a template."""

    name: str
    default: str | None
    """The text used while the value is not known; None: the placeholder has no default."""

    @property
    def is_env(self) -> bool:
        return self.name.startswith(ENV_PREFIX)


def placeholders(template: str) -> list[Placeholder]:
    """Every placeholder of ``template``, in order."""
    return [
        Placeholder(name=match.group("name"), default=match.group("default"))
        for match in PLACEHOLDER.finditer(template)
    ]


def names(template: str) -> list[str]:
    """Every name a template uses, in order (``env.X`` included)."""
    return [placeholder.name for placeholder in placeholders(template)]


def required_names(template: str) -> list[str]:
    """The names a template cannot be filled without (placeholders with no default), once each."""
    found: list[str] = []
    for placeholder in placeholders(template):
        if placeholder.default is None and placeholder.name not in found:
            found.append(placeholder.name)
    return found


def spoken(value: object) -> str:
    """A caller-data value as it is put into a line: text as is, yes/no, numbers, lists (the
    typed fields' own spoken form, :func:`~frontdesk.workflows.definition.field_types.as_text`)."""
    if isinstance(value, str | bool | int | float | list):
        return as_text(value)
    if isinstance(value, tuple):
        return as_text(list(value))
    return json.dumps(value, ensure_ascii=False, default=str)


def fill(
    template: str,
    values: Mapping[str, object],
    *,
    withheld: Collection[str] = (),
    fallback: str | None = None,
) -> str | None:
    """``template`` with its placeholders filled from ``values``.

    A placeholder whose value is missing, ``None`` or in ``withheld`` gets its default; without
    a default it gets ``fallback``, and when ``fallback`` is ``None`` the whole template cannot
    be filled: the result is ``None``.
    """
    unfilled = False

    def one(match: re.Match[str]) -> str:
        nonlocal unfilled
        name, default = match.group("name"), match.group("default")
        value = values.get(name) if name not in withheld else None
        if value is not None:
            return spoken(value)
        if default is not None:
            return default
        if fallback is not None:
            return fallback
        unfilled = True
        return ""

    filled = PLACEHOLDER.sub(one, template)
    return None if unfilled else filled


def unknown_name(name: str, known: Collection[str]) -> str:
    """``unknown field 'nmae' (did you mean 'name'?)``, or the declared fields."""
    close = difflib.get_close_matches(name, list(known), n=1)
    if close:
        return f"unknown field '{name}' (did you mean '{close[0]}'?)"
    listed = ", ".join(sorted(known)) or "none declared"
    return f"unknown field '{name}' (declared fields: {listed})"


def check(template: str, fields: Collection[str], *, allow_env: bool = False) -> list[str]:
    """What is wrong with the placeholders of ``template``, one message each (empty: nothing)."""
    problems: list[str] = []
    for placeholder in placeholders(template):
        if placeholder.is_env:
            if not allow_env:
                problems.append(
                    f"{{{placeholder.name}}}: environment variables are only allowed in HTTP "
                    "tools' headers, query and body (never in a spoken line or instructions)"
                )
        elif placeholder.name not in fields:
            message = unknown_name(placeholder.name, fields)
            if message not in problems:
                problems.append(message)
    return problems
