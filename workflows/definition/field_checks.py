"""Which ``[caller_data.<field>]`` keys go with which ``type``: the checks behind CallerField's validators.

Each check gets the field's ``type`` (None when the type itself was invalid: then the other keys
are not judged against it) and raises :class:`ValueError` with a message that says what is
allowed, which the loader prints as ``config.toml:LINE caller_data.<field>.<key>: message``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from frontdesk.workflows.definition.field_types import (
    BOUNDED_TYPES,
    PATTERN_TYPES,
    TEXT_TYPES,
)


def _listed(types: frozenset[str]) -> str:
    return ", ".join(sorted(types))


def check_choices(kind: str | None, items: str | None, value: tuple[str, ...]) -> tuple[str, ...]:
    enum_like = kind == "enum" or (kind == "list" and items == "enum")
    if kind is None:
        return value
    if value and not enum_like:
        raise ValueError(
            f'\'choices\' is only for type = "enum" (or a list with items = "enum"), not {kind!r}'
        )
    if kind == "enum" and not value:
        raise ValueError('type = "enum" needs choices = ["…", "…"] (the values it accepts)')
    seen: set[str] = set()
    for choice in value:
        if choice.lower() in seen:
            raise ValueError(f"choice {choice!r} is listed twice")
        seen.add(choice.lower())
    return value


def check_synonyms(
    choices: tuple[str, ...], value: dict[str, tuple[str, ...]]
) -> dict[str, tuple[str, ...]]:
    known = {choice.lower() for choice in choices}
    for choice, words in value.items():
        if choice not in choices:
            allowed = ", ".join(repr(c) for c in choices) or "none declared"
            raise ValueError(f"synonyms for {choice!r}, which is not a choice (choices: {allowed})")
        for word in words:
            if word.lower() in known:
                raise ValueError(f"synonym {word!r} of {choice!r} is itself a choice")
    return value


def check_bound(name: str, data: Mapping[str, Any], value: float | None) -> float | None:
    kind = data.get("type")
    if value is None or kind is None:
        return value
    if kind not in BOUNDED_TYPES:
        raise ValueError(f"'{name}' applies to types {_listed(BOUNDED_TYPES)}, not {kind!r}")
    if kind == "list" and (value < 0 or not float(value).is_integer()):
        raise ValueError(f"'{name}' of a list counts items: a whole number ≥ 0")
    low = data.get("min")
    if name == "max" and low is not None and value < low:
        raise ValueError(f"max ({value:g}) is smaller than min ({low:g})")
    return value


def check_items(kind: str | None, value: str | None) -> str | None:
    if kind is not None and value is not None and kind != "list":
        raise ValueError(f"'items' is only for type = \"list\", not {kind!r}")
    return value


def check_sensitive(kind: str | None, value: bool) -> bool:
    if value and kind is not None and kind not in TEXT_TYPES:
        raise ValueError(
            f"a sensitive field must hold text (types {_listed(TEXT_TYPES)}), not {kind!r}: "
            'only text is encrypted at rest — use type = "string" with a pattern'
        )
    return value


def check_pattern_type(kind: str | None, items: str | None, value: str | None) -> None:
    if value is None or kind is None:
        return
    if kind in PATTERN_TYPES or (kind == "list" and (items or "string") in PATTERN_TYPES):
        return
    raise ValueError(f"'pattern' applies to types {_listed(PATTERN_TYPES)}, not {kind!r}")
