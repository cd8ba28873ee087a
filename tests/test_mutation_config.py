"""The mutation tool's configuration names code that exists, and a stale name stops the tool.

``tools/mutation`` (README "Mutation testing") names modules, functions, source lines and Lua
text, never line numbers. When code moves, a stale name must be an error before any mutant runs,
not a target that quietly has no mutants, an equivalent that matches nothing, or a Lua mutation
that changes nothing (and so "survives" or is never tried).
"""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import pytest

from tools.mutation import runner

ROOT = Path(__file__).resolve().parents[1]


def locate(module: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(module)
    except ImportError:
        return None
    return Path(spec.origin) if spec is not None and spec.origin else None


def test_every_target_equivalent_lua_mutation_and_break_names_code_and_tests_that_exist() -> None:
    config = runner.load_config()

    assert runner.config_problems(config, ROOT, locate) == []
    assert config.targets and config.lua and config.equivalents
    assert len(config.breaks) >= 8  # issue 10's deliberate breaks


def _stale(config: runner.Config) -> runner.Config:
    """``config`` with one stale name of every kind added."""
    writer = next(t for t in config.targets if t.name == "writer")
    return dataclasses.replace(
        config,
        lua_after="no such target",
        targets=[
            *config.targets,
            runner.Target(name="old module", modules=("frontdesk.workflows.config",), tests=()),
            dataclasses.replace(writer, name="gone function", functions=("_no_such_def",)),
            dataclasses.replace(writer, name="gone test", tests=("tests/state/test_gone.py",)),
        ],
        equivalents=[
            *config.equivalents,
            runner.Equivalent(
                target="writer",
                function="_rewrite",
                operator="core/AddNot",
                line="if a_line_that_is_not_there:",
                reason="-",
            ),
        ],
        lua=[
            *config.lua,
            runner.LuaMutation(name="gone Lua", old="redis.call('NO_SUCH')", new="", tests=()),
            runner.LuaMutation(
                name="ambiguous Lua", old="redis.call(", new="redis.pcall(", tests=()
            ),
        ],
        breaks=[
            *config.breaks,
            runner.Break(
                name="gone break",
                module="frontdesk.state.writer",
                edits=(runner.Edit(old="text that is not in the writer", new=""),),
                tests=(),
            ),
        ],
    )


def test_a_stale_name_of_any_kind_is_reported_naming_what_and_where() -> None:
    problems = runner.config_problems(_stale(runner.load_config()), ROOT, locate)

    assert problems == [
        "[run] lua_after: no target is named 'no such target'",
        "target 'old module': module frontdesk.workflows.config is not there",
        "target 'gone function': no def or class '_no_such_def' in frontdesk.state.writer",
        "target 'gone test': test tests/state/test_gone.py is not there",
        "equivalent of target 'writer' in '_rewrite': the line 'if a_line_that_is_not_there:' "
        "is not in its modules",
        "Lua mutation 'gone Lua': its text is in frontdesk.state 0 times, not 1: "
        "\"redis.call('NO_SUCH')\"",
        problems[6],  # the count depends on the scripts
        "break 'gone break': its text is in writer.py 0 times, not once: "
        "'text that is not in the writer'",
    ]
    assert problems[6].startswith("Lua mutation 'ambiguous Lua': its text is in frontdesk.state ")


def test_the_tool_stops_before_any_mutant_when_the_configuration_is_stale() -> None:
    with pytest.raises(SystemExit) as stopped:
        runner.check_config(_stale(runner.load_config()), ROOT, locate)

    message = str(stopped.value)
    assert message.startswith(
        "config.toml, lua_mutations.toml or breaks.toml name code or tests that are not there"
    )
    assert "module frontdesk.workflows.config is not there" in message
    assert "'gone Lua'" in message


def test_a_lua_mutation_changes_the_text_it_names_in_every_place_it_is_expected() -> None:
    state = locate("frontdesk.state")
    assert state is not None
    sources = runner._state_sources(state.parent)
    for mutation in runner.load_config().lua:
        changes = runner._lua_changes(sources, mutation)
        assert changes, mutation.name
        for original, mutated in changes.values():
            assert original != mutated
            assert mutation.old in original or runner._double_braces(mutation.old) in original
