"""Where a key path of a TOML text is defined: ``file:line key.path: message`` for every error."""

from __future__ import annotations

import json
import re


def format_path(path: tuple[str | int, ...]) -> str:
    """``("agents", "sales", "handoffs", 0, "to")`` → ``agents.sales.handoffs[0].to``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


_KEY_PART = r"""[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*'"""
_DOTTED = rf"(?:{_KEY_PART})(?:\s*\.\s*(?:{_KEY_PART}))*"
_HEADER_RE = re.compile(rf"^\s*(\[\[?)\s*({_DOTTED})\s*\]\]?\s*(?:#.*)?$")
_KEY_RE = re.compile(rf"^\s*({_DOTTED})\s*=(.*)$")


def _split_dotted(key: str) -> list[str]:
    """The parts of a dotted TOML key, quotes removed and basic-string escapes decoded."""
    parts: list[str] = []
    for part in re.findall(_KEY_PART, key):
        if part.startswith('"'):
            try:
                parts.append(json.loads(part))
            except ValueError:
                parts.append(part[1:-1])
        elif part.startswith("'"):
            parts.append(part[1:-1])
        else:
            parts.append(part)
    return parts


def _opens_multiline_string(value: str, inside: str | None) -> str | None:
    """The multi-line string delimiter still open after ``value`` (None: none is)."""
    for delimiter in ('"""', "'''"):
        if inside in (None, delimiter) and value.count(delimiter) % 2 == 1:
            return None if inside == delimiter else delimiter
    return inside


class KeyLocator:
    """Maps key paths of a TOML text to the line that defines them.

    tomllib keeps no positions, so this reads table headers (``[a.b]`` also defines ``a``;
    ``[[a.b]]`` defines the array ``a.b`` and its element ``a.b[i]``) and ``key =`` lines,
    skipping the inside of multi-line strings. Keys inside inline tables resolve to their
    parent's line. Lines are counted on ``\\n`` only, as TOML does.
    """

    def __init__(self, text: str) -> None:
        self.lines: dict[tuple[str | int, ...], int] = {}
        table: tuple[str | int, ...] = ()
        array_counts: dict[tuple[str | int, ...], int] = {}
        inside: str | None = None
        for number, line in enumerate(text.split("\n"), start=1):
            if inside is not None:
                inside = _opens_multiline_string(line, inside)
                continue
            key = _KEY_RE.match(line)
            header = None if key else _HEADER_RE.match(line)
            if header is not None:
                names = tuple(_split_dotted(header.group(2)))
                for end in range(1, len(names) + 1):
                    self.lines.setdefault(names[:end], number)
                if header.group(1) == "[[":
                    index = array_counts.get(names, 0)
                    array_counts[names] = index + 1
                    table = (*names, index)
                else:
                    table = names
                self.lines.setdefault(table, number)
            elif key is not None:
                path = (*table, *_split_dotted(key.group(1)))
                for end in range(len(table) + 1, len(path) + 1):
                    self.lines.setdefault(path[:end], number)
                inside = _opens_multiline_string(key.group(2), None)

    def line_of(self, path: tuple[str | int, ...]) -> int | None:
        """The line of the longest prefix of ``path`` that the text defines."""
        for end in range(len(path), 0, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return None

    def format(self, source: str, path: tuple[str | int, ...], message: str) -> str:
        line = self.line_of(path)
        where = f"{source}:{line}" if line is not None else source
        return f"{where} {format_path(path)}: {message}"
