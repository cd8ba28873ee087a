"""Durations in config: a number of seconds or a string such as ``"15m"``, ``"24h"``, ``"250ms"``."""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import BeforeValidator

MAX_DURATION = 365 * 86400.0
"""Longest duration accepted: beyond it Redis would refuse the TTL, and it is surely a typo."""
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")


def parse_duration(value: object) -> float:
    """Seconds from ``15``, ``15.5``, ``"90s"``, ``"15m"``, ``"24h"``, ``"7d"`` or ``"250ms"``."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as '15m', '90s' or a number of seconds")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION_RE.match(value)):
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2) or "s"]
    else:
        raise ValueError(
            f"expected a duration such as '15m', '90s' or a number of seconds, got {value!r}"
        )
    if not math.isfinite(seconds) or seconds < 0 or seconds > MAX_DURATION:
        raise ValueError(f"a duration must be between 0 and 365 days, got {value!r}")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""A duration in seconds, written in config as a number or a string like ``"15m"``."""
