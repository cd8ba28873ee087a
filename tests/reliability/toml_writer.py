"""A small TOML writer for generated configs (tomllib reads TOML but does not write it).

Covers what the fuzzer generates: tables, arrays of tables, inline arrays and tables, strings
with any characters (control characters and the Unicode line separators escaped), integers, floats (nan, inf), booleans and dates/times. Arrays of tables are
written as ``[[a.b]]`` when every element is a table, as TOML files usually are.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def dumps(data: dict[str, Any]) -> str:
    lines: list[str] = []
    _table(data, (), lines)
    return "\n".join(lines) + "\n"


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _string(key)


def _path(path: tuple[str, ...]) -> str:
    return ".".join(_key(part) for part in path)


_PLAIN = re.compile(r'^[^"\\\x00-\x1f\x7f\x85\u2028\u2029\ud800-\udfff]*$')


def _string(text: str) -> str:
    if _PLAIN.match(text):
        return f'"{text}"'
    out = ['"']
    for char in text:
        code = ord(char)
        if char == '"':
            out.append('\\"')
        elif char == "\\":
            out.append("\\\\")
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif code < 0x20 or code in (0x7F, 0x85, 0x2028, 0x2029) or 0xD800 <= code <= 0xDFFF:
            out.append(f"\\u{code:04X}" if code < 0xD800 else "\\uFFFD")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _table(data: dict[str, Any], path: tuple[str, ...], lines: list[str]) -> None:
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict) and not _is_table_array(v)}
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    arrays = {k: v for k, v in data.items() if _is_table_array(v)}
    for key, value in scalars.items():
        lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in tables.items():
        lines.append("")
        lines.append(f"[{_path((*path, key))}]")
        _table(value, (*path, key), lines)
    for key, values in arrays.items():
        for value in values:
            lines.append("")
            lines.append(f"[[{_path((*path, key))}]]")
            _table(value, (*path, key), lines)
