"""``python -m bench --check``: a run compared with the committed ``bench/results/``.

A target *regresses* when it held in the committed results, does not hold in this run, and its
figure is worse than the committed one by more than the run-to-run noise measured for it (the
larger of the two runs' :attr:`~bench.common.Target.noise`, at least :data:`MIN_NOISE`). A
target without a numeric figure regresses when it stops holding. Targets missed in the
committed results are reported, never failed on: only what held can regress.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MIN_NOISE = 0.05
"""Smallest relative allowance: a figure 5 % off is never called a regression."""


@dataclass(frozen=True)
class Verdict:
    benchmark: str
    target: str
    status: str
    """``regressed``, ``within noise``, ``holds``, ``still missed``, ``new`` or ``fixed``."""
    detail: str


def _allowance(*noises: Any) -> float:
    known = [float(n) for n in noises if isinstance(n, int | float) and math.isfinite(n)]
    return max([MIN_NOISE, *known])


def compare(
    benchmark: str, baseline: list[dict[str, Any]], current: list[dict[str, Any]]
) -> list[Verdict]:
    """One verdict per target of ``current`` (``as_json`` dicts of :class:`~bench.common.Target`)."""
    before = {t["target"]: t for t in baseline}
    verdicts: list[Verdict] = []
    for now in current:
        name = now["target"]
        then = before.get(name)
        if then is None:
            verdicts.append(Verdict(benchmark, name, "new", now["measured"]))
            continue
        if not then["holds"]:
            status = "fixed" if now["holds"] else "still missed"
            verdicts.append(Verdict(benchmark, name, status, now["measured"]))
            continue
        if now["holds"]:
            verdicts.append(Verdict(benchmark, name, "holds", now["measured"]))
            continue
        old, new = then.get("value"), now.get("value")
        detail = f"{then['measured']} → {now['measured']}"
        if isinstance(old, int | float) and isinstance(new, int | float) and old > 0:
            allowed = _allowance(then.get("noise"), now.get("noise"))
            worse = new / old - 1
            if worse <= allowed:
                verdicts.append(
                    Verdict(
                        benchmark, name, "within noise", f"{detail} ({worse:+.0%} ≤ ±{allowed:.0%})"
                    )
                )
                continue
            detail += f" ({worse:+.0%}, noise ±{allowed:.0%})"
        verdicts.append(Verdict(benchmark, name, "regressed", detail))
    return verdicts


def load_targets(json_dir: Path, benchmark: str) -> list[dict[str, Any]] | None:
    path = json_dir / f"{benchmark}.json"
    if not path.is_file():
        return None
    targets: list[dict[str, Any]] = json.loads(path.read_text("utf-8")).get("targets", [])
    return targets
