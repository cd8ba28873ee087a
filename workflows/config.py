"""The config.toml schema: every key a workflow file may hold, validated with pydantic v2.

This is the one place that says what a workflow config contains. Unknown keys are rejected;
every error names the key path and the line in the file
(``config.toml:23 agents.receptionist.handoffs[0].to: unknown agent 'suport' (did you mean
'support'?)``). Cross-references between sections (routes, collected fields) are checked by
:mod:`frontdesk.workflows.graph`, which :func:`load_workflow` runs too.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from frontdesk.errors import ConfigError

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
"""Agent and field names: they become tool names (``transfer_to_<agent>``, ``record_<field>``)."""

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


def _check_name(value: str) -> str:
    if not re.match(NAME_PATTERN, value):
        raise ValueError(
            f"{value!r} is not a valid name: use lowercase letters, digits and '_', "
            "starting with a letter (at most 40 characters)"
        )
    return value


Name = Annotated[str, AfterValidator(_check_name)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


# --------------------------------------------------------------------------- [workflow]


class WorkflowSection(_Strict):
    """``[workflow]``: the workflow's name and where a call starts."""

    name: str = Field(
        min_length=1, description="Workflow name; part of the stored session identity."
    )
    start: Name = Field(description="The agent a new call starts on.")
    description: str = Field(default="", description="Free text shown by `frontdesk graph`.")
    max_handoffs_per_turn: int = Field(
        default=3,
        ge=1,
        le=20,
        description="Loop guard: handoffs allowed between two caller utterances before the "
        "current agent keeps the call and says `loop_fallback`.",
    )
    loop_fallback: str = Field(
        default="Sorry, I'm having trouble transferring you. Let me help you myself.",
        description="Spoken when the loop guard refuses a handoff.",
    )


# --------------------------------------------------------------------------- [caller_data]


class CallerField(_Strict):
    """``[caller_data.<field>]``: one piece of shared caller data, collected once per call."""

    description: str = Field(min_length=1, description="What the value is; the record tool's doc.")
    pattern: str | None = Field(
        default=None,
        description="Regular expression a value must match in full; also lets the offline "
        "brain find the value in what the caller says.",
    )
    ask: str | None = Field(default=None, description="The question that asks the caller for it.")
    example: str | None = Field(default=None, description="An example value, shown to the model.")
    sensitive: bool = Field(
        default=False, description="Mask the value wherever an operator sees it (the inspector)."
    )

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"pattern does not compile: {exc}") from None
        return value

    @cached_property
    def regex(self) -> re.Pattern[str] | None:
        return re.compile(self.pattern) if self.pattern else None

    def accepts(self, value: str) -> bool:
        """True when ``value`` is acceptable (matches ``pattern`` in full, when there is one)."""
        if not value.strip():
            return False
        return self.regex is None or self.regex.fullmatch(value.strip()) is not None


# --------------------------------------------------------------------------- [agents]

ContextKind = Literal["full", "last", "summary", "none"]
_CONTEXT_RE = re.compile(r"^(full|summary|none|last:([1-9]\d{0,3}))$")


@dataclass(frozen=True)
class ContextPolicy:
    """What of the conversation the next agent receives on a handoff."""

    kind: ContextKind
    last: int = 0
    """For ``last:N``: the number of caller/agent messages kept."""

    @classmethod
    def parse(cls, text: str) -> ContextPolicy:
        match = _CONTEXT_RE.match(text.strip())
        if not match:
            raise ValueError(
                f"unknown context policy {text!r}: use 'full', 'last:N' (N ≥ 1), 'summary' or 'none'"
            )
        if match.group(2):
            return cls(kind="last", last=int(match.group(2)))
        kind: ContextKind = match.group(1)  # type: ignore[assignment]
        return cls(kind=kind)

    def __str__(self) -> str:
        return f"last:{self.last}" if self.kind == "last" else self.kind


def _validate_context(value: str) -> str:
    ContextPolicy.parse(value)
    return value.strip()


class Route(_Strict):
    """``[[agents.<agent>.handoffs]]``: a way from this agent to another."""

    to: Name = Field(description="The agent the call goes to.")
    when: str = Field(
        min_length=1, description="When to hand off; the transfer tool's description."
    )
    examples: tuple[str, ...] = Field(
        default=(),
        description="Caller phrases that mean this route (case-insensitive); the offline brain "
        "hands off when one appears in what the caller says.",
    )
    context: Annotated[str, AfterValidator(_validate_context)] = Field(
        default="full",
        description="What the next agent receives: 'full', 'last:N', 'summary' or 'none'.",
    )
    say: str | None = Field(default=None, description="A line spoken while handing off.")

    @property
    def policy(self) -> ContextPolicy:
        return ContextPolicy.parse(self.context)

    @property
    def tool_name(self) -> str:
        return f"transfer_to_{self.to}"


ProviderName = Literal["offline", "openai", "deepgram", "cartesia", "silero"]


class ComponentConfig(_Strict):
    """One pipeline component (STT, LLM, TTS or VAD) of a provider profile."""

    provider: ProviderName = Field(description="Which official LiveKit plugin builds it.")
    model: str | None = Field(default=None, description="Model name, e.g. 'nova-3', 'gpt-4o-mini'.")
    voice: str | None = Field(default=None, description="TTS voice id.")
    language: str | None = Field(default=None, description="Language code, e.g. 'en'.")
    base_url: str | None = Field(
        default=None, description="Endpoint for OpenAI-compatible or self-hosted servers."
    )
    api_key_env: str | None = Field(
        default=None,
        description="Environment variable holding the API key (default: the plugin's own, "
        "e.g. OPENAI_API_KEY).",
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="Extra keyword arguments passed to the plugin as is."
    )


class ComponentOverride(_Strict):
    """A per-agent change to one component of the active profile; unset keys keep the profile's."""

    provider: ProviderName | None = None
    model: str | None = None
    voice: str | None = None
    language: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    options: dict[str, Any] | None = None

    def apply(self, base: ComponentConfig | None) -> ComponentConfig:
        """The profile's component with this override's set keys laid on top."""
        changes = self.model_dump(exclude_none=True)
        if base is None:
            if "provider" not in changes:
                raise ValueError(
                    "an override of a component the profile lacks must name a provider"
                )
            return ComponentConfig(**changes)
        return ComponentConfig(**{**base.model_dump(), **changes})


class AgentConfig(_Strict):
    """``[agents.<name>]``: one agent of the workflow."""

    instructions: str = Field(min_length=1, description="The agent's system instructions.")
    greeting: str | None = Field(
        default=None,
        description="Said once per call when the caller first reaches this agent directly "
        "(never after a handoff or a resume).",
    )
    reply: str | None = Field(
        default=None,
        description="The offline brain's answer once nothing is missing; `{field}` placeholders "
        "are filled from caller data.",
    )
    resume: str | None = Field(
        default=None,
        description="What the agent says when a dropped caller comes back, e.g. "
        "'Welcome back — we were checking your line for {account_number}.'",
    )
    collects: tuple[Name, ...] = Field(
        default=(), description="Caller-data fields this agent must have before it can help."
    )
    handoffs: tuple[Route, ...] = Field(default=(), description="Routes to other agents.")
    stt: ComponentOverride | None = Field(default=None, description="Per-agent STT override.")
    llm: ComponentOverride | None = Field(default=None, description="Per-agent LLM override.")
    tts: ComponentOverride | None = Field(default=None, description="Per-agent TTS override.")


# --------------------------------------------------------------------------- [providers]


class ProviderProfile(_Strict):
    """``[providers.<profile>]``: the voice pipeline a call runs on."""

    description: str = Field(default="", description="Shown by `frontdesk providers`.")
    stt: ComponentConfig | None = Field(default=None, description="Speech to text.")
    llm: ComponentConfig = Field(description="The language model (or the offline brain).")
    tts: ComponentConfig | None = Field(default=None, description="Text to speech.")
    vad: ComponentConfig | None = Field(default=None, description="Voice activity detection.")
    cost_per_minute_usd: float | None = Field(
        default=None, ge=0, description="Approximate provider cost per call minute, for docs."
    )

    @property
    def text_only(self) -> bool:
        return self.stt is None and self.tts is None


OFFLINE_PROFILE = ProviderProfile(
    description="The offline brain, text only: no API key, no network.",
    llm=ComponentConfig(provider="offline"),
)


class ProvidersSection(_Strict):
    """``[providers]``: the active profile name plus one table per profile."""

    model_config = ConfigDict(extra="allow", frozen=True)

    # Typed extras: every other key is a profile table, validated here with its key path.
    __pydantic_extra__: dict[str, ProviderProfile] = Field(init=False)  # type: ignore[assignment]

    active: str = Field(
        default="offline",
        description="The profile the worker uses (env FRONTDESK_PROFILE overrides).",
    )

    @property
    def profiles(self) -> dict[str, ProviderProfile]:
        """Every profile by name; ``offline`` is always there."""
        return {"offline": OFFLINE_PROFILE, **(self.model_extra or {})}


# --------------------------------------------------------------------------- [state]


class StateSection(_Strict):
    """``[state]``: where and how long session state is kept."""

    redis_url: str = Field(
        default="",
        description="redis://, rediss:// (TLS) or unix:// URL; empty means the embedded "
        "private redis-server (env FRONTDESK_REDIS_URL overrides).",
    )
    mode: Literal["standalone", "sentinel", "cluster"] = Field(
        default="standalone", description="How to reach Redis."
    )
    sentinels: tuple[str, ...] = Field(
        default=(), description="host:port of each Sentinel (mode = 'sentinel')."
    )
    sentinel_service: str = Field(default="mymaster", description="Sentinel's master name.")
    key_prefix: str = Field(
        default="frontdesk",
        pattern=r"^[A-Za-z0-9_.-]{1,40}$",
        description="First part of every key.",
    )
    ttl: Duration = Field(
        default=86400.0, gt=0, description="A session's lifetime after its last write."
    )
    resume_window: Duration = Field(
        default=900.0, ge=0, description="How long after a drop a returning caller resumes."
    )
    queue_limit: int = Field(
        default=1000, ge=1, description="Writes kept in memory while Redis is unreachable."
    )
    lease_ttl: Duration = Field(
        default=15.0, gt=0, description="Ownership lease; renewed while the call is live."
    )
    snapshot_every: int = Field(
        default=200, ge=10, description="Compact the chat item list into one snapshot this often."
    )
    max_items: int = Field(
        default=5000,
        ge=10,
        description="A stored session with more chat items is quarantined, not resumed.",
    )
    max_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=1024,
        description="A stored session larger than this (bytes) is quarantined, not resumed.",
    )


# --------------------------------------------------------------------------- [worker]


class WorkerSection(_Strict):
    """``[worker]``: how the LiveKit worker takes jobs."""

    agent_name: str = Field(
        default="", description="LiveKit agent name for explicit dispatch; empty = automatic."
    )
    serves: tuple[str, ...] = Field(
        default=(),
        description="Workflow names / agent types whose jobs this worker accepts "
        "(empty = this workflow's name).",
    )
    max_sessions: int = Field(default=25, ge=1, description="Live calls that make load 1.0.")
    load_threshold: float = Field(
        default=0.75, gt=0, le=1, description="Load above which LiveKit stops sending jobs."
    )
    participant_kinds: tuple[Literal["standard", "sip"], ...] = Field(
        default=("standard", "sip"), description="Which participants count as the caller."
    )
    reconnect_grace: Duration = Field(
        default=20.0, ge=0, description="How long a dropped caller may rejoin the same room."
    )
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port of LiveKit's Prometheus endpoint (/metrics) with Frontdesk's metrics; "
        "none = not served.",
    )


# --------------------------------------------------------------------------- the file


class WorkflowConfig(_Strict):
    """A whole config.toml. Only ``[workflow]``, ``[caller_data]`` and ``[agents]`` are needed."""

    workflow: WorkflowSection
    caller_data: dict[Name, CallerField] = Field(default_factory=dict)
    agents: dict[Name, AgentConfig]
    providers: ProvidersSection = Field(default_factory=ProvidersSection)
    state: StateSection = Field(default_factory=StateSection)
    worker: WorkerSection = Field(default_factory=WorkerSection)

    @field_validator("agents")
    @classmethod
    def _at_least_one_agent(cls, value: dict[str, AgentConfig]) -> dict[str, AgentConfig]:
        if not value:
            raise ValueError("a workflow needs at least one agent")
        return value


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
    from frontdesk.workflows.graph import check_graph

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


def format_path(path: tuple[str | int, ...]) -> str:
    """``("agents", "sales", "handoffs", 0, "to")`` → ``agents.sales.handoffs[0].to``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


_KEY_PART = r"""[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*'"""
_DOTTED = rf"(?:{_KEY_PART})(?:\s*\.\s*(?:{_KEY_PART}))*"
_HEADER_RE = re.compile(rf"^\s*(\[\[?)\s*({_DOTTED})\s*\]\]?\s*(?:#.*)?$")
_KEY_RE = re.compile(rf"^\s*({_DOTTED})\s*=(.*)$")


def _split_dotted(key: str) -> list[str]:
    """The parts of a dotted TOML key, quotes removed and basic-string escapes decoded."""
    parts: list[str] = []
    for part in re.findall(_KEY_PART, key):
        if part.startswith('"'):
            try:
                parts.append(json.loads(part))
            except ValueError:
                parts.append(part[1:-1])
        elif part.startswith("'"):
            parts.append(part[1:-1])
        else:
            parts.append(part)
    return parts


def _opens_multiline_string(value: str, inside: str | None) -> str | None:
    """The multi-line string delimiter still open after ``value`` (None: none is)."""
    for delimiter in ('"""', "'''"):
        if inside in (None, delimiter) and value.count(delimiter) % 2 == 1:
            return None if inside == delimiter else delimiter
    return inside


class KeyLocator:
    """Maps key paths of a TOML text to the line that defines them.

    tomllib keeps no positions, so this reads table headers (``[a.b]`` also defines ``a``;
    ``[[a.b]]`` defines the array ``a.b`` and its element ``a.b[i]``) and ``key =`` lines,
    skipping the inside of multi-line strings. Keys inside inline tables resolve to their
    parent's line. Lines are counted on ``\\n`` only, as TOML does.
    """

    def __init__(self, text: str) -> None:
        self.lines: dict[tuple[str | int, ...], int] = {}
        table: tuple[str | int, ...] = ()
        array_counts: dict[tuple[str | int, ...], int] = {}
        inside: str | None = None
        for number, line in enumerate(text.split("\n"), start=1):
            if inside is not None:
                inside = _opens_multiline_string(line, inside)
                continue
            key = _KEY_RE.match(line)
            header = None if key else _HEADER_RE.match(line)
            if header is not None:
                names = tuple(_split_dotted(header.group(2)))
                for end in range(1, len(names) + 1):
                    self.lines.setdefault(names[:end], number)
                if header.group(1) == "[[":
                    index = array_counts.get(names, 0)
                    array_counts[names] = index + 1
                    table = (*names, index)
                else:
                    table = names
                self.lines.setdefault(table, number)
            elif key is not None:
                path = (*table, *_split_dotted(key.group(1)))
                for end in range(len(table) + 1, len(path) + 1):
                    self.lines.setdefault(path[:end], number)
                inside = _opens_multiline_string(key.group(2), None)

    def line_of(self, path: tuple[str | int, ...]) -> int | None:
        """The line of the longest prefix of ``path`` that the text defines."""
        for end in range(len(path), 0, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return None

    def format(self, source: str, path: tuple[str | int, ...], message: str) -> str:
        line = self.line_of(path)
        where = f"{source}:{line}" if line is not None else source
        return f"{where} {format_path(path)}: {message}"
