"""The benchmarks stay runnable, and ``python -m bench --check`` fails on a regression.

Figures are not asserted here (they belong to ``bench/``, not to timed tests): the quick slice
only has to run to the end, write its JSON with every target, and ``--check`` has to turn a
target that stopped holding into exit status 1.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.check import compare

ROOT = Path(__file__).resolve().parents[2]


def _target(name: str, holds: bool, value: float | None, noise: float | None = None) -> dict:
    return {
        "target": name,
        "wanted": "-",
        "measured": str(value),
        "holds": holds,
        "missed_by": None,
        "value": value,
        "noise": noise,
    }


def test_a_target_that_held_and_now_misses_by_more_than_the_noise_is_a_regression() -> None:
    [verdict] = compare(
        "persist", [_target("p99", True, 0.40, 0.1)], [_target("p99", False, 0.60, 0.1)]
    )
    assert verdict.status == "regressed"


def test_a_miss_within_the_measured_noise_is_not_a_regression() -> None:
    [verdict] = compare(
        "persist", [_target("p99", True, 0.48, 0.1)], [_target("p99", False, 0.51, 0.2)]
    )
    assert verdict.status == "within noise"


def test_only_targets_that_held_can_regress() -> None:
    verdicts = compare(
        "persist",
        [_target("missed", False, 9.0), _target("held", True, 1.0)],
        [_target("missed", False, 20.0), _target("held", True, 1.3), _target("new", False, 1.0)],
    )
    assert [v.status for v in verdicts] == ["still missed", "holds", "new"]


def test_the_quick_persist_slice_runs_and_check_exits_1_on_a_regression(tmp_path: Path) -> None:
    baseline = tmp_path / "baseline"
    baseline.mkdir()
    committed = json.loads((ROOT / "bench" / "results" / "persist.json").read_text("utf-8"))
    # without the LangGraph peer this target is always "skipped": say it held, so it regresses
    for target in committed["targets"]:
        if target["target"] == "vs LangGraph at 500":
            target["holds"] = True
    (baseline / "persist.json").write_text(json.dumps(committed), "utf-8")
    out = tmp_path / "run"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--only",
            "persist",
            "--no-peer",
            "--json-dir",
            str(out),
            "--check",
            "--baseline",
            str(baseline),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert "regressed" in done.stdout
    written = json.loads((out / "persist.json").read_text("utf-8"))
    names = {t["target"] for t in written["targets"]}
    assert {
        "persist p99",
        "persist vs floor",
        "commands per append",
        "round trips per turn",
    } <= names
    assert all(row["floor"]["n"] > 0 for row in written["results"])
