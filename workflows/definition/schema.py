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
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from frontdesk.workflows.definition.durations import Duration
from frontdesk.workflows.definition.tools import HttpTool
from frontdesk.workflows.definition.transfer import HumanTransfer

if TYPE_CHECKING:
    from frontdesk.workflows.definition.patterns import Pattern

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
"""Agent and field names: they become tool names (``transfer_to_<agent>``, ``record_<field>``)."""

MAX_INSTRUCTIONS = 20_000
"""Characters an agent's instructions may hold: they are sent with every model request and
stored with every handoff, so 10 MB of instructions would cost 10 MB per turn."""
MAX_LINE = 2_000
"""Characters of a spoken line, a route's `when`, a description, a question."""


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

DEFAULT_STYLE = (
    "This is a live phone call: everything you write is spoken aloud by a voice. Answer in one "
    "to three short spoken sentences. Never use lists, markdown, headings, emoji or URLs. Ask "
    "one question at a time and wait for the answer. Spell out codes and numbers the way you "
    "would say them."
)
"""``[workflow] style`` by default: the voice rules every agent follows."""


class WorkflowSection(_Strict):
    """``[workflow]``: the workflow's name and where a call starts."""

    name: str = Field(
        min_length=1, description="Workflow name; part of the stored session identity."
    )
    start: Name = Field(description="The agent a new call starts on.")
    description: str = Field(
        default="", max_length=MAX_LINE, description="Free text shown by `frontdesk graph`."
    )
    max_handoffs_per_turn: int = Field(
        default=3,
        ge=1,
        le=20,
        description="Loop guard: handoffs allowed between two caller utterances before the "
        "current agent keeps the call and says `loop_fallback`.",
    )
    loop_fallback: str = Field(
        default="Sorry, I'm having trouble transferring you. Let me help you myself.",
        max_length=MAX_LINE,
        description="Spoken verbatim when the loop guard refuses a handoff.",
    )
    style: str = Field(
        default=DEFAULT_STYLE,
        max_length=MAX_INSTRUCTIONS,
        description="A preamble put in front of every agent's instructions (how to speak on "
        "this line); empty for none.",
    )
    error_line: str = Field(
        default="Sorry, I didn't catch that because of a problem on my side. Could you say it again?",
        min_length=1,
        max_length=MAX_LINE,
        description="Spoken verbatim when every language model of the profile failed a turn.",
    )
    error_goodbye: str = Field(
        default="I'm sorry, we're having technical problems. Please call back in a few minutes. "
        "Goodbye.",
        min_length=1,
        max_length=MAX_LINE,
        description="Spoken verbatim before the call is ended after `max_consecutive_errors`.",
    )
    max_consecutive_errors: int = Field(
        default=3,
        ge=1,
        le=20,
        description="Failed model turns in a row after which the call ends politely (state saved).",
    )


# --------------------------------------------------------------------------- [caller_data]


class CallerField(_Strict):
    """``[caller_data.<field>]``: one piece of shared caller data, collected once per call."""

    description: str = Field(
        min_length=1, max_length=MAX_LINE, description="What the value is; the record tool's doc."
    )
    pattern: str | None = Field(
        default=None,
        max_length=1000,
        description=(
            "Regular expression a value must match in full; "
            "also lets the offline brain find the value in what the caller says."
        ),
    )
    ask: str | None = Field(
        default=None, max_length=MAX_LINE, description="The question that asks the caller for it."
    )
    example: str | None = Field(
        default=None, max_length=200, description="An example value, shown to the model."
    )
    sensitive: bool = Field(
        default=False,
        description="Encrypted at rest, masked on screen and in logs, and withheld from a "
        "caller resumed by caller ID until they pass verification.",
    )
    verify_with: tuple[Name, ...] = Field(
        default=(),
        description="Fields a resumed caller must repeat before this sensitive field is "
        "released (empty: the field itself).",
    )

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            from frontdesk.workflows.definition.patterns import PatternError, compile_pattern

            try:
                compile_pattern(value)
            except PatternError as exc:
                raise ValueError(str(exc)) from None
        return value

    @cached_property
    def regex(self) -> Pattern | None:
        """The pattern compiled by RE2 (linear time; ASCII ``\\d``)."""
        from frontdesk.workflows.definition.patterns import compile_pattern

        return compile_pattern(self.pattern) if self.pattern else None

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
        min_length=1,
        max_length=MAX_LINE,
        description="When to hand off; the transfer tool's description.",
    )
    context: Annotated[str, AfterValidator(_validate_context)] = Field(
        default="full",
        description="What the next agent receives: 'full', 'last:N', 'summary' or 'none'.",
    )
    examples: tuple[Annotated[str, Field(max_length=200)], ...] = Field(
        default=(),
        max_length=200,
        description="Deprecated (moved to [offline.agents.<agent>.examples]): caller phrases "
        "that make the offline brain take this route.",
    )
    say: str | None = Field(
        default=None,
        max_length=MAX_LINE,
        description="Spoken verbatim on handoff (`{field}`s filled) while the next agent's "
        "first reply is generated.",
    )
    summary_prompt: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_INSTRUCTIONS,
        description="With context = 'summary': the prompt asking the model for the summary "
        "(default: a generic one).",
    )

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

    instructions: str = Field(
        min_length=1,
        max_length=MAX_INSTRUCTIONS,
        description="The agent's system instructions.",
    )
    greeting: str | None = Field(
        default=None,
        max_length=MAX_LINE,
        description="Said once per call when the caller first reaches this agent directly "
        "(never after a handoff or a resume).",
    )
    reply: str | None = Field(
        default=None,
        max_length=MAX_LINE,
        description="Deprecated (moved to [offline.agents.<name>] reply): the offline brain's "
        "answer once nothing is missing.",
    )
    resume: str | None = Field(
        default=None,
        max_length=MAX_LINE,
        description="Spoken verbatim when a dropped caller comes back (`{field}`s filled), e.g. "
        "'Welcome back — we were checking your line for {account_number}.'",
    )
    collects: tuple[Name, ...] = Field(
        default=(), description="Caller-data fields this agent must have before it can help."
    )
    handoffs: tuple[Route, ...] = Field(default=(), description="Routes to other agents.")
    tools: tuple[Annotated[str, Field(min_length=1, max_length=200)], ...] = Field(
        default=(),
        max_length=50,
        description="Tools the agent may use: 'module:function' (a Python tool) or the name of "
        "a [tools.<name>] HTTP tool.",
    )
    transfer: HumanTransfer | None = Field(
        default=None,
        description="Passing the caller to a human (a transfer_to_human tool); see "
        "frontdesk.workflows.definition.transfer.",
    )
    stt: ComponentOverride | None = Field(default=None, description="Per-agent STT override.")
    llm: ComponentOverride | None = Field(default=None, description="Per-agent LLM override.")
    tts: ComponentOverride | None = Field(default=None, description="Per-agent TTS override.")


# --------------------------------------------------------------------------- [providers]


def _as_chain(value: object) -> object:
    """``llm = { … }`` is a chain of one; ``llm = [{ … }, { … }]`` a fallback chain."""
    if isinstance(value, dict | ComponentConfig):
        return (value,)
    return value


class ProviderProfile(_Strict):
    """``[providers.<profile>]``: the voice pipeline a call runs on."""

    description: str = Field(default="", description="Shown by `frontdesk providers`.")
    stt: ComponentConfig | None = Field(default=None, description="Speech to text.")
    llm: Annotated[tuple[ComponentConfig, ...], BeforeValidator(_as_chain), Field(min_length=1)] = (
        Field(
            description="The language model (or the offline brain); a list is a fallback chain "
            "(LiveKit's llm.FallbackAdapter), tried in order."
        )
    )
    llm_timeout: Duration = Field(
        default=10.0,
        gt=0,
        description="Seconds one model request may take before it counts as failed.",
    )
    llm_retries: int = Field(
        default=3,
        ge=0,
        le=10,
        description="Retries of a failed model request (per model of a fallback chain: none; "
        "the next model is tried instead).",
    )
    tts: ComponentConfig | None = Field(default=None, description="Text to speech.")
    vad: ComponentConfig | None = Field(default=None, description="Voice activity detection.")
    cost_per_minute_usd: float | None = Field(
        default=None, ge=0, description="Approximate provider cost per call minute, for docs."
    )

    @property
    def text_only(self) -> bool:
        return self.stt is None and self.tts is None

    @property
    def llm_chain(self) -> tuple[ComponentConfig, ...]:
        """The profile's language models, in fallback order (one, unless ``llm`` is a list)."""
        return self.llm

    @property
    def primary_llm(self) -> ComponentConfig:
        return self.llm_chain[0]


OFFLINE_PROFILE = ProviderProfile(
    description="The offline brain, text only: no API key, no network.",
    llm=(ComponentConfig(provider="offline"),),
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

TrustMode = Literal["token", "caller_id", "caller_id+verify"]
DEFAULT_TRUST: dict[str, TrustMode] = {"sip": "caller_id+verify", "web": "token"}
"""Who may resume by default, per caller kind: phone callers by number then verification, web
callers only with the signed token their app got at call start."""


class ResumeSection(_Strict):
    """``[state.resume]``: who may resume a saved session, and how they prove it."""

    trust: TrustMode | dict[Literal["sip", "web"], TrustMode] | None = Field(
        default=None,
        description="'token', 'caller_id' or 'caller_id+verify' for every caller, or a table "
        "per caller kind ({ sip = ..., web = ... }); unset: sip 'caller_id+verify', web 'token'.",
    )
    verify_attempts: int = Field(
        default=3, ge=1, le=10, description="Wrong verification answers before a lock-out."
    )
    lockout: Duration = Field(
        default=300.0,
        gt=0,
        description="How long a locked-out caller identity cannot resume (shorter than "
        "resume_window, so the genuine caller still can afterwards).",
    )
    lockout_line: str = Field(
        default="I'm sorry, I can't verify your details, so I can't continue with your earlier "
        "call. Let's start again: how can I help?",
        max_length=2000,
        description="Spoken verbatim when a caller is locked out.",
    )
    token_ttl: Duration = Field(
        default=86400.0, gt=0, description="How long an issued resume token is valid."
    )
    end_on_hangup: bool = Field(
        default=True,
        description="A deliberate hang-up ends the session: a later call starts fresh.",
    )

    def trust_for(self, kind: str) -> TrustMode:
        """The trust mode of a caller kind (``sip`` or ``web``)."""
        if isinstance(self.trust, str):
            return self.trust
        if isinstance(self.trust, dict) and kind in self.trust:
            return self.trust[kind]  # type: ignore[index]
        return DEFAULT_TRUST.get(kind, "token")


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
    durability: Literal["leader", "replica"] = Field(
        default="leader",
        description="When a write counts as acknowledged: once the master has it ('leader'), "
        "or once a replica has it too ('replica': WAIT 1 <durability_timeout> after each write).",
    )
    durability_timeout: Duration = Field(
        default=0.5,
        gt=0,
        le=60,
        description="durability = 'replica': how long a write waits for a replica before it "
        "counts as not acknowledged (and is retried).",
    )
    resume: ResumeSection = Field(
        default_factory=ResumeSection, description="Who may resume a saved session."
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


# --------------------------------------------------------------------------- [offline]


class OfflineAgent(_Strict):
    """``[offline.agents.<name>]``: what only the offline brain reads for one agent (fixtures)."""

    reply: str | None = Field(
        default=None,
        max_length=MAX_LINE,
        description="The offline brain's answer once nothing is missing; `{field}`s filled.",
    )
    examples: dict[Name, tuple[Annotated[str, Field(max_length=200)], ...]] = Field(
        default_factory=dict,
        description="By target agent: caller phrases that make the offline brain take that "
        "route (case-insensitive substring).",
    )


class OfflineSection(_Strict):
    """``[offline]``: test fixtures of the offline brain, outside the workflow's content hash."""

    agents: dict[Name, OfflineAgent] = Field(default_factory=dict)
    tools: dict[str, tuple[Annotated[str, Field(max_length=200)], ...]] = Field(
        default_factory=dict,
        description="By tool name (a Python function's name or an HTTP tool's): caller phrases "
        "that make the offline brain call that tool (case-insensitive substring).",
    )

    def agent(self, name: str) -> OfflineAgent:
        return self.agents.get(name) or OfflineAgent()


# --------------------------------------------------------------------------- the file


class WorkflowConfig(_Strict):
    """A whole config.toml. Only ``[workflow]``, ``[caller_data]`` and ``[agents]`` are needed."""

    workflow: WorkflowSection
    caller_data: dict[Name, CallerField] = Field(default_factory=dict)
    agents: dict[Name, AgentConfig]
    providers: ProvidersSection = Field(default_factory=ProvidersSection)
    state: StateSection = Field(default_factory=StateSection)
    worker: WorkerSection = Field(default_factory=WorkerSection)
    offline: OfflineSection = Field(default_factory=OfflineSection)
    tools: dict[Name, HttpTool] = Field(
        default_factory=dict, description="HTTP tools, by name (see agents.<a>.tools)."
    )

    @model_validator(mode="after")
    def _move_offline_fixtures(self) -> WorkflowConfig:
        """Deprecated ``reply``/``examples`` in the agent tables move into ``[offline]``.

        The new place wins when both are set; afterwards the agent tables hold only what a
        real call uses, so the content hash does not depend on where the fixtures were written.
        """
        offline_agents = dict(self.offline.agents)
        agents = dict(self.agents)
        moved = False
        for name, agent in self.agents.items():
            routes = tuple(route for route in agent.handoffs if route.examples)
            if agent.reply is None and not routes:
                continue
            moved = True
            fixture = offline_agents.get(name) or OfflineAgent()
            examples = {route.to: route.examples for route in routes} | dict(fixture.examples)
            offline_agents[name] = fixture.model_copy(
                update={
                    "reply": fixture.reply if fixture.reply is not None else agent.reply,
                    "examples": examples,
                }
            )
            agents[name] = agent.model_copy(
                update={
                    "reply": None,
                    "handoffs": tuple(
                        route.model_copy(update={"examples": ()}) for route in agent.handoffs
                    ),
                }
            )
        if moved:
            object.__setattr__(self, "agents", agents)
            object.__setattr__(
                self, "offline", self.offline.model_copy(update={"agents": offline_agents})
            )
        return self

    @field_validator("agents")
    @classmethod
    def _at_least_one_agent(cls, value: dict[str, AgentConfig]) -> dict[str, AgentConfig]:
        if not value:
            raise ValueError("a workflow needs at least one agent")
        return value
