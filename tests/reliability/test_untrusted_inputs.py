"""Job metadata and scenario files from outside: malformed, wrongly typed or huge → clean rejection.

* ``decide_job`` (LiveKit's request handler) gets whatever a dispatcher put in the job metadata;
  it must answer every request without raising, with a short reason, and accept only what
  names a workflow this worker serves (or nothing at all).
* ``parse_scenario`` gets files other tooling writes; only ``ScenarioError`` may come out, each
  problem naming its key path (and line).
* ``frontdesk simulate`` on broken files exits 2 with a message and no traceback.
"""

from __future__ import annotations

import asyncio
import copy
import json
import subprocess
import sys
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from frontdesk.errors import ScenarioError
from frontdesk.workflows.definition import Workflow
from frontdesk.workflows.runtime import Scenario, parse_scenario
from frontdesk.workflows.worker import MAX_METADATA_BYTES, JobDecision, decide_job, request_job

from . import toml_writer
from .problem_lines import check_problems
from .support import CONFIG, ROOT

pytestmark = pytest.mark.reliability

FUZZ_SETTINGS = settings(
    max_examples=3000,
    deadline=None,
    database=None,
    derandomize=True,
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
)

# --------------------------------------------------------------------------- job metadata

JSON = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=20),
        st.sampled_from(["acme-broadband", "dental-clinic", "", " ", "acme-broadband\x00"]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(["workflow", "agent_type", "caller", "x"]), inner, max_size=3
        ),
    ),
    max_leaves=8,
)
HUGE_METADATA = [
    "x" * (MAX_METADATA_BYTES + 1),
    json.dumps(
        {"workflow": "acme-broadband", "pad": "é" * (MAX_METADATA_BYTES // 2 + 1)},
        ensure_ascii=False,
    ),
    "[" * 60_000,
    '{"workflow": ' * 5_000,
    '{"workflow": 1' + "0" * 10_000 + "}",
    json.dumps({"workflow": "acme-broadband"}) + "\x00",
    "\ud800",
]
METADATA = st.one_of(
    st.text(max_size=100),
    JSON.map(json.dumps),
    st.fixed_dictionaries({}, optional={"workflow": JSON, "agent_type": JSON, "caller": JSON}).map(
        json.dumps
    ),
    st.sampled_from(HUGE_METADATA),
    st.sampled_from(
        [None, 5, b'{"workflow": "acme-broadband"}', ["acme-broadband"], {"workflow": "x"}]
    ),
)


def _should_accept(metadata: object, served: set[str]) -> bool:
    if (
        not isinstance(metadata, str)
        or len(metadata.encode("utf-8", "replace")) > MAX_METADATA_BYTES
    ):
        return False
    if not metadata.strip():
        return True
    try:
        data = json.loads(metadata)
    except (ValueError, RecursionError):
        return False
    if not isinstance(data, dict):
        return False
    names = [data.get(key) for key in ("workflow", "agent_type") if data.get(key) is not None]
    return all(isinstance(name, str) and name in served for name in names)


def test_job_metadata_of_any_shape_gets_a_short_answer_and_never_an_exception(
    workflow: Workflow,
) -> None:
    served = set(workflow.config.worker.serves or (workflow.name,))
    figures = {"requests": 0, "accepted": 0, "rejected": 0, "slowest_ms": 0.0}

    @FUZZ_SETTINGS
    @given(METADATA)
    def check(metadata: Any) -> None:
        started = time.perf_counter()
        decision = decide_job(metadata, workflow)
        figures["slowest_ms"] = max(figures["slowest_ms"], (time.perf_counter() - started) * 1000)
        figures["requests"] += 1
        assert isinstance(decision, JobDecision)
        assert len(decision.reason) < 300, decision.reason[:400]
        assert decision.accept == _should_accept(metadata, served), (repr(metadata)[:200], decision)
        if decision.accept:
            figures["accepted"] += 1
            assert decision.workflow_name in served
        else:
            figures["rejected"] += 1

    check()
    for metadata in HUGE_METADATA:
        check.hypothesis.inner_test(metadata)  # type: ignore[attr-defined]
    print(
        f"\n[job metadata] requests={figures['requests']} accepted={figures['accepted']} "
        f"rejected={figures['rejected']} exceptions=0 slowest_ms={figures['slowest_ms']:.1f}"
    )
    assert figures["slowest_ms"] < 500


class _Request:
    """What LiveKit hands ``request_fnc``: a job with metadata, accept() and reject()."""

    def __init__(self, metadata: Any) -> None:
        self.id = "AJ_test"
        self.job = SimpleNamespace(metadata=metadata)
        self.room = SimpleNamespace(name="room-1")
        self.answers: list[tuple[str, Any]] = []

    async def accept(self, **kwargs: Any) -> None:
        self.answers.append(("accept", kwargs))

    async def reject(self, *, terminate: bool = False) -> None:
        self.answers.append(("reject", terminate))


async def test_the_request_handler_answers_every_hostile_request_exactly_once(
    workflow: Workflow,
) -> None:
    answered = 0
    for metadata in [*HUGE_METADATA, None, 5, b"{}", "{not json", '{"workflow": "nope"}', ""]:
        request = _Request(metadata)
        await asyncio.wait_for(request_job(request, workflow=workflow), 5)  # type: ignore[arg-type]
        assert len(request.answers) == 1, request.answers
        kind, detail = request.answers[0]
        if kind == "reject":
            assert detail is False, "a rejection must leave the job to other workers"
        answered += 1
    print(f"\n[request handler] hostile_requests={answered} answered_once={answered}")


# --------------------------------------------------------------------------- scenario files

SCENARIO_TEXT = (ROOT / "workflows" / "runtime" / "demo_scenario.toml").read_text()
SCENARIO: dict[str, Any] = tomllib.loads(SCENARIO_TEXT)
SCENARIO_KEYS = {"config", "caller", "turn"}
SCENARIO_SOURCE = "scenario.toml"
# Keys are printable: a key holding a line break would split its own error line (noted in the
# report; ScenarioError joins its problems with line breaks and prints keys raw).
KEYS = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=8)
SCENARIO_VALUES = st.one_of(
    st.none(),
    st.integers(),
    st.booleans(),
    st.text(max_size=20),
    st.sampled_from(["x" * 100_000, "disconnect", "reconnect", "explode", "support", ""]),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(KEYS, st.integers() | st.text(max_size=5), max_size=2),
)


@st.composite
def scenario_text(draw: st.DrawFn) -> str:
    data = copy.deepcopy(SCENARIO)
    for _ in range(draw(st.integers(1, 3))):
        turns = data.get("turn")
        kind = draw(st.sampled_from(["turn_key", "turn_key", "top", "delete", "unknown", "many"]))
        if kind == "turn_key" and isinstance(turns, list) and turns:
            turn = turns[draw(st.integers(0, len(turns) - 1))]
            if not isinstance(turn, dict):
                continue
            key = draw(
                st.sampled_from(
                    [
                        "say",
                        "event",
                        "expect_agent",
                        "expect_reply_contains",
                        "expect_reply_not_contains",
                        "expect_data",
                    ]
                )
            )
            turn[key] = draw(SCENARIO_VALUES)
        elif kind == "top":
            data[draw(st.sampled_from(sorted(SCENARIO_KEYS)))] = draw(SCENARIO_VALUES)
        elif kind == "delete":
            data.pop(draw(st.sampled_from(sorted(SCENARIO_KEYS))), None)
        elif kind == "unknown":
            data[draw(KEYS)] = draw(SCENARIO_VALUES)
        elif kind == "many":
            data["turn"] = [{"say": "hi"}] * draw(st.sampled_from([0, 1, 3]))
    data = {k: v for k, v in data.items() if v is not None}
    for turn in data.get("turn", []) if isinstance(data.get("turn"), list) else []:
        if isinstance(turn, dict):
            for key in [k for k, v in turn.items() if v is None]:
                del turn[key]
    return toml_writer.dumps(data)


def test_generated_scenarios_only_raise_scenario_errors_naming_key_paths() -> None:
    figures = {"generated": 0, "accepted": 0, "rejected": 0, "locator_gaps": 0}
    badly_named: list[str] = []
    unexpected: list[str] = []

    @FUZZ_SETTINGS
    @given(scenario_text())
    def check(text: str) -> None:
        figures["generated"] += 1
        try:
            scenario = parse_scenario(text, source=Path(SCENARIO_SOURCE))
        except ScenarioError as exc:
            figures["rejected"] += 1
            bad, gaps = check_problems(
                text,
                str(exc).split("\n"),
                source=SCENARIO_SOURCE,
                top_level=SCENARIO_KEYS,
                turns_from_one=True,
            )
            badly_named.extend(bad)
            figures["locator_gaps"] += gaps
            return
        except Exception as exc:
            unexpected.append(f"{type(exc).__name__}: {str(exc)[:200]}")
            return
        figures["accepted"] += 1
        assert isinstance(scenario, Scenario) and 1 <= len(scenario.turn) <= 10_000

    check()
    print(
        f"\n[scenario fuzz] generated={figures['generated']} accepted={figures['accepted']} "
        f"rejected={figures['rejected']} unexpected_exceptions={len(unexpected)} "
        f"problem_lines_without_key_path={len(badly_named)} "
        f"lines_missing_for_escaped_keys={figures['locator_gaps']}"
    )
    assert not unexpected, unexpected[:5]
    assert not badly_named, badly_named[:5]
    assert figures["accepted"] > 0 and figures["rejected"] > 0


BROKEN_CONFIG = CONFIG.read_text().replace('to = "support"', 'to = "nobody"', 1)
BROKEN_SCENARIOS: dict[str, bytes] = {
    "not-toml.toml": b'caller = "+1555\n[[turn]\nsay = "hi"\n',
    "binary.toml": b"\xff\xfe\x00\x00[[turn]]",
    "wrong-types.toml": b"caller = 5\n[[turn]]\nsay = 1\nexpect_data = { account_number = 48213 }\n",
    "unknown-event.toml": b'[[turn]]\nevent = "explode"\n',
    "too-many-turns.toml": b'[[turn]]\nsay = "hi"\n' * 10_001,
    "huge-caller.toml": b'caller = "' + b"9" * 300 + b'"\n[[turn]]\nsay = "hi"\n',
    "broken-config.toml": b'config = "broken-config.cfg"\n[[turn]]\nsay = "hi"\n',
}


def test_frontdesk_simulate_exits_2_without_a_traceback_on_malformed_scenarios(
    tmp_path: Path,
) -> None:
    (tmp_path / "broken-config.cfg").write_text(BROKEN_CONFIG)
    for name, content in BROKEN_SCENARIOS.items():
        (tmp_path / name).write_bytes(content)

    def simulate(name: str) -> tuple[str, subprocess.CompletedProcess[str]]:
        done = subprocess.run(
            [sys.executable, "-m", "frontdesk", "simulate", name, "--no-state"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return name, done

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(simulate, BROKEN_SCENARIOS))
    for name, done in results:
        output = done.stdout + done.stderr
        assert done.returncode == 2, f"{name}: exit {done.returncode}\n{output[-2000:]}"
        assert "Traceback" not in output, f"{name}:\n{output[-3000:]}"
        assert "error:" in done.stderr, f"{name}: {output[-2000:]}"
        assert len(output) < 20_000, f"{name}: {len(output)} characters of output"
    print(
        f"\n[frontdesk simulate] malformed_scenarios={len(results)} "
        f"exit_codes={sorted({done.returncode for _, done in results})} tracebacks=0"
    )
