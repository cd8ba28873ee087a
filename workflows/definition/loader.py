"""Reading a workflow: parse the TOML, validate the schema, check the graph, keep the source.

:func:`load_workflow` and :func:`parse_workflow` raise :class:`~frontdesk.errors.ConfigError`
listing every problem as ``source:line key.path: message``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from frontdesk.errors import ConfigError
from frontdesk.workflows.definition.checks import describe_error, salvaged_findings
from frontdesk.workflows.definition.graph import GraphIssue, check_graph
from frontdesk.workflows.definition.locator import KeyLocator
from frontdesk.workflows.definition.schema import AgentConfig, CallerField, WorkflowConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Workflow:
    """A validated workflow: the config plus where it came from and its content identity."""

    config: WorkflowConfig
    source: str = "<memory>"
    warnings: tuple[str, ...] = field(default=())

    @property
    def name(self) -> str:
        return self.config.workflow.name

    @property
    def start(self) -> str:
        return self.config.workflow.start

    @cached_property
    def content_hash(self) -> str:
        """sha256 (first 16 hex digits) of the normalised config: equal configs, equal hash.

        ``[offline]`` is left out: offline-brain fixtures do not change what a call does.
        """
        dumped = self.config.model_dump(mode="json", exclude={"offline"})
        # keys added later hash as before while unused: an unchanged config keeps its identity
        if not dumped.get("tools"):
            dumped.pop("tools", None)
        for agent in dumped["agents"].values():
            if not agent.get("tools"):
                agent.pop("tools", None)
            if agent.get("transfer") is None:
                agent.pop("transfer", None)
        canonical = json.dumps(dumped, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @property
    def identity(self) -> str:
        """``name@hash``: stored with every session to detect workflow changes on resume."""
        return f"{self.name}@{self.content_hash}"

    def agent(self, name: str) -> AgentConfig:
        return self.config.agents[name]

    def field(self, name: str) -> CallerField:
        return self.config.caller_data[name]

    @cached_property
    def sensitive_fields(self) -> frozenset[str]:
        """Fields marked ``sensitive``, and the fields any of them is verified with."""
        names = {name for name, spec in self.config.caller_data.items() if spec.sensitive}
        for name in list(names):
            names.update(self.config.caller_data[name].verify_with)
        return frozenset(n for n in names if n in self.config.caller_data)


# --------------------------------------------------------------------------- loading

DEFAULT_CONFIG_PATH = Path(__file__).with_name("default_config.toml")
"""The embedded default workflow (a copy of the repository's config.toml, shipped in the wheel)."""


def load_workflow(path: str | Path | None = None) -> Workflow:
    """Read, validate and graph-check a config file; raise :class:`ConfigError` listing every problem."""
    config_path = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    try:
        text = config_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{config_path}: no such config file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{config_path}: cannot read: {exc}"]) from None
    return parse_workflow(text, source=str(config_path))


MAX_CONFIG_BYTES = 1024 * 1024
"""A config file larger than this is refused before it is parsed."""
MAX_NESTING = 20
"""Tables and arrays nested deeper than this are refused (no config needs more than ~5)."""


def _nesting(value: Any) -> int:
    """How deep tables and arrays nest in parsed TOML (iterative: no recursion limit)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_NESTING:
            return deepest
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return deepest


def parse_workflow(text: str, *, source: str = "<memory>") -> Workflow:
    """Validate config text; every error carries ``source:line key.path: message``.

    Oversized files and pathological nesting are config errors too, never a RecursionError.
    """
    if len(text) > MAX_CONFIG_BYTES or len(text.encode("utf-8", "replace")) > MAX_CONFIG_BYTES:
        raise ConfigError(
            [f"{source}: the config is larger than {MAX_CONFIG_BYTES // 1024} KiB; keep long "
             "texts short (instructions are bounded too)"]
        )  # fmt: skip
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{source}: not valid TOML: {exc}"]) from None
    except RecursionError:
        raise ConfigError(
            [f"{source}: not valid TOML: arrays or tables nested too deeply"]
        ) from None
    if _nesting(data) > MAX_NESTING:
        raise ConfigError(
            [f"{source}: tables and arrays are nested more than {MAX_NESTING} levels deep"]
        )
    locator = KeyLocator(text)
    try:
        config = WorkflowConfig.model_validate(data)
    except ValidationError as exc:
        # every problem at once: the schema's, then the cross-references of what did validate
        problems = [
            _describe(error, locator, source, _single_llm_paths(data)) for error in exc.errors()
        ]
        crossed = salvaged_findings(data, WorkflowConfig, check_graph)
        problems += [_at(locator, source, issue) for issue in crossed if issue.is_error]
        raise ConfigError(by_line(problems, source)) from None
    except RecursionError:
        raise ConfigError([f"{source}: the config is nested too deeply to validate"]) from None
    issues = check_graph(config)
    errors = [_at(locator, source, issue) for issue in issues if issue.is_error]
    if errors:
        raise ConfigError(by_line(errors, source))
    warnings = tuple(
        locator.format(source, issue.path, issue.message) for issue in issues if not issue.is_error
    )
    deprecations = _legacy_offline_keys(data, locator, source)
    for deprecation in deprecations:
        logger.warning("%s", deprecation)
    return Workflow(config=config, source=source, warnings=(*deprecations, *warnings))


def _legacy_offline_keys(data: dict[str, Any], locator: KeyLocator, source: str) -> list[str]:
    """A deprecation warning for each offline-brain key still in its old place.

    ``agents.<a>.reply`` now lives at ``offline.agents.<a>.reply`` and
    ``agents.<a>.handoffs[i].examples`` at ``offline.agents.<a>.examples.<to>``; the old places
    keep working (``WorkflowConfig._move_offline_fixtures`` moves them).
    """
    warnings: list[str] = []
    agents = data.get("agents")
    for name, agent in (agents if isinstance(agents, dict) else {}).items():
        if not isinstance(agent, dict):
            continue
        if "reply" in agent:
            warnings.append(
                locator.format(
                    source,
                    ("agents", name, "reply"),
                    f"deprecated: move it to [offline.agents.{name}] reply "
                    "(only the offline brain reads it)",
                )
            )
        routes = agent.get("handoffs")
        for index, route in enumerate(routes if isinstance(routes, list) else []):
            if isinstance(route, dict) and "examples" in route:
                to = route.get("to", "<agent>")
                warnings.append(
                    locator.format(
                        source,
                        ("agents", name, "handoffs", index, "examples"),
                        f"deprecated: move it to [offline.agents.{name}.examples] {to} = [...] "
                        "(only the offline brain reads it)",
                    )
                )
    return warnings


def _single_llm_paths(data: dict[str, Any]) -> frozenset[tuple[str, str, str]]:
    """``("providers", p, "llm")`` of the profiles whose ``llm`` is one table, not a list."""
    providers = data.get("providers")
    return frozenset(
        {
            ("providers", name, "llm")
            for name, profile in (providers if isinstance(providers, dict) else {}).items()
            if isinstance(profile, dict) and isinstance(profile.get("llm"), dict)
        }
    )


def _describe(
    error: Any,
    locator: KeyLocator,
    source: str,
    single_llm: frozenset[tuple[str, str, str]] = frozenset(),
) -> str:
    path = tuple(error["loc"])
    if path[:3] in single_llm and len(path) > 3 and path[3] == 0:
        path = (*path[:3], *path[4:])  # a one-table llm is a chain of one: no [0] in messages
    return locator.format(source, path, describe_error(error, WorkflowConfig))


def _at(locator: KeyLocator, source: str, issue: GraphIssue) -> str:
    return locator.format(source, issue.path, issue.message)


def by_line(problems: list[str], source: str) -> list[str]:
    """``source:line key.path: message`` lines ordered by line (those without a line first)."""

    def line(problem: str) -> int:
        rest = problem.removeprefix(source)
        number = rest[1:].split(" ", 1)[0] if rest.startswith(":") else ""
        return int(number) if number.isdigit() else 0

    return sorted(problems, key=line)
