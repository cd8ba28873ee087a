"""Config patterns run on RE2: linear time whatever the pattern and whatever the caller says.

A ``[caller_data.<field>] pattern`` is matched against caller text on every turn. With Python's
backtracking ``re``, a pattern like ``(a+)+$`` takes exponential time on a 30-character
utterance: one caller could hang a call (and the worker's event loop). RE2 (``google-re2``)
guarantees time linear in the input, for every pattern it accepts; the few constructs it lacks
(backreferences, lookahead/lookbehind) need backtracking, so ``frontdesk validate`` refuses them
with the reason. RE2's ``\\d``, ``\\w`` and ``\\s`` are ASCII-only ("AC-４８２１３" is not an
account number); a pattern that wants other scripts says so (``\\p{Nd}``, ``\\pL``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Protocol

import re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would print every refused pattern to stderr


class Match(Protocol):
    def group(self, index: int = 0) -> str: ...
    def span(self, index: int = 0) -> tuple[int, int]: ...
    def start(self, index: int = 0) -> int: ...
    def end(self, index: int = 0) -> int: ...


class Pattern(Protocol):
    """What Frontdesk uses of a compiled pattern (RE2's mirrors ``re.Pattern``)."""

    @property
    def pattern(self) -> str: ...
    def fullmatch(self, text: str) -> Match | None: ...
    def search(self, text: str) -> Match | None: ...
    def match(self, text: str, pos: int = 0) -> Match | None: ...
    def finditer(self, text: str) -> Any: ...


class PatternError(ValueError):
    """A pattern RE2 cannot run (the message says why)."""


def compile_pattern(pattern: str, *, ignore_case: bool = False) -> Pattern:
    """``pattern`` compiled by RE2, or :class:`PatternError` with the reason."""
    source = f"(?i:{pattern})" if ignore_case else pattern
    try:
        compiled: Pattern = re2.compile(source, _OPTIONS)
    except re2.error as exc:
        detail = exc.args[0] if exc.args else exc
        reason = detail.decode(errors="replace") if isinstance(detail, bytes) else str(detail)
        try:
            re.compile(pattern)
        except (re.error, RecursionError, OverflowError):
            raise PatternError(f"pattern does not compile: {reason}") from None
        hint = ""
        if any(token in pattern for token in ("(?=", "(?!", "(?<=", "(?<!")):
            hint = " (lookahead and lookbehind need backtracking, which can hang a call)"
        elif "\\1" in pattern or "(?P=" in pattern:
            hint = " (backreferences need backtracking, which can hang a call)"
        raise PatternError(
            f"pattern cannot run in linear time with RE2: {reason}{hint}; rewrite it without "
            "backreferences or lookaround"
        ) from None
    return compiled


def span_finder(regex: Pattern) -> Callable[[str], list[tuple[int, int]]]:
    """The spans ``(start, end)`` of every match of ``regex`` in a text (a sensitive field's
    values, for sealing, hiding from the model and masking on screen)."""

    def spans(text: str) -> list[tuple[int, int]]:
        return [match.span() for match in regex.finditer(text)]

    return spans
