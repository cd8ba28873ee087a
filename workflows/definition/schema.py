"""The config.toml schema: every key a workflow file may hold, validated with pydantic v2.

This is the one place that says what a workflow config contains. Unknown keys are rejected;
every error names the key path and the line in the file
(``config.toml:23 agents.receptionist.handoffs[0].to: unknown agent 'suport' (did you mean
'support'?)``). Cross-references between sections (routes, collected fields) are checked by
:mod:`frontdesk.workflows.definition.graph`, which
:func:`~frontdesk.workflows.definition.loader.load_workflow` runs too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
)

from frontdesk.workflows.definition.durations import Duration

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
"""Agent and field names: they become tool names (``transfer_to_<agent>``, ``record_<field>``)."""


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
        description=(
            "Regular expression a value must match in full; "
            "also lets the offline brain find the value in what the caller says."
        ),
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
