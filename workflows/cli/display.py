"""Caller and stored text made safe for the terminal: data, never markup or control codes.

What a caller says (and what a stored session holds) reaches ``frontdesk chat``, ``simulate``,
``demo`` and ``sessions show``. Printed through rich as is, ``[/x]`` crashes rich's markup parser,
``[link=…]`` becomes a clickable link and raw escape sequences clear the screen or retitle the
window. :func:`shown` strips control characters (C0, C1, DEL, bidi overrides; tab and newline
become spaces) and escapes rich markup; the stored text is never changed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from rich.markup import escape

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
MAX_SHOWN = 2000
"""Longer texts are cut on screen (the stored text keeps everything)."""


def plain(text: object, *, limit: int = MAX_SHOWN, lines: bool = False) -> str:
    """``text`` without control characters, cut at ``limit`` characters; on one line unless
    ``lines`` (then newlines are kept)."""
    value = _CONTROL.sub("", str(text)).replace("\t", " ").replace("\r", "")
    if not lines:
        value = value.replace("\n", " ")
    return value if len(value) <= limit else value[: limit - 1] + "…"


def shown(text: object, *, limit: int = MAX_SHOWN, lines: bool = False) -> str:
    """``text`` safe to embed in a rich markup string."""
    return escape(plain(text, limit=limit, lines=lines))


def masked(text: str, values: Iterable[str]) -> str:
    """``text`` with each sensitive value replaced by its mask (``****8213``)."""
    from frontdesk.state.crypto import mask, replace_sealed

    for value in sorted({v for v in values if v and len(v) >= 2}, key=len, reverse=True):
        text = text.replace(value, mask(value))
    return replace_sealed(text, "[encrypted]")
