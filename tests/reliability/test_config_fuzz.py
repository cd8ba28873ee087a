"""Config fuzzing: 10,000 generated configs, valid and broken, through ``parse_workflow``.

Generated two ways: structural mutations of the default config.toml (wrong types, missing keys,
unknown keys and agents, bad patterns and context policies, bad durations, huge strings, extra
agents and profiles), written out as TOML; and textual mutations of the file itself (lines
deleted, duplicated, swapped, truncated, junk inserted). The properties:

* ``parse_workflow`` raises nothing but ``ConfigError``;
* every problem line names a key path that is in the config (or missing from it), with the
  line of that key when the key is in the file, and that line mentions the key;
* every accepted config builds a workflow that answers one simulated call turn (for as many
  accepted configs as a time budget allows; the count is printed).
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import math
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from frontdesk.errors import ConfigError
from frontdesk.state import connect_redis
from frontdesk.workflows.definition import Workflow, parse_workflow
from frontdesk.workflows.runtime import start_call

from . import toml_writer
from .problem_lines import check_problems
from .support import CONFIG, ROOT, make_store

pytestmark = pytest.mark.reliability

EXAMPLES = int(__import__("os").environ.get("FRONTDESK_FUZZ_EXAMPLES", "10000"))
TURN_BUDGET = 20.0
"""Seconds spent running one call turn on accepted configs (one session each)."""

SOURCE = "fuzz.toml"
BASE_TEXT = CONFIG.read_text()
BASE: dict[str, Any] = tomllib.loads(BASE_TEXT)
TOP_LEVEL = {"workflow", "caller_data", "agents", "providers", "state", "worker"}


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path in a parsed TOML document (tables, array elements, leaves)."""
    found: list[tuple[Any, ...]] = []
    if isinstance(value, dict):
        for key, child in value.items():
            found.append((*prefix, key))
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.append((*prefix, index))
            found += _paths(child, (*prefix, index))
    return found


BASE_PATHS = _paths(BASE)

# --------------------------------------------------------------------------- generated values

NAMES = st.sampled_from(
    [
        "receptionist",
        "support",
        "sales",
        "admin",
        "billing",
        "Admin",
        "two words",
        "x" * 41,
        "",
        "_x",
        "ä",
    ]
)
DURATIONS = st.sampled_from(
    [
        "15m",
        "0s",
        "-1s",
        "250ms",
        "1e9d",
        "inf",
        "nan",
        "9" * 30,
        "1.5h",
        " 3 s ",
        "3 x",
        "24h",
        "7d",
    ]
)
PATTERNS = st.sampled_from(
    [
        "(",
        "[a-",
        "(?P<x",
        "*",
        "\\",
        "a{2,1}",
        "(?<=a+)b",
        "AC-\\d{5}",
        "\\d+",
        "",
        ".*",
        "[[:alpha:]]",
    ]
)
POLICIES = st.sampled_from(
    [
        "full",
        "summary",
        "none",
        "last:1",
        "last:6",
        "last:0",
        "last:-1",
        "last:x",
        "LAST:3",
        "full ",
        "last:10000",
        "partial",
        "",
    ]
)
SCALARS = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=30),
    st.sampled_from(
        [
            "x" * 20_000,
            "\x00\x01\x7f",
            "🙂" * 1000,
            "line\nbreak",
            '"quoted"',
            dt.datetime(1979, 5, 27),
        ]
    ),
    DURATIONS,
    PATTERNS,
    POLICIES,
    NAMES,
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=4,
)


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


@st.composite
def mutated_config(draw: st.DrawFn) -> str:
    """The default config with 1 to 4 structural mutations, written as TOML."""
    data = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(data)
        kind = draw(
            st.sampled_from(
                [
                    "set",
                    "set",
                    "delete",
                    "unknown_key",
                    "name",
                    "pattern",
                    "policy",
                    "duration",
                    "new_agent",
                    "new_profile",
                    "drop_table",
                    "wrap",
                ]
            )
        )
        if kind in ("set", "delete", "wrap") and paths:
            path = draw(st.sampled_from(paths))
            parent = _get(data, path[:-1])
            if kind == "set":
                parent[path[-1]] = draw(VALUES)
            elif kind == "wrap":
                parent[path[-1]] = [parent[path[-1]]]
            elif isinstance(parent, dict):
                del parent[path[-1]]
            else:
                parent.pop(path[-1])
        elif kind == "unknown_key":
            tables = [p for p in paths if isinstance(_get(data, p), dict)]
            target = _get(data, draw(st.sampled_from(tables))) if tables else data
            target[draw(st.text(min_size=1, max_size=12))] = draw(VALUES)
        elif kind == "name":
            routes = [p for p in paths if p[-1] == "to"] + [("workflow", "start")]
            path = draw(st.sampled_from(routes))
            _set(data, path, draw(NAMES))
        elif kind == "pattern":
            _set(
                data,
                ("caller_data", draw(st.sampled_from(["account_number", "postcode"])), "pattern"),
                draw(PATTERNS),
            )
        elif kind == "policy":
            routes = [p for p in paths if p[-1] == "context"]
            if routes:
                _set(data, draw(st.sampled_from(routes)), draw(POLICIES))
        elif kind == "duration":
            key = draw(st.sampled_from(["ttl", "resume_window", "lease_ttl"]))
            _set(data, ("state", key), draw(st.one_of(DURATIONS, SCALARS)))
        elif kind == "new_agent":
            name = draw(NAMES)
            agent: dict[str, Any] = {"instructions": draw(st.text(max_size=20))}
            if draw(st.booleans()):
                agent["collects"] = draw(st.lists(NAMES, max_size=2))
            if draw(st.booleans()):
                agent["handoffs"] = [
                    {"to": draw(NAMES), "when": "always", "context": draw(POLICIES)}
                ]
            agents = data.setdefault("agents", {})
            if isinstance(agents, dict):
                agents[name] = agent
                if draw(st.booleans()) and isinstance(agents.get("receptionist"), dict):
                    way_in: Any = agents["receptionist"].setdefault("handoffs", [])
                    if isinstance(way_in, list):
                        way_in.append({"to": name, "when": "the caller asks", "examples": [name]})
        elif kind == "new_profile":
            providers = data.setdefault("providers", {})
            if isinstance(providers, dict):
                providers[draw(NAMES) or "p"] = {
                    "llm": {"provider": draw(st.sampled_from(["offline", "openai", "nope", 5]))},
                    draw(st.sampled_from(["stt", "tts", "vad", "bogus"])): draw(VALUES),
                }
        elif kind == "drop_table":
            data.pop(draw(st.sampled_from(sorted(TOP_LEVEL))), None)
    return toml_writer.dumps(data)


def _set(data: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    try:
        parent = _get(data, path[:-1])
        parent[path[-1]] = value
    except (KeyError, IndexError, TypeError):
        pass


@st.composite
def mangled_text(draw: st.DrawFn) -> str:
    """The default config.toml with its text damaged: often not TOML any more."""
    lines = BASE_TEXT.splitlines()
    for _ in range(draw(st.integers(1, 3))):
        if not lines:
            break
        index = draw(st.integers(0, len(lines) - 1))
        kind = draw(st.sampled_from(["delete", "duplicate", "swap", "truncate", "junk", "header"]))
        if kind == "delete":
            del lines[index]
        elif kind == "duplicate":
            lines.insert(index, lines[index])
        elif kind == "swap":
            other = draw(st.integers(0, len(lines) - 1))
            lines[index], lines[other] = lines[other], lines[index]
        elif kind == "truncate":
            lines[index] = lines[index][: draw(st.integers(0, len(lines[index])))]
            del lines[index + 1 :]
        elif kind == "junk":
            junk = draw(st.text(alphabet="[]=\"'{},.#\\\n\x00 abc=1", max_size=12))
            at = draw(st.integers(0, len(lines[index])))
            lines[index] = lines[index][:at] + junk + lines[index][at:]
        elif kind == "header":
            lines.insert(
                index,
                draw(
                    st.sampled_from(
                        ["[workflow]", "[[agents.sales.handoffs]]", "[agents]", "[state]"]
                    )
                ),
            )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- checks


# --------------------------------------------------------------------------- the tests


def test_generated_configs_only_raise_config_errors_naming_key_paths_and_lines() -> None:
    figures = {
        "generated": 0,
        "accepted": 0,
        "rejected": 0,
        "not_toml": 0,
        "unexpected": 0,
        "locator_gaps": 0,
    }
    accepted: dict[str, str] = {}
    unexpected: list[str] = []
    badly_named: list[str] = []
    unbuildable_profiles = unusable_durations = 0

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.one_of(mutated_config(), mutated_config(), mangled_text()))
    def check(text: str) -> None:
        nonlocal unbuildable_profiles, unusable_durations
        figures["generated"] += 1
        try:
            workflow = parse_workflow(text, source=SOURCE)
        except ConfigError as exc:
            figures["rejected"] += 1
            figures["not_toml"] += int(any("not valid TOML" in p for p in exc.problems))
            bad, gaps = check_problems(text, exc.problems, source=SOURCE, top_level=TOP_LEVEL)
            badly_named.extend(bad)
            figures["locator_gaps"] += gaps
            return
        except Exception as exc:
            figures["unexpected"] += 1
            unexpected.append(f"{type(exc).__name__}: {str(exc)[:200]}")
            return
        figures["accepted"] += 1
        accepted.setdefault(workflow.content_hash, text)
        # Known bugs with tests of their own (below): count them, do not fail here.
        try:
            workflow.config.providers.profiles  # noqa: B018
        except Exception:
            unbuildable_profiles += 1
        state = workflow.config.state
        if not all(math.isfinite(v) and v < 10**12 for v in (state.ttl, state.lease_ttl)):
            unusable_durations += 1

    started = time.monotonic()
    check()
    parse_seconds = time.monotonic() - started
    turns = asyncio.run(_one_turn_each(list(accepted.values()), TURN_BUDGET))
    print(
        f"\n[config fuzz] generated={figures['generated']} accepted={figures['accepted']} "
        f"distinct_accepted={len(accepted)} rejected={figures['rejected']} "
        f"not_toml={figures['not_toml']} unexpected_exceptions={figures['unexpected']} "
        f"problem_lines_without_key_path_or_line={len(badly_named)} "
        f"lines_missing_for_header_implied_or_escaped_keys={figures['locator_gaps']} "
        f"accepted_with_unbuildable_profiles={unbuildable_profiles} "
        f"accepted_with_unusable_ttl={unusable_durations} "
        f"one_turn_sessions_run={turns['run']} one_turn_failures={len(turns['failures'])} "
        f"parse_seconds={parse_seconds:.1f} session_seconds={turns['seconds']:.1f}"
    )
    assert figures["generated"] == EXAMPLES
    assert not unexpected, unexpected[:5]
    assert not badly_named, "\n".join(sorted(set(b[:300] for b in badly_named)))
    assert not turns["failures"], turns["failures"][:5]
    assert figures["accepted"] > EXAMPLES // 100 and figures["rejected"] > EXAMPLES // 10
    assert turns["run"] >= min(len(accepted), 100)


async def _one_turn_each(texts: list[str], budget: float) -> dict[str, Any]:
    """start_call (no persistence) + one session.run per accepted config, within ``budget``."""
    failures: list[str] = []
    run = 0
    started = time.monotonic()
    for text in texts:
        if time.monotonic() - started > budget:
            break
        workflow = parse_workflow(text, source=SOURCE)
        run += 1
        try:
            await asyncio.wait_for(_one_turn(workflow), 10)
        except Exception as exc:
            failures.append(f"{type(exc).__name__}: {str(exc)[:200]}\n{text[:400]}")
    return {"run": run, "failures": failures, "seconds": time.monotonic() - started}


async def _one_turn(workflow: Workflow) -> None:
    call = await start_call(workflow=workflow)
    try:
        start = call.session.current_agent.id
        result = await call.session.run(user_input="hi, my internet is down")
        assert result.events, "the turn produced nothing"
        for event in result.events:
            if event.type == "agent_handoff" and event.item.old_agent_id is not None:
                routes = {r.to for r in workflow.agent(event.item.old_agent_id).handoffs}
                assert event.item.new_agent_id in routes, "handoff outside the configured routes"
        assert start == workflow.start
    finally:
        await call.aclose()


def test_toml_writer_round_trips_the_default_config() -> None:
    assert tomllib.loads(toml_writer.dumps(BASE)) == BASE


# --------------------------------------------------------------------------- known bugs


def _variant(old: str, new: str) -> str:
    assert old in BASE_TEXT
    return BASE_TEXT.replace(old, new, 1)


def test_a_broken_provider_profile_is_a_config_error() -> None:
    text = _variant(
        'llm = { provider = "openai", model = "gpt-4o-mini" }', 'llm = { provider = "nope" }'
    )
    with pytest.raises(ConfigError, match=r"providers\.budget\.llm\.provider"):
        workflow = parse_workflow(text, source=SOURCE)
        workflow.config.providers.profiles  # noqa: B018


@pytest.mark.parametrize("ttl", ["inf", '"99999999999999999999d"'])
async def test_a_duration_redis_cannot_use_is_a_config_error(ttl: str, start_redis: Any) -> None:
    text = _variant('ttl = "24h"', f"ttl = {ttl}")
    try:
        workflow = parse_workflow(text, source=SOURCE)
    except ConfigError as exc:
        assert "state.ttl" in str(exc)
        return
    # Accepted: then a store built from it must work on a real Redis.
    client = connect_redis(start_redis().url)
    try:
        store = make_store(client, workflow)
        await store.claim("any-session", owner="worker")
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    ("old", "new", "path"),
    [
        ("[state]", "[[state]]", "state"),
        ("[caller_data.postcode]", "[caller_datum.postcode]", "caller_datum"),
        ("[workflow]", '"we\\"ird" = 1\n[workflow]', 'we"ird'),
    ],
)
def test_error_on_a_key_known_to_the_file_names_its_line(old: str, new: str, path: str) -> None:
    text = _variant(old, new)
    with pytest.raises(ConfigError) as info:
        parse_workflow(text, source=SOURCE)
    line = text.splitlines().index(new.splitlines()[0]) + 1
    assert any(p.startswith(f"{SOURCE}:{line} {path}:") for p in info.value.problems), (
        info.value.problems
    )


def test_error_lines_are_right_when_a_multiline_string_holds_a_header_like_line() -> None:
    text = _variant(
        "help with outages, slow internet and billing.", "help with outages.\n[state]\nttl = 1\n"
    ).replace('ttl = "24h"', 'ttl = "soon"')
    with pytest.raises(ConfigError) as info:
        parse_workflow(text, source=SOURCE)
    line = text.splitlines().index('ttl = "soon"') + 1
    assert info.value.problems[0].startswith(f"{SOURCE}:{line} state.ttl:")


def test_error_lines_count_only_newlines() -> None:
    text = _variant(
        "Acme Broadband's phone line: triage, then sales or support.", "Acme\u2028Broadband\x85line"
    ).replace('ttl = "24h"', 'ttl = "soon"')
    with pytest.raises(ConfigError) as info:
        parse_workflow(text, source=SOURCE)
    line = text.split("\n").index('ttl = "soon"') + 1
    assert info.value.problems[0].startswith(f"{SOURCE}:{line} state.ttl:")


# --------------------------------------------------------------------------- the CLI


BROKEN_FILES: dict[str, bytes] = {
    "wrong-type.toml": _variant("queue_limit = 1000", 'queue_limit = "lots"').encode(),
    "unknown-agent.toml": _variant('to = "sales"', 'to = "admin"').encode(),
    "not-toml.toml": BASE_TEXT[:400].encode() + b"\n[agents\n",
    "binary.toml": b"\x00\xff\xfe[workflow]\x00" * 100,
    "empty.toml": b"",
    "huge.toml": _variant(
        'name = "acme-broadband"', 'name = "' + "n" * 2_000_000 + '"\nbogus = 1'
    ).encode(),
}


def test_frontdesk_validate_rejects_broken_files_with_exit_2_and_no_traceback(
    tmp_path: Path,
) -> None:
    paths = []
    for name, content in BROKEN_FILES.items():
        path = tmp_path / name
        path.write_bytes(content)
        paths.append(path)
    paths += [tmp_path / "missing.toml", tmp_path]  # no such file; a directory
    codes = []
    for path in paths:
        done = subprocess.run(
            [sys.executable, "-m", "frontdesk", "validate", str(path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        output = done.stdout + done.stderr
        codes.append(done.returncode)
        assert done.returncode == 2, f"{path.name}: exit {done.returncode}\n{output[-2000:]}"
        assert "Traceback" not in output, f"{path.name}:\n{output[-2000:]}"
        assert str(path.name) in output, f"{path.name}: the error does not name the file"
        assert len(output) < 20_000, f"{path.name}: {len(output)} characters of output"
    print(f"\n[frontdesk validate] broken_files={len(paths)} exit_codes={sorted(set(codes))}")
