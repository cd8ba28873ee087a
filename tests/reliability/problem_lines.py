"""Checks that the problem lines of a ConfigError/ScenarioError name a key path and its line.

A problem line reads ``SOURCE[:LINE] key.path: message`` (or ``SOURCE: not valid TOML: ...``).
The key path must walk the parsed document down to a key that is there (or is the missing
one), and when the key is in the file the line must be given and must mention it.
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

from . import toml_writer


def _parts(path: str) -> list[str | int]:
    """``agents.sales.handoffs[0].to`` → ``["agents", "sales", "handoffs", 0, "to"]``.

    A key holding '.' comes out in pieces; :func:`_walk` glues them back as it goes.
    """
    parts: list[str | int] = []
    for chunk in path.split("."):
        pieces = re.findall(r"\[(\d+)\]|((?:[^\[]|\[(?!\d+\]))+)", chunk)
        if not pieces:
            parts.append("")  # an empty key: `"" = 1`
        for index, name in pieces:
            parts.append(int(index) if index else name)
    return parts


def _walk(data: Any, parts: list[str | int], top_level: set[str]) -> bool:
    """Whether ``parts`` walk ``data`` down to a key that is there, or is the missing last one."""
    node, position = data, 0
    parts = [p for p in parts if p != "[key]"]
    while position < len(parts):
        part = parts[position]
        if isinstance(node, list) and isinstance(part, int) and part < len(node):
            node, position = node[part], position + 1
            continue
        if not isinstance(node, dict):
            return False
        for end in range(len(parts), position, -1):
            key = ".".join(str(p) for p in parts[position:end])
            if key in node:
                node, position = node[key], end
                break
        else:
            return position == len(parts) - 1 or (position == 0 and part in top_level)
    return True


def _escaped(name: str) -> str:
    return toml_writer._string(name)[1:-1]


def check_problems(
    text: str,
    problems: list[str],
    *,
    source: str,
    top_level: set[str],
    turns_from_one: bool = False,
) -> tuple[list[str], int]:
    """(problem lines that fail the checks, problem lines hitting a known locator gap).

    ``turns_from_one``: a scenario's problems count turns from 1 (``turn[1]`` is ``turn[0]`` of
    the parsed document); a ``turn[0]`` there is a bad path.

    Known gap (tests of its own in test_config_fuzz.py): no line for a key the file defines
    only through a table header (``[a.b]`` implies ``a``; ``[[a]]``), or writes with an escape
    or a quote character.
    """
    toml_error = re.compile(
        rf"^{re.escape(source)}: not valid TOML: .*\(at (line \d+, column \d+|end of document)\)$",
        re.S,
    )
    problem_re = re.compile(
        rf"^{re.escape(source)}(?::(?P<line>\d+))? (?P<path>.+?): (?P<message>.+)$", re.S
    )
    if len(problems) == 1 and "not valid TOML" in problems[0]:
        return ([] if toml_error.match(problems[0]) else problems), 0
    bad: list[str] = []
    gaps = 0
    data = tomllib.loads(text)
    lines = text.split("\n")  # TOML's lines, as an editor numbers them
    for problem in problems:
        match = problem_re.match(problem)
        parts = _parts(match["path"]) if match else []
        if turns_from_one and len(parts) > 1 and parts[0] == "turn" and isinstance(parts[1], int):
            parts[1] -= 1
            if parts[1] < 0:
                bad.append(problem + "  <- turns count from 1")
                continue
        if match is None or not (match["path"] == "(top level)" or _walk(data, parts, top_level)):
            bad.append(problem)
            continue
        names = [str(p) for p in parts if isinstance(p, str) and p != "[key]"]
        if match["line"] is None:
            if names and names[0] in data:
                header = re.compile(rf'^\s*\[\[?\s*"?{re.escape(names[0])}"?\s*[.\]]', re.M)
                if header.search(text) or _escaped(names[0]) != names[0] or "'" in names[0]:
                    gaps += 1
                else:
                    bad.append(problem + "  <- no line, yet the key is in the file")
            continue
        line = int(match["line"])
        if not 1 <= line <= len(lines):
            bad.append(problem + "  <- line out of range")
            continue
        content = lines[line - 1]
        if not any(n in content or _escaped(n) in content for n in names or ['""']):
            bad.append(problem + f"  <- line {line} is {content[:80]!r}")
    return bad, gaps
