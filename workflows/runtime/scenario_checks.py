"""A scenario file checked against its config before the call runs, and its rules for humans.

* **Turns count from 1** everywhere a person reads them: ``turn[1]`` in an error's key path is
  the file's first ``[[turn]]``, as ``✗ turn 1`` and ``"turn": 1`` in the output are.
* **What config a scenario runs on**: ``--config``, else the scenario's ``config`` (relative to
  the scenario file), else a ``config.toml`` next to the scenario; otherwise it is an error
  (never a silent run of the built-in workflow).
* **What it names must exist**: ``expect_agent`` an agent, each ``expect_data`` key a
  ``[caller_data]`` field, an ``expect_tool`` named ``record_<field>`` / ``transfer_to_<agent>``
  that field or agent; each mistake is ``file:line key.path: message (did you mean …?)``.
* **Typed expectations**: an ``expect_data`` value is compared with the stored value *and its
  type*: ``4`` holds for a stored 4, ``"4"`` does not (and the failure says which types met).
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from frontdesk.errors import ScenarioError
from frontdesk.workflows.definition import KeyLocator, Workflow, format_path
from frontdesk.workflows.definition.checks import did_you_mean
from frontdesk.workflows.definition.loader import by_line


class _Tool(Protocol):
    @property
    def name(self) -> str: ...


class _Turn(Protocol):
    @property
    def expect_agent(self) -> str | None: ...
    @property
    def expect_data(self) -> Mapping[str, Any] | None: ...
    @property
    def expect_tool(self) -> _Tool | None: ...


class Scenario(Protocol):
    """What these checks read of a :class:`~frontdesk.workflows.runtime.simulate.Scenario`."""

    @property
    def source(self) -> Path | None: ...
    @property
    def config(self) -> str | None: ...
    @property
    def text(self) -> str: ...
    @property
    def turn(self) -> Sequence[_Turn]: ...
    def config_path(self) -> Path | None: ...


# --------------------------------------------------------------------------- turn numbers


def human_path(loc: Sequence[str | int]) -> tuple[str | int, ...]:
    """A scenario key path as people count: ``("turn", 0, "say")`` → ``("turn", 1, "say")``."""
    path = tuple(loc)
    if len(path) >= 2 and path[0] == "turn" and isinstance(path[1], int):
        return ("turn", path[1] + 1, *path[2:])
    return path


def scenario_problem(
    locator: KeyLocator, source: str, loc: Sequence[str | int], message: str
) -> str:
    """``file:line key.path: message`` with the line found in the file (turns from 0) and the
    path written for people (turns from 1)."""
    line = locator.line_of(tuple(loc))
    where = f"{source}:{line}" if line is not None else source
    return f"{where} {format_path(human_path(loc))}: {message}"


# --------------------------------------------------------------------------- which config

NO_CONFIG_HINT = (
    'pass --config CONFIG, or add config = "path/to/config.toml" at the top of the scenario '
    "(relative to the scenario file)"
)


def scenario_config(scenario: Scenario, override: str | None) -> Path:
    """The config file ``scenario`` runs on (``--config`` wins); :class:`ScenarioError` if none."""
    if override:
        return Path(override)
    name = str(scenario.source) if scenario.source is not None else "<scenario>"
    if scenario.config is not None:
        path = scenario.config_path()
        assert path is not None
        if not path.is_file():
            locator = KeyLocator(scenario.text)
            raise ScenarioError(
                scenario_problem(
                    locator,
                    name,
                    ("config",),
                    f"no such config file {scenario.config!r} (looked for {path.resolve()}): "
                    + NO_CONFIG_HINT,
                )
            )
        return path
    if scenario.source is not None:
        beside = scenario.source.parent / "config.toml"
        if beside.is_file():
            return beside
    raise ScenarioError(
        f"{name}: the scenario names no config and there is no config.toml next to it: "
        f"{NO_CONFIG_HINT}"
    )


# --------------------------------------------------------------------------- names


def check_scenario(scenario: Scenario, workflow: Workflow) -> None:
    """Raise :class:`ScenarioError` listing every name the scenario uses that ``workflow``
    lacks, sorted by line; nothing when all is well."""
    problems = scenario_problems(scenario, workflow)
    if problems:
        raise ScenarioError("\n".join(problems))


def scenario_problems(scenario: Scenario, workflow: Workflow) -> list[str]:
    name = str(scenario.source) if scenario.source is not None else "<scenario>"
    locator = KeyLocator(scenario.text)
    agents = list(workflow.config.agents)
    fields = list(workflow.config.caller_data)
    where = f" in workflow '{workflow.name}' ({workflow.source})"
    problems: list[str] = []

    def unknown(loc: tuple[str | int, ...], kind: str, value: str, known: list[str]) -> None:
        hint = did_you_mean(value, known) or (
            f" (known: {', '.join(known)})" if known else f" (it declares no {kind}s)"
        )
        problems.append(
            scenario_problem(locator, name, loc, f"unknown {kind} '{value}'{where}{hint}")
        )

    for index, turn in enumerate(scenario.turn):
        if turn.expect_agent is not None and turn.expect_agent not in workflow.config.agents:
            unknown(("turn", index, "expect_agent"), "agent", turn.expect_agent, agents)
        for key in turn.expect_data or {}:
            if key not in workflow.config.caller_data:
                unknown(("turn", index, "expect_data", key), "caller_data field", key, fields)
        tool = turn.expect_tool.name if turn.expect_tool is not None else None
        loc: tuple[str | int, ...] = ("turn", index, "expect_tool", "name")
        for prefix, names, kind in (
            ("record_", fields, "caller_data field"),
            ("transfer_to_", agents, "agent"),
        ):
            if tool is not None and tool.startswith(prefix) and tool[len(prefix) :] not in names:
                tools = [prefix + known for known in names]
                hint = did_you_mean(tool, tools) or f" (known: {', '.join(tools) or 'none'})"
                problems.append(
                    scenario_problem(
                        locator,
                        name,
                        loc,
                        f"unknown tool '{tool}'{where}: it has no {kind} "
                        f"'{tool[len(prefix) :]}'{hint}",
                    )
                )
    return by_line(problems, name)


# --------------------------------------------------------------------------- typed values


def check_expected_value(value: Any) -> Any:
    """An ``expect_data`` value: a string, number, boolean, date, time or a list of them."""
    if isinstance(value, list | tuple):
        return [check_expected_value(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("an expected number must be finite")
    if isinstance(value, str | bool | int | float | datetime.date | datetime.time):
        return value
    raise ValueError(
        "an expected value is a string, a number, a boolean, a date, a time or a list of them"
    )


def kind_of(value: Any) -> str:
    """A value's type as README names it: string, integer, number, boolean, list, date, time."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, datetime.datetime):
        return "date-time"
    if isinstance(value, datetime.date):
        return "date"
    if isinstance(value, datetime.time):
        return "time"
    return type(value).__name__


def shown_value(value: Any) -> str:
    """A value written as in TOML/JSON: ``"4"`` for a string, ``4``, ``true``, ``[1, 2]``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(shown_value(item) for item in value) + "]"
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return json.dumps(value) if isinstance(value, int | float) else repr(value)


def same_value(expected: Any, actual: Any) -> bool:
    """Whether a stored value is the expected one, type included (``4`` is not ``"4"``; a
    TOML date matches the same date stored as ``"YYYY-MM-DD"``)."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, int | float):
        return isinstance(actual, int | float) and expected == actual
    if isinstance(expected, str):
        return isinstance(actual, str) and expected == actual
    if isinstance(expected, list | tuple):
        return (
            isinstance(actual, list | tuple)
            and len(expected) == len(actual)
            and all(same_value(e, a) for e, a in zip(expected, actual, strict=True))
        )
    if isinstance(expected, datetime.date | datetime.time):
        return bool(actual == expected or actual == expected.isoformat())
    return bool(expected == actual)


def data_failure(key: str, expected: Any, stored: dict[str, Any]) -> str | None:
    """The failure of ``expect_data`` ``key = expected`` against the stored caller data."""
    if key not in stored:
        return f"expected {key} = {shown_value(expected)}, but {key} was not recorded"
    actual = stored[key]
    if same_value(expected, actual):
        return None
    want, got = kind_of(expected), kind_of(actual)
    if want != got:
        return (
            f"expected {key} = {shown_value(expected)} ({want}), "
            f"got {shown_value(actual)} ({got}): the types differ"
        )
    return f"expected {key} = {shown_value(expected)}, got {shown_value(actual)}"
