"""Reading a workflow: parse the TOML, validate the schema, check the graph, keep the source.

:func:`load_workflow` and :func:`parse_workflow` raise :class:`~frontdesk.errors.ConfigError`
listing every problem as ``source:line key.path: message``.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from frontdesk.errors import ConfigError
from frontdesk.workflows.definition.graph import check_graph
from frontdesk.workflows.definition.locator import KeyLocator
from frontdesk.workflows.definition.schema import AgentConfig, CallerField, WorkflowConfig


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
        """sha256 (first 16 hex digits) of the normalised config: equal configs, equal hash."""
        canonical = json.dumps(self.config.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @property
    def identity(self) -> str:
        """``name@hash``: stored with every session to detect workflow changes on resume."""
        return f"{self.name}@{self.content_hash}"

    def agent(self, name: str) -> AgentConfig:
        return self.config.agents[name]

    def field(self, name: str) -> CallerField:
        return self.config.caller_data[name]


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


def parse_workflow(text: str, *, source: str = "<memory>") -> Workflow:
    """Validate config text; every error carries ``source:line key.path: message``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{source}: not valid TOML: {exc}"]) from None
    locator = KeyLocator(text)
    try:
        config = WorkflowConfig.model_validate(data)
    except ValidationError as exc:
        problems = [_describe(error, locator, source) for error in exc.errors()]
        raise ConfigError(problems) from None
    issues = check_graph(config)
    errors = [
        locator.format(source, issue.path, issue.message) for issue in issues if issue.is_error
    ]
    if errors:
        raise ConfigError(errors)
    warnings = tuple(
        locator.format(source, issue.path, issue.message) for issue in issues if not issue.is_error
    )
    return Workflow(config=config, source=source, warnings=warnings)


def _describe(error: Any, locator: KeyLocator, source: str) -> str:
    path = tuple(error["loc"])
    message = str(error["msg"])
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    elif error["type"] == "missing":
        message = "required key is missing"
    elif message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
    return locator.format(source, path, message)
