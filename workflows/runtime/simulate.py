"""Scripted calls: a scenario file drives real ``AgentSession``s the way a caller would.

The scenario format is a fixed interface (other tooling writes it)::

    config = "config.toml"        # optional, relative to the scenario file
    caller = "+15551230000"       # caller identity

    [[turn]]
    say = "hi, my internet is down"
    expect_agent = "support"
    expect_reply_contains = ["account number"]
    expect_reply_not_contains = ["thanks for calling"]
    expect_data = { account_number = "AC-48213" }

    [[turn]]
    event = "disconnect"          # or "reconnect": the same caller comes back

Each turn's outcome is a :class:`TurnResult`; ``frontdesk simulate --json`` prints one per line.
"""

from __future__ import annotations

import asyncio
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from livekit.agents.voice.run_result import RunResult
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from frontdesk.errors import ScenarioError
from frontdesk.workflows.definition import KeyLocator, Workflow
from frontdesk.workflows.runtime.session import Call, Persistence, start_call

DEMO_SCENARIO = Path(__file__).with_name("demo_scenario.toml")
"""The scenario ``frontdesk demo`` plays (shipped in the wheel)."""

TURN_TIMEOUT = 30.0
"""Seconds one scripted turn may take before it counts as failed."""


class ScenarioTurn(BaseModel):
    """``[[turn]]``: the caller says something, or drops, or comes back; then expectations."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    say: str | None = Field(default=None, description="What the caller says.")
    event: Literal["disconnect", "reconnect"] | None = Field(
        default=None, description="'disconnect': the caller drops; 'reconnect': they call back."
    )
    expect_agent: str | None = Field(
        default=None, description="The agent that produced the last reply of this turn."
    )
    expect_reply_contains: tuple[str, ...] = Field(
        default=(), description="Case-insensitive substrings the turn's reply must contain."
    )
    expect_reply_not_contains: tuple[str, ...] = Field(
        default=(), description="Case-insensitive substrings the turn's reply must not contain."
    )
    expect_data: dict[str, str] | None = Field(
        default=None, description="Caller data values expected after the turn."
    )

    @model_validator(mode="after")
    def _one_action(self) -> ScenarioTurn:
        if (self.say is None) == (self.event is None):
            raise ValueError("a turn needs exactly one of 'say' or 'event'")
        return self


class Scenario(BaseModel):
    """A whole scenario file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    config: str | None = Field(default=None, description="Config file, relative to the scenario.")
    caller: str = Field(default="+15550000000", min_length=1, max_length=256)
    turn: tuple[ScenarioTurn, ...] = Field(min_length=1, max_length=10_000)

    source: Path | None = Field(default=None, exclude=True)

    def config_path(self) -> Path | None:
        if self.config is None:
            return None
        base = self.source.parent if self.source is not None else Path.cwd()
        return base / self.config


class TurnResult(BaseModel):
    """What happened in one turn, and which expectations failed."""

    turn: int
    event: str
    user: str | None = None
    agent: str | None = None
    reply: str = ""
    handoffs: list[dict[str, str | None]] = Field(default_factory=list)
    data: dict[str, str] = Field(default_factory=dict)
    ok: bool = True
    failures: list[str] = Field(default_factory=list)
    lines: list[tuple[str | None, str]] = Field(default_factory=list, exclude=True)
    """Each spoken line with its agent (for display; not part of the JSON output)."""

    def record(self, reply: Reply) -> None:
        self.reply, self.agent, self.handoffs, self.lines = (
            reply.text,
            reply.agent,
            reply.handoffs,
            reply.lines,
        )


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; :class:`ScenarioError` names the key path and line."""
    scenario_path = Path(path)
    try:
        text = scenario_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{scenario_path}: cannot read scenario: {exc}") from None
    return parse_scenario(text, source=scenario_path)


def parse_scenario(text: str, *, source: Path | None = None) -> Scenario:
    name = str(source) if source is not None else "<scenario>"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{name}: not valid TOML: {exc}") from None
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        locator = KeyLocator(text)
        problems = []
        for error in exc.errors():
            message = str(error["msg"]).removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown key"
            elif error["type"] == "missing":
                message = "required key is missing"
            problems.append(locator.format(name, tuple(error["loc"]), message))
        raise ScenarioError("\n".join(problems)) from None
    return scenario.model_copy(update={"source": source})


@dataclass
class Reply:
    """What the agents said in one run, line by line, and the handoffs between them."""

    start_agent: str | None
    lines: list[tuple[str | None, str]] = field(default_factory=list)
    """(agent, text) of every spoken line, in order."""
    handoffs: list[dict[str, str | None]] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(text for _, text in self.lines)

    @property
    def agent(self) -> str | None:
        """The agent that produced the last line (the start agent when nothing was said)."""
        return self.lines[-1][0] if self.lines else self.start_agent


def reply_of(events: list[Any], start_agent: str | None) -> Reply:
    """The :class:`Reply` in a run's events (LiveKit ``RunResult.events``)."""
    reply = Reply(start_agent=start_agent)
    agent = start_agent
    for event in events:
        item = event.item
        if event.type == "agent_handoff":
            agent = item.new_agent_id
            if item.old_agent_id is not None:
                reply.handoffs.append({"from": item.old_agent_id, "to": item.new_agent_id})
        elif event.type == "message" and item.role == "assistant" and item.text_content:
            reply.lines.append((agent, item.text_content))
    return reply


def check_expectations(turn: ScenarioTurn, result: TurnResult) -> list[str]:
    """Each failed expectation of ``turn`` as a sentence."""
    failures = []
    reply = result.reply.lower()
    if turn.expect_agent is not None and result.agent != turn.expect_agent:
        failures.append(f"expected agent '{turn.expect_agent}', got '{result.agent}'")
    for text in turn.expect_reply_contains:
        if text.lower() not in reply:
            failures.append(f"reply does not contain {text!r}: {result.reply!r}")
    for text in turn.expect_reply_not_contains:
        if text.lower() in reply:
            failures.append(f"reply contains {text!r}: {result.reply!r}")
    for key, value in (turn.expect_data or {}).items():
        actual = result.data.get(key)
        if actual != value:
            failures.append(f"expected {key} = {value!r}, got {actual!r}")
    return failures


class ScenarioRunner:
    """Plays a scenario against one workflow, turn by turn."""

    def __init__(self, *, workflow: Workflow, persistence: Persistence | None) -> None:
        self._workflow = workflow
        self._persistence = persistence
        self._call: Call | None = None

    async def run(self, scenario: Scenario) -> list[TurnResult]:
        results: list[TurnResult] = []
        try:
            self._call = await self._start(scenario.caller)
            for number, turn in enumerate(scenario.turn, start=1):
                result = await self._play(number, turn, scenario.caller)
                result.failures = [*result.failures, *check_expectations(turn, result)]
                result.ok = not result.failures
                results.append(result)
        finally:
            if self._call is not None:
                await self._call.aclose("scenario finished")
        return results

    async def _start(self, caller: str) -> Call:
        return await asyncio.wait_for(
            start_call(
                workflow=self._workflow, caller_identity=caller, persistence=self._persistence
            ),
            TURN_TIMEOUT,
        )

    async def _play(self, number: int, turn: ScenarioTurn, caller: str) -> TurnResult:
        result = TurnResult(turn=number, event=turn.event or "say", user=turn.say)
        call = self._call
        if turn.event == "disconnect":
            if call is not None:
                await call.aclose("caller dropped")
                result.data = dict(call.userdata.fields)
            self._call = None
            return result
        if turn.event == "reconnect":
            if self._persistence is None:
                result.failures.append(
                    "reconnect needs session state in Redis (persistence is off)"
                )
                return result
            if call is not None:
                await call.aclose("caller dropped")
            self._call = call = await self._start(caller)
            events = call.opening.events if call.opening is not None else []
            result.record(reply_of(events, None))
            result.agent = call.session.current_agent.id if result.agent is None else result.agent
            result.data = dict(call.userdata.fields)
            return result
        if call is None:
            result.failures.append(
                'the caller is disconnected: add a turn with event = "reconnect" first'
            )
            return result
        before = call.session.current_agent.id
        try:
            run: RunResult[Any] = await asyncio.wait_for(
                call.session.run(user_input=turn.say or ""), TURN_TIMEOUT
            )
        except TimeoutError:
            result.failures.append(f"no reply within {TURN_TIMEOUT:.0f}s")
            return result
        result.record(reply_of(list(run.events), before))
        result.data = dict(call.userdata.fields)
        return result
