"""Mutation testing of Frontdesk's core, with cosmic-ray, on a temporary copy of the tree.

Python mutants come from cosmic-ray (its operators, its ``mutate_and_test``); the Lua scripts of
the state store are mutated by a list of textual changes (``lua_mutations.toml``). Both are run
against the *fast* tests that cover each module, as ``config.toml`` maps them: modules and
functions are named, never line numbers, so the configuration survives code moving around.

Why a copy: setuptools' ``package-dir`` mapping (``frontdesk.agents`` lives in ``agents/``) is
served to the editable install by an import hook that always points at the working tree. The
copy lays the package out as installed (``frontdesk/agents/…``) and puts it first on
``PYTHONPATH``, so the tests import the mutated files and the working tree is never touched.

Results accumulate in ``results.json`` (so one target can be re-run alone); the report
(``report.md``) is rendered from them and from the equivalent mutants listed in the config.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CONFIG = HERE / "config.toml"
LUA_CONFIG = HERE / "lua_mutations.toml"
BREAKS_CONFIG = HERE / "breaks.toml"
RESULTS = HERE / "results.json"
REPORT = HERE / "report.md"


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class Target:
    """Modules (or some of their functions) and the fast tests that must kill their mutants."""

    name: str
    modules: tuple[str, ...]
    tests: tuple[str, ...]
    functions: tuple[str, ...] = ()
    """Innermost ``def``/``class`` names whose mutants run; empty: the whole module."""
    max_mutants: int | None = None
    """Run at most this many, evenly spread over the module's mutants (the machine is shared)."""


@dataclass(frozen=True)
class Equivalent:
    """A surviving mutant that cannot change behaviour, with the reason in one line."""

    target: str
    function: str
    operator: str
    line: str
    """The original source line (stripped): identifies the spot without a line number."""
    reason: str


@dataclass(frozen=True)
class LuaMutation:
    name: str
    old: str
    new: str
    tests: tuple[str, ...]
    equivalent: str = ""
    occurrences: int = 1
    """How many times ``old`` is in ``frontdesk.state`` (more than once: each is mutated)."""


@dataclass(frozen=True)
class Edit:
    old: str
    new: str


@dataclass(frozen=True)
class Break:
    """A deliberate break of promised behaviour (issue 10's list): one or more textual edits of a
    module (or of a Lua script, ``script``), and the tests that must catch it."""

    name: str
    edits: tuple[Edit, ...]
    tests: tuple[str, ...]
    module: str = ""
    script: str = ""
    """A Lua script's name (``state/lua/<script>.lua``) instead of a Python module."""


@dataclass
class Outcome:
    target: str
    module: str
    function: str
    operator: str
    occurrence: int
    line: str
    mutated: str
    outcome: str
    """killed | survived | timeout | incompetent | no-test"""
    seconds: float
    output_tail: str = ""
    killed_by: str = ""
    """The first test that failed on the mutant (Lua mutations and deliberate breaks)."""


@dataclass
class Config:
    operators: tuple[str, ...]
    timeout_factor: float
    min_timeout: float
    lua_after: str = ""
    """The target after which the Lua mutants run (they come in the priority order too)."""
    targets: list[Target] = field(default_factory=list)
    equivalents: list[Equivalent] = field(default_factory=list)
    lua: list[LuaMutation] = field(default_factory=list)
    breaks: list[Break] = field(default_factory=list)


def load_config() -> Config:
    data = tomllib.loads(CONFIG.read_text())
    run = data["run"]
    config = Config(
        operators=tuple(run["operators"]),
        timeout_factor=float(run.get("timeout_factor", 3.0)),
        min_timeout=float(run.get("min_timeout", 30.0)),
        lua_after=run.get("lua_after", ""),
    )
    for entry in data.get("target", []):
        config.targets.append(
            Target(
                name=entry["name"],
                modules=tuple([entry["module"]] if "module" in entry else entry["modules"]),
                tests=tuple(entry["tests"]),
                functions=tuple(entry.get("functions", ())),
                max_mutants=entry.get("max_mutants"),
            )
        )
    for entry in data.get("equivalent", []):
        config.equivalents.append(Equivalent(**entry))
    lua = tomllib.loads(LUA_CONFIG.read_text())
    for entry in lua.get("mutation", []):
        config.lua.append(
            LuaMutation(
                name=entry["name"],
                old=entry["old"],
                new=entry["new"],
                tests=tuple(entry["tests"]),
                equivalent=entry.get("equivalent", ""),
                occurrences=entry.get("occurrences", 1),
            )
        )
    if BREAKS_CONFIG.exists():
        for entry in tomllib.loads(BREAKS_CONFIG.read_text()).get("break", []):
            config.breaks.append(
                Break(
                    name=entry["name"],
                    edits=tuple(Edit(old=e["old"], new=e["new"]) for e in entry["edits"]),
                    tests=tuple(entry["tests"]),
                    module=entry.get("module", ""),
                    script=entry.get("script", ""),
                )
            )
    return config


# --------------------------------------------------------------------------- checking it


def _definitions(source: str) -> set[str]:
    """The names of every ``def`` and ``class`` in a module's source."""
    return {
        node.name
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    }


def _test_paths_missing(root: Path, tests: tuple[str, ...]) -> list[str]:
    return [test for test in tests if not (root / test.split("::")[0]).exists()]


def config_problems(config: Config, root: Path, locate: Callable[[str], Path | None]) -> list[str]:
    """Every place where the configuration names code or tests that are not there (empty: fine).

    ``locate`` gives the file a module is imported from (``None``: no such module). Checked before
    any mutant runs, so a rename shows up at once as an error, never as a target with no mutants,
    an equivalent that no longer matches anything, or a Lua mutation that changes nothing.
    """
    problems: list[str] = []
    names = [target.name for target in config.targets]
    if config.lua_after and config.lua_after not in names:
        problems.append(f"[run] lua_after: no target is named {config.lua_after!r}")
    sources: dict[str, tuple[set[str], set[str]]] = {}  # target -> (definitions, stripped lines)
    for target in config.targets:
        definitions: set[str] = set()
        lines: set[str] = set()
        for module in target.modules:
            path = locate(module)
            if path is None or not path.is_file():
                problems.append(f"target {target.name!r}: module {module} is not there")
                continue
            text = path.read_text()
            definitions |= _definitions(text)
            lines |= {line.strip() for line in text.splitlines()}
        sources[target.name] = (definitions, lines)
        for function in target.functions:
            if function not in definitions:
                problems.append(
                    f"target {target.name!r}: no def or class {function!r} in "
                    f"{', '.join(target.modules)}"
                )
        for test in _test_paths_missing(root, target.tests):
            problems.append(f"target {target.name!r}: test {test} is not there")
    for entry in config.equivalents:
        if entry.target not in sources:
            problems.append(f"equivalent in {entry.function!r}: no target {entry.target!r}")
            continue
        definitions, lines = sources[entry.target]
        if entry.function not in definitions:
            problems.append(
                f"equivalent of target {entry.target!r}: no def or class {entry.function!r}"
            )
        if entry.line not in lines:
            problems.append(
                f"equivalent of target {entry.target!r} in {entry.function!r}: "
                f"the line {entry.line!r} is not in its modules"
            )
    state = locate("frontdesk.state")
    lua_sources = _state_sources(state.parent) if state is not None else []
    for mutation in config.lua:
        found = _lua_occurrences(lua_sources, mutation)
        if found != mutation.occurrences:
            problems.append(
                f"Lua mutation {mutation.name!r}: its text is in frontdesk.state {found} times, "
                f"not {mutation.occurrences}: {mutation.old!r}"
            )
        for test in _test_paths_missing(root, mutation.tests):
            problems.append(f"Lua mutation {mutation.name!r}: test {test} is not there")
    for broken in config.breaks:
        path = _break_file(broken, locate)
        if path is None or not path.is_file():
            problems.append(f"break {broken.name!r}: {broken.module or broken.script} is not there")
        else:
            text = path.read_text()
            for edit in broken.edits:
                if text.count(edit.old) != 1:
                    problems.append(
                        f"break {broken.name!r}: its text is in {path.name} "
                        f"{text.count(edit.old)} times, not once: {edit.old!r}"
                    )
        for test in _test_paths_missing(root, broken.tests):
            problems.append(f"break {broken.name!r}: test {test} is not there")
    return problems


def _break_file(broken: Break, locate: Callable[[str], Path | None]) -> Path | None:
    if broken.script:
        state = locate("frontdesk.state")
        return None if state is None else state.parent / "lua" / f"{broken.script}.lua"
    return locate(broken.module)


def named_modules(config: Config) -> list[str]:
    """Every module the configuration names (and ``frontdesk.state``, home of the Lua)."""
    named = {m for t in config.targets for m in t.modules} | {"frontdesk.state"}
    return sorted(named | {b.module for b in config.breaks if b.module})


def check_config(config: Config, root: Path, locate: Callable[[str], Path | None]) -> None:
    """Stop with every problem listed when the configuration names something that is gone."""
    problems = config_problems(config, root, locate)
    if problems:
        listing = "\n".join(f"  - {problem}" for problem in problems)
        raise SystemExit(
            f"{CONFIG.name}, {LUA_CONFIG.name} or {BREAKS_CONFIG.name} name code or tests "
            f"that are not there:\n{listing}"
        )


# --------------------------------------------------------------------------- the copy


def _tracked_files() -> list[str]:
    done = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return [line for line in done.stdout.splitlines() if line]


def _package_dirs() -> dict[str, str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    mapping: dict[str, str] = pyproject["tool"]["setuptools"].get("package-dir", {})
    return mapping


@contextlib.contextmanager
def tree_copy() -> Iterator[Path]:
    """The repository's files in a temporary folder, the package laid out as installed."""
    base = Path(tempfile.mkdtemp(prefix="frontdesk-mutation-"))
    tree = base / "tree"
    try:
        for name in _tracked_files():
            source = ROOT / name
            if source.is_file():
                target = tree / name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
        for package, folder in sorted(_package_dirs().items(), key=lambda kv: kv[0].count(".")):
            destination = tree / package.replace(".", "/")
            if Path(folder) != Path(package.replace(".", "/")):
                shutil.copytree(tree / folder, destination, dirs_exist_ok=True)
        yield tree
    finally:
        shutil.rmtree(base, ignore_errors=True)


_LOCATE = """
import importlib.util, json, sys
found = {}
for name in sys.argv[1:]:
    try:
        spec = importlib.util.find_spec(name)
    except ImportError:
        spec = None
    found[name] = spec.origin if spec is not None and spec.origin else ""
print(json.dumps(found))
"""


def locate_all(tree: Path, modules: list[str]) -> dict[str, Path | None]:
    """Where each module is imported from in the copy (``None``: it cannot be found)."""
    done = subprocess.run(
        [sys.executable, "-c", _LOCATE, *modules],
        cwd=tree,
        env=_env(tree),
        capture_output=True,
        text=True,
        check=True,
    )
    found: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    return {name: Path(origin).resolve() if origin else None for name, origin in found.items()}


def locate_in(tree: Path, module: str) -> Path | None:
    """Where ``module`` is imported from in the copy (``None``: it cannot be found)."""
    return locate_all(tree, [module])[module]


def module_file(tree: Path, module: str) -> Path:
    """Where ``module`` is imported from in the copy (checked: inside the copy)."""
    path = locate_in(tree, module)
    if path is None:
        raise SystemExit(f"module {module} cannot be imported from the copy {tree}")
    if tree.resolve() not in path.parents:
        raise SystemExit(f"{module} imports from {path}, not from the copy {tree}")
    return path


def _env(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}


def test_command(tests: tuple[str, ...]) -> str:
    return " ".join([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests])


def run_tests(tree: Path, tests: tuple[str, ...], timeout: float) -> tuple[str, float, str]:
    """(``passed`` | ``failed`` | ``timeout``, seconds, output tail) of the tests in the copy."""
    started = time.monotonic()
    try:
        done = subprocess.run(
            test_command(tests).split(),
            cwd=tree,
            env=_env(tree),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return "timeout", time.monotonic() - started, ""
    output = done.stdout + done.stderr
    tail = "\n".join(output.splitlines()[-5:])
    failed = first_failure(output)
    if failed:
        tail = f"{failed}\n{tail}"
    return ("passed" if done.returncode == 0 else "failed"), time.monotonic() - started, tail


def first_failure(output: str) -> str:
    """The node id of the first test pytest's summary reports as failed (or erroring)."""
    for line in output.splitlines():
        found = re.match(r"(?:FAILED|ERROR) (\S+)", line)
        if found:
            return found.group(1)
    return ""


# --------------------------------------------------------------------------- Python mutants


def python_mutants(path: Path, target: Target, operators: tuple[str, ...]) -> list[Any]:
    """cosmic-ray's work items for ``path``, kept to ``operators`` and ``target.functions``."""
    from cosmic_ray.commands.init import init
    from cosmic_ray.work_db import WorkDB, use_db

    with (
        tempfile.TemporaryDirectory() as folder,
        use_db(Path(folder) / "session.sqlite", WorkDB.Mode.create) as db,
    ):
        init([path], db, {})
        items = list(db.pending_work_items)
    lines = path.read_text().splitlines()
    chosen = []
    for item in items:
        [mutation] = item.mutations
        if mutation.operator_name not in operators:
            continue
        if target.functions and mutation.definition_name not in target.functions:
            continue
        if _is_log_line(lines[mutation.start_pos[0] - 1]):
            continue  # a changed log message or level is not behaviour the tests pin down
        chosen.append(mutation)
    return chosen


POPULATIONS: dict[str, int] = {}
"""Per target, how many mutants its functions and operators give (before any cap)."""


def spread(items: list[Any], count: int) -> list[Any]:
    """``count`` of ``items``, evenly spaced (deterministic), so a capped run covers every part."""
    if count >= len(items):
        return list(items)
    step = len(items) / count
    return [items[int(i * step)] for i in range(count)]


def _is_log_line(line: str) -> bool:
    return re.match(r"\s*(logger|logging)\.\w+\(", line) is not None


def _mutated_line(diff: str) -> str:
    added = [
        line[1:].strip()
        for line in diff.splitlines()
        if line.startswith("+") and not line.startswith("+++")
    ]
    return " | ".join(added)[:200]


def run_python_target(
    tree: Path,
    target: Target,
    config: Config,
    *,
    limit: int | None,
    log: Any,
    again: set[tuple[str, str, str]] | None = None,
) -> list[Outcome]:
    """Run the target's mutants (or, with ``again``, those (function, operator, source line))."""
    from cosmic_ray.mutating import mutate_and_test
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome

    status, baseline, tail = run_tests(tree, target.tests, timeout=600)
    if status != "passed":
        raise SystemExit(f"{target.name}: the tests fail without any mutant:\n{tail}")
    timeout = max(config.min_timeout, baseline * config.timeout_factor)
    population: list[tuple[str, list[str], Any]] = []  # (module, its source lines, mutation)
    for module in target.modules:
        path = module_file(tree, module)
        lines = path.read_text().splitlines()
        population += [(module, lines, m) for m in python_mutants(path, target, config.operators)]
    cap = min(c for c in (limit, target.max_mutants, len(population)) if c is not None)
    mutants = spread(population, cap)
    if again is not None:
        mutants = [
            (module, lines, m)
            for module, lines, m in population
            if (m.definition_name, m.operator_name, lines[m.start_pos[0] - 1].strip()) in again
        ]
    else:
        POPULATIONS[target.name] = len(population)
    log(
        f"{target.name}: {len(mutants)} of {len(population)} mutants, baseline {baseline:.1f}s, "
        f"timeout {timeout:.0f}s"
    )
    outcomes: list[Outcome] = []
    cwd = Path.cwd()
    saved_env = dict(os.environ)
    os.chdir(tree)
    os.environ.update(_env(tree))
    try:
        for number, (module, source_lines, mutation) in enumerate(mutants, start=1):
            started = time.monotonic()
            result = mutate_and_test([mutation], test_command(target.tests), timeout)
            seconds = time.monotonic() - started
            if result.worker_outcome == WorkerOutcome.NO_TEST:
                outcome = "no-test"
            elif result.worker_outcome != WorkerOutcome.NORMAL:
                outcome = "incompetent"
            elif result.test_outcome == TestOutcome.SURVIVED:
                outcome = "survived"
            elif result.output == "timeout":
                outcome = "timeout"
            elif result.test_outcome == TestOutcome.KILLED:
                outcome = "killed"
            else:
                outcome = "incompetent"
            line_no = mutation.start_pos[0]
            entry = Outcome(
                target=target.name,
                module=module,
                function=mutation.definition_name or "",
                operator=mutation.operator_name,
                occurrence=mutation.occurrence,
                line=source_lines[line_no - 1].strip(),
                mutated=_mutated_line(result.diff or ""),
                outcome=outcome,
                seconds=round(seconds, 1),
                output_tail="" if outcome == "killed" else (result.output or "")[-300:],
            )
            outcomes.append(entry)
            log(
                f"  [{number}/{len(mutants)}] {outcome:9} {entry.function}: {entry.line[:70]} ({entry.operator.split('/')[-1]})"
            )
    finally:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return outcomes


# --------------------------------------------------------------------------- Lua mutants


def _lua_sources(tree: Path) -> list[Path]:
    return _state_sources(module_file(tree, "frontdesk.state").parent)


def _state_sources(state: Path) -> list[Path]:
    return sorted(p for p in state.rglob("*") if p.suffix in (".py", ".lua"))


def _spellings(mutation: LuaMutation) -> list[tuple[str, str]]:
    spellings = [(mutation.old, mutation.new)]
    doubled = (_double_braces(mutation.old), _double_braces(mutation.new))
    if doubled != spellings[0]:
        spellings.append(doubled)
    return spellings


def _lua_occurrences(sources: list[Path], mutation: LuaMutation) -> int:
    """How many times the mutated text is in ``sources`` (in either spelling)."""
    texts = [path.read_text() for path in sources]
    return sum(text.count(old) for text in texts for old, _ in _spellings(mutation))


def _lua_changes(sources: list[Path], mutation: LuaMutation) -> dict[Path, tuple[str, str]]:
    """Every file holding the mutated text, before and after.

    The text is written as in a ``.lua`` file; inside a Python f-string its braces are doubled,
    so that spelling is looked for too. A helper shared by several scripts is mutated in each.
    """
    spellings = _spellings(mutation)
    changes: dict[Path, tuple[str, str]] = {}
    for path in sources:
        text = path.read_text()
        mutated = text
        for old, new in spellings:
            mutated = mutated.replace(old, new)
        if mutated != text:
            changes[path] = (text, mutated)
    return changes


def _double_braces(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def run_lua(tree: Path, config: Config, *, log: Any, only: set[str] | None = None) -> list[Outcome]:
    """Run the Lua mutations (with ``only``: those of these names)."""
    sources = _lua_sources(tree)
    outcomes: list[Outcome] = []
    baselines: dict[tuple[str, ...], float] = {}
    for number, mutation in enumerate(config.lua, start=1):
        if only is not None and mutation.name not in only:
            continue
        changes = _lua_changes(sources, mutation)
        found = _lua_occurrences(sources, mutation)
        if found != mutation.occurrences:
            raise SystemExit(
                f"Lua mutation {mutation.name!r}: its text is in frontdesk.state {found} times, "
                f"not {mutation.occurrences}"
            )
        if mutation.tests not in baselines:
            status, seconds, tail = run_tests(tree, mutation.tests, timeout=600)
            if status != "passed":
                raise SystemExit(f"Lua tests fail without any mutant:\n{tail}")
            baselines[mutation.tests] = seconds
        timeout = max(config.min_timeout, baselines[mutation.tests] * config.timeout_factor)
        for path, (_, mutated) in changes.items():
            path.write_text(mutated)
        try:
            status, seconds, tail = run_tests(tree, mutation.tests, timeout)
        finally:
            for path, (original, _) in changes.items():
                path.write_text(original)
        outcome = {"failed": "killed", "passed": "survived", "timeout": "timeout"}[status]
        outcomes.append(
            Outcome(
                target="Lua scripts",
                module="frontdesk.state (Lua)",
                function=mutation.name,
                operator="lua/text",
                occurrence=number,
                line=mutation.old.strip(),
                mutated=mutation.new.strip(),
                outcome=outcome,
                seconds=round(seconds, 1),
                output_tail="" if outcome == "killed" else tail[-300:],
                killed_by=first_failure(tail) if outcome == "killed" else "",
            )
        )
        log(f"  [{number}/{len(config.lua)}] {outcome:9} {mutation.name}")
    return outcomes


# --------------------------------------------------------------------------- deliberate breaks

BREAKS = "deliberate breaks"
"""The target name of the breaks in results and report."""


def run_breaks(tree: Path, config: Config, *, log: Any) -> list[Outcome]:
    """Apply each deliberate break to the copy, run its tests, put the file back."""
    where = locate_all(tree, named_modules(config))
    outcomes: list[Outcome] = []
    for number, broken in enumerate(config.breaks, start=1):
        path = _break_file(broken, where.get)
        assert path is not None  # checked by check_config
        original = path.read_text()
        mutated = original
        for edit in broken.edits:
            mutated = mutated.replace(edit.old, edit.new)
        path.write_text(mutated)
        try:
            status, seconds, tail = run_tests(tree, broken.tests, timeout=600)
        finally:
            path.write_text(original)
        outcome = {"failed": "killed", "passed": "survived", "timeout": "timeout"}[status]
        outcomes.append(
            Outcome(
                target=BREAKS,
                module=broken.module or f"state/lua/{broken.script}.lua",
                function=broken.name,
                operator="break/text",
                occurrence=number,
                line=" | ".join(e.old.strip() for e in broken.edits)[:200],
                mutated=" | ".join(e.new.strip() for e in broken.edits)[:200],
                outcome=outcome,
                seconds=round(seconds, 1),
                output_tail="" if outcome == "killed" else tail[-300:],
                killed_by=first_failure(tail) if outcome == "killed" else "",
            )
        )
        log(f"  [{number}/{len(config.breaks)}] {outcome:9} {broken.name} {first_failure(tail)}")
    return outcomes


# --------------------------------------------------------------------------- the report


SIGNATURE_MARKER = (
    "`*` → `/` in a signature only changes how arguments may be passed: every caller passes "
    "those before it positionally and those after it by keyword"
)


def _is_signature_marker(outcome: Outcome) -> bool:
    """cosmic-ray's Mul→Div on a signature's bare ``*`` (keyword-only marker)."""
    marker = re.compile(r"\*(\s*(?:,|\)|$))")
    return (
        outcome.operator == "core/ReplaceBinaryOperator_Mul_Div"
        and marker.search(outcome.line) is not None
        and marker.sub(r"/\1", outcome.line, count=1) == outcome.mutated
    )


ANNOTATION = "an annotation (`X | None`): never evaluated (`from __future__ import annotations`)"


def _is_annotation(outcome: Outcome) -> bool:
    """cosmic-ray's BitOr→BitAnd on ``X | None``: this code base writes ``| None`` only in types."""
    return (
        outcome.operator == "core/ReplaceBinaryOperator_BitOr_BitAnd"
        and "| None" in outcome.line
        and outcome.line.replace("| None", "& None", 1) == outcome.mutated
    )


def _equivalent_reason(outcome: Outcome, config: Config) -> str | None:
    if _is_signature_marker(outcome):
        return SIGNATURE_MARKER
    if _is_annotation(outcome):
        return ANNOTATION
    if outcome.operator == "lua/text":
        for mutation in config.lua:
            if mutation.name == outcome.function and mutation.equivalent:
                return mutation.equivalent
        return None
    for entry in config.equivalents:
        if (
            entry.target == outcome.target
            and entry.function == outcome.function
            and entry.operator == outcome.operator
            and entry.line == outcome.line
        ):
            return entry.reason
    return None


def render_report(outcomes: list[Outcome], config: Config) -> str:
    order = [t.name for t in config.targets] + ["Lua scripts"]
    lua_names = {m.name for m in config.lua}
    break_names = {b.name for b in config.breaks}
    by_target: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        if outcome.target == "Lua scripts" and outcome.function not in lua_names:
            continue  # a mutation no longer in lua_mutations.toml
        if outcome.target == BREAKS and outcome.function not in break_names:
            continue
        by_target.setdefault(outcome.target, []).append(outcome)
    lines = [
        "# Mutation testing report",
        "",
        "Written by `python -m tools.mutation` (cosmic-ray for Python, `lua_mutations.toml` for the",
        "Lua scripts); do not edit by hand. Score = killed / (mutants - equivalent). A timeout counts",
        "as killed (the tests did not pass). `no-test` mutants (cosmic-ray found nothing to change)",
        "are not counted.",
        "",
        "| target | module | mutants run (of all) | killed | survived | equivalent | score |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    total_killed = total_counted = 0
    details: list[str] = []
    for name in order:
        results = [o for o in by_target.get(name, []) if o.outcome != "no-test"]
        if not results:
            continue
        killed = [o for o in results if o.outcome in ("killed", "timeout")]
        equivalent = [
            (o, reason)
            for o in results
            if o.outcome in ("survived", "incompetent")
            and (reason := _equivalent_reason(o, config)) is not None
        ]
        equivalent_ids = {id(o) for o, _ in equivalent}
        survived = [
            o
            for o in results
            if o.outcome in ("survived", "incompetent") and id(o) not in equivalent_ids
        ]
        counted = len(results) - len(equivalent)
        score = 100.0 * len(killed) / counted if counted else 100.0
        total_killed += len(killed)
        total_counted += counted
        module = ", ".join(sorted({o.module for o in results}))
        population = POPULATIONS.get(name)
        run = (
            f"{len(results)}"
            if population in (None, len(results))
            else f"{len(results)} ({population})"
        )
        lines.append(
            f"| {name} | `{module}` | {run} | {len(killed)} | {len(survived)} | "
            f"{len(equivalent)} | {score:.1f}% |"
        )
        if survived or equivalent:
            details.append(f"\n## {name} (`{module}`)\n")
        for o in survived:
            details.append(
                f"- **survived** `{o.function}`: `{o.line}` → `{o.mutated}` ({o.operator})"
            )
        for o, reason in equivalent:
            details.append(
                f"- equivalent `{o.function}`: `{o.line}` → `{o.mutated}` ({o.operator}): {reason}"
            )
    overall = 100.0 * total_killed / total_counted if total_counted else 100.0
    lines.append(
        f"| **all** | | {total_counted} not equivalent | {total_killed} | "
        f"{total_counted - total_killed} | | **{overall:.1f}%** |"
    )
    lines.append("")
    lines.extend(details)
    lines.extend(_breaks_section(by_target.get(BREAKS, [])))
    lines.extend(_lua_section(by_target.get("Lua scripts", []), config))
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _breaks_section(results: list[Outcome]) -> list[str]:
    if not results:
        return []
    killed = sum(o.outcome in ("killed", "timeout") for o in results)
    lines = [
        "",
        f"## The deliberate breaks of issue 10 ({killed} of {len(results)} caught)",
        "",
        "Each break (`breaks.toml`) is applied to the copy and its tests run; not counted in the",
        "score above. *Caught by* is the first test that failed.",
        "",
        "| break | where | outcome | caught by |",
        "| --- | --- | --- | --- |",
    ]
    for o in sorted(results, key=lambda o: o.occurrence):
        lines.append(f"| {_cell(o.function)} | `{o.module}` | {o.outcome} | `{o.killed_by}` |")
    return lines


def _lua_section(results: list[Outcome], config: Config) -> list[str]:
    if not results:
        return []
    lines = [
        "",
        "## Every Lua mutation and the first test that failed on it",
        "",
        "| mutation | outcome | caught by |",
        "| --- | --- | --- |",
    ]
    for o in sorted(results, key=lambda o: o.occurrence):
        outcome = o.outcome
        if outcome in ("survived", "incompetent") and _equivalent_reason(o, config):
            outcome = "equivalent"
        lines.append(f"| {_cell(o.function)} | {outcome} | `{o.killed_by}` |")
    return lines


RESULTS_FILE = [RESULTS]
"""Where results accumulate in this run (``--results``)."""


def _load_results() -> list[Outcome]:
    if not RESULTS_FILE[0].exists():
        return []
    data = json.loads(RESULTS_FILE[0].read_text())
    POPULATIONS.update(data.get("populations", {}))
    return [Outcome(**entry) for entry in data["outcomes"]]


def _save_results(outcomes: list[Outcome]) -> None:
    data = {"populations": POPULATIONS, "outcomes": [asdict(o) for o in outcomes]}
    RESULTS_FILE[0].write_text(json.dumps(data, indent=1) + "\n")


# --------------------------------------------------------------------------- the command


def _stop(_signum: int, _frame: Any) -> None:
    raise SystemExit("stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.mutation", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        help=(
            "run only targets whose name contains this (repeatable); 'lua' for the Lua "
            "scripts, 'breaks' for the deliberate breaks"
        ),
    )
    parser.add_argument(
        "--limit", type=int, help="at most this many mutants per target (a quick look)"
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=RESULTS,
        help="where results accumulate (default tools/mutation/results.json)",
    )
    parser.add_argument(
        "--merge",
        type=Path,
        action="append",
        default=[],
        help="fold the targets of another results file into this one (parallel runs), then report",
    )
    parser.add_argument(
        "--survivors",
        action="store_true",
        help="re-run only the mutants that survived last time (after adding tests)",
    )
    parser.add_argument(
        "--list", action="store_true", help="list the mutants that would run, run nothing"
    )
    parser.add_argument(
        "--report-only", action="store_true", help="re-render report.md from results.json"
    )
    args = parser.parse_args(argv)
    config = load_config()
    RESULTS_FILE[0] = args.results

    def log(message: str) -> None:
        print(message, flush=True)

    def chosen(name: str) -> bool:
        return not args.only or any(part.lower() in name.lower() for part in args.only)

    outcomes = _load_results()
    for other in args.merge:
        data = json.loads(other.read_text())
        theirs = [Outcome(**entry) for entry in data["outcomes"]]
        names = {o.target for o in theirs}
        POPULATIONS.update({k: v for k, v in data.get("populations", {}).items() if k in names})
        outcomes = [o for o in outcomes if o.target not in names] + theirs
        _save_results(outcomes)
    signal.signal(signal.SIGTERM, _stop)  # so the temporary copy is removed
    if not args.report_only:
        with tree_copy() as tree:
            where = locate_all(tree, named_modules(config))
            check_config(config, tree, where.get)
            if args.list:
                for target in config.targets:
                    if chosen(target.name):
                        count = sum(
                            len(python_mutants(module_file(tree, m), target, config.operators))
                            for m in target.modules
                        )
                        log(f"{target.name}: {count} mutants in {', '.join(target.modules)}")
                return 0
            for target in config.targets:
                if chosen(target.name) and args.survivors:
                    # the survivors of the last run, against the tests as they are now
                    again = {
                        (o.function, o.operator, o.line)
                        for o in outcomes
                        if o.target == target.name
                        and o.outcome == "survived"
                        and _equivalent_reason(o, config) is None
                    }
                    fresh = run_python_target(
                        tree, target, config, limit=None, log=log, again=again
                    )
                    redone = {(o.function, o.operator, o.line) for o in fresh}
                    outcomes = [
                        o
                        for o in outcomes
                        if o.target != target.name or (o.function, o.operator, o.line) not in redone
                    ] + fresh
                    _save_results(outcomes)
                elif chosen(target.name):
                    fresh = run_python_target(tree, target, config, limit=args.limit, log=log)
                    outcomes = [o for o in outcomes if o.target != target.name] + fresh
                    _save_results(outcomes)
                if target.name == config.lua_after and chosen("Lua scripts"):
                    if args.survivors:
                        again_lua = {
                            o.function
                            for o in outcomes
                            if o.target == "Lua scripts"
                            and o.outcome == "survived"
                            and _equivalent_reason(o, config) is None
                        }
                        ran = {o.function for o in outcomes if o.target == "Lua scripts"}
                        again_lua |= {m.name for m in config.lua} - ran  # new since last time
                        fresh = run_lua(tree, config, log=log, only=again_lua)
                        redone_lua = {o.function for o in fresh}
                        outcomes = [
                            o
                            for o in outcomes
                            if o.target != "Lua scripts" or o.function not in redone_lua
                        ] + fresh
                    else:
                        fresh = run_lua(tree, config, log=log)
                        outcomes = [o for o in outcomes if o.target != "Lua scripts"] + fresh
                    _save_results(outcomes)
            if chosen(BREAKS) and not args.survivors:
                fresh = run_breaks(tree, config, log=log)
                outcomes = [o for o in outcomes if o.target != BREAKS] + fresh
                _save_results(outcomes)
    REPORT.write_text(render_report(outcomes, config))
    log(f"report: {REPORT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
