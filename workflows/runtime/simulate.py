"""Scripted calls: a scenario file drives real ``AgentSession``s the way a caller would.

The scenario format is a fixed interface (other tooling writes it)::

    config = "config.toml"        # relative to the scenario file (else --config, else a
                                  # config.toml next to the scenario; else an error)
    caller = "+15551230000"       # caller identity

    [[turn]]
    say = "hi, my internet is down"
    expect_agent = "support"
    expect_reply_contains = ["account number"]
    expect_reply_not_contains = ["thanks for calling"]
    expect_data = { account_number = "AC-48213" }   # typed: { party_size = 4 } is an integer
    expect_tool = { name = "record_account_number", arguments = { account_number = "AC-48213" } }
    expect_intent = "asks for the caller's account number"   # judged by the profile's model

    [[turn]]
    event = "disconnect"          # or "reconnect": the same caller comes back

``expect_intent`` is judged by LiveKit's own judge (``ChatMessageAssert.judge``) with the
profile's model; under the ``offline`` profile there is no model to judge with, so it is
*skipped*, and the turn says so (``skipped`` in ``--json``), never silently passed.

Each turn's outcome is a :class:`TurnResult`; ``frontdesk simulate --json`` prints one per line.
Turns count from 1 everywhere (``turn[1]`` in an error is the first ``[[turn]]``); the names a
scenario uses are checked against its config before the call runs
(:mod:`frontdesk.workflows.runtime.scenario_checks`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from livekit.agents import llm
from livekit.agents.voice.run_result import RunResult
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from frontdesk.errors import ScenarioError
from frontdesk.workflows.definition import KeyLocator, Workflow
from frontdesk.workflows.definition.checks import describe_error
from frontdesk.workflows.definition.loader import MAX_NESTING, _nesting, by_line
from frontdesk.workflows.runtime.scenario_checks import (
    check_expected_value,
    check_scenario,
    data_failure,
    scenario_problem,
)
from frontdesk.workflows.runtime.session import Call, Persistence, start_call

DEMO_SCENARIO = Path(__file__).with_name("demo_scenario.toml")
"""The scenario ``frontdesk demo`` plays (shipped in the wheel)."""

if TYPE_CHECKING:
    from frontdesk.workflows.providers.text_mode import TextProfile

logger = logging.getLogger(__name__)

TURN_TIMEOUT = 30.0
"""Seconds one scripted turn may take before it counts as failed."""


class ExpectTool(BaseModel):
    """``expect_tool = { name = "…", arguments = {…} }``: a tool the agents called this turn."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="The tool's name, e.g. 'record_account_number'.")
    arguments: dict[str, Any] = Field(
        default_factory=dict, description="Arguments it must have been called with (a subset)."
    )


ExpectedValue = Annotated[Any, AfterValidator(check_expected_value)]
"""An ``expect_data`` value: string, integer, number, boolean, date, time, or a list of them."""


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
    expect_data: dict[str, ExpectedValue] | None = Field(
        default=None,
        description="Caller data values expected after the turn, compared type and all "
        '(4 is an integer, "4" a string).',
    )
    expect_tool: ExpectTool | None = Field(
        default=None, description="A tool call this turn must contain."
    )
    expect_intent: str | None = Field(
        default=None,
        min_length=1,
        description="What the turn's last reply must do, judged by the profile's model "
        "(skipped under offline).",
    )
    resume_token: str | None = Field(
        default=None,
        max_length=512,
        description="On a reconnect: the token presented ('issued' = the one the last call "
        "got, '' = none, anything else as is); default the scenario's.",
    )
    caller: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="On a reconnect: who calls back (default the scenario's caller).",
    )
    expect_resumed: bool | None = Field(
        default=None, description="On a reconnect: whether the call resumed the saved session."
    )

    @model_validator(mode="after")
    def _one_action(self) -> ScenarioTurn:
        if (self.say is None) == (self.event is None):
            raise ValueError("a turn needs exactly one of 'say' or 'event'")
        if self.event != "reconnect" and (
            self.resume_token is not None
            or self.caller is not None
            or self.expect_resumed is not None
        ):
            raise ValueError(
                "resume_token, caller and expect_resumed apply to reconnect turns only"
            )
        return self


class Scenario(BaseModel):
    """A whole scenario file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    config: str | None = Field(default=None, description="Config file, relative to the scenario.")
    caller: str = Field(default="+15550000000", min_length=1, max_length=256)
    caller_kind: Literal["sip", "web"] = Field(
        default="sip", description="A phone caller (resumes by number) or a web caller (by token)."
    )
    resume_token: str = Field(
        default="issued",
        max_length=512,
        description="What a reconnecting caller presents: 'issued' (the token the last call "
        "got), '' (none) or a literal token (forged, expired, someone else's).",
    )
    turn: tuple[ScenarioTurn, ...] = Field(min_length=1, max_length=10_000)

    source: Path | None = Field(default=None, exclude=True)
    _text: str = PrivateAttr(default="")

    @property
    def text(self) -> str:
        """The file's text (for the lines of the problems found after parsing)."""
        return self._text

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
    data: dict[str, Any] = Field(default_factory=dict)
    resumed: bool | None = None
    ok: bool = True
    failures: list[str] = Field(default_factory=list)
    skipped: list[str] = Field(
        default_factory=list, description="Expectations not checked this run, and why."
    )
    tools: list[dict[str, Any]] = Field(
        default_factory=list, description="Tool calls of the turn: name and arguments."
    )
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
    except RecursionError:
        raise ScenarioError(f"{name}: not valid TOML: arrays or tables nested too deeply") from None
    if _nesting(data) > MAX_NESTING:
        raise ScenarioError(
            f"{name}: tables and arrays are nested more than {MAX_NESTING} levels deep"
        )
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        locator = KeyLocator(text)
        errors = exc.errors()
        in_turns = any(len(error["loc"]) > 1 and error["loc"][0] == "turn" for error in errors)
        problems = [
            scenario_problem(locator, name, tuple(error["loc"]), describe_error(error, Scenario))
            for error in errors
            # pydantic also calls `turn` too short when none of its turns validates
            if not (in_turns and error["type"] == "too_short" and tuple(error["loc"]) == ("turn",))
        ]
        raise ScenarioError("\n".join(by_line(problems, name))) from None
    scenario = scenario.model_copy(update={"source": source})
    scenario._text = text
    return scenario


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


def tool_calls_of(events: list[Any]) -> list[dict[str, Any]]:
    """``{"name", "arguments"}`` of every function call in a run's events."""
    calls = []
    for event in events:
        if event.type == "function_call":
            try:
                arguments = json.loads(event.item.arguments or "{}")
            except ValueError:
                arguments = {"<unparsed>": event.item.arguments}
            calls.append({"name": event.item.name, "arguments": arguments})
    return calls


def _tool_failure(expected: ExpectTool, calls: list[dict[str, Any]]) -> str | None:
    for call in calls:
        arguments = call["arguments"] if isinstance(call["arguments"], dict) else {}
        if call["name"] == expected.name and all(
            arguments.get(key) == value for key, value in expected.arguments.items()
        ):
            return None
    made = ", ".join(f"{c['name']}({json.dumps(c['arguments'])})" for c in calls) or "none"
    wanted = f"{expected.name}({json.dumps(expected.arguments)})"
    return f"expected tool call {wanted}; calls made: {made}"


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
    if turn.expect_resumed is not None and result.resumed != turn.expect_resumed:
        failures.append(f"expected resumed = {turn.expect_resumed}, got {result.resumed}")
    for key, value in (turn.expect_data or {}).items():
        if (problem := data_failure(key, value, result.data)) is not None:
            failures.append(problem)
    if turn.expect_tool is not None and (problem := _tool_failure(turn.expect_tool, result.tools)):
        failures.append(problem)
    return failures


OFFLINE_JUDGE_SKIP = (
    "expect_intent skipped: the offline profile has no model to judge it "
    "(run with --profile NAME to check it)"
)


async def judge_intent(
    run: RunResult[Any] | None, intent: str, judge: llm.LLM | None
) -> str | None:
    """The failure of ``expect_intent`` on the run's last reply, or None when it holds.

    Uses LiveKit's own judge (``ChatMessageAssert.judge``) with ``judge``, the profile's model.
    """
    assert judge is not None
    events = list(run.events) if run is not None else []
    last = max(
        (
            index
            for index, event in enumerate(events)
            if event.type == "message" and event.item.role == "assistant"
        ),
        default=None,
    )
    if run is None or last is None:
        return f"expect_intent: nothing was said to judge against {intent!r}"
    try:
        await run.expect[last].is_message(role="assistant").judge(judge, intent=intent)
    except AssertionError as exc:
        first_line = str(exc).split("\nContext around failure:", 1)[0]
        return f"intent not met ({intent!r}): {first_line}"
    except Exception as exc:  # the judge's model failed: the expectation could not be checked
        return f"expect_intent could not be judged: {type(exc).__name__}: {exc}"
    return None


class ScenarioRunner:
    """Plays a scenario against one workflow, turn by turn."""

    def __init__(
        self,
        *,
        workflow: Workflow,
        persistence: Persistence | None,
        profile: TextProfile | None = None,
    ) -> None:
        self._workflow = workflow
        self._persistence = persistence
        self._profile = profile
        """The profile's models (None: the offline brain)."""
        self._call: Call | None = None
        self._run: RunResult[Any] | None = None
        self._scenario = Scenario(turn=(ScenarioTurn(say="-"),))
        self._issued: str | None = None

    async def run(self, scenario: Scenario) -> list[TurnResult]:
        check_scenario(scenario, self._workflow)  # before any call: a misnamed agent is exit 2
        results: list[TurnResult] = []
        self._scenario = scenario
        self._issued = None
        try:
            self._call = await self._start(scenario.caller, token="")
            for number, turn in enumerate(scenario.turn, start=1):
                self._run = None
                result = await self._play(number, turn, turn.caller or scenario.caller)
                result.failures = [*result.failures, *check_expectations(turn, result)]
                if turn.expect_intent is not None:
                    await self._check_intent(turn.expect_intent, result)
                if self._call is not None and self._call.ended_reason:
                    result.failures.append(f"the call ended: {self._call.ended_reason}")
                result.ok = not result.failures
                results.append(result)
        finally:
            if self._call is not None:
                await self._call.aclose("scenario finished")
        return results

    async def _check_intent(self, intent: str, result: TurnResult) -> None:
        judge = self._profile.judge if self._profile is not None else None
        if judge is None:
            result.skipped.append(OFFLINE_JUDGE_SKIP)
            logger.warning("turn %d: %s", result.turn, OFFLINE_JUDGE_SKIP)
            return
        failure = await judge_intent(self._run, intent, judge)
        if failure is not None:
            result.failures.append(failure)

    async def _start(self, caller: str, *, token: str | None) -> Call:
        presented = self._scenario.resume_token if token is None else token
        if presented == "issued":
            presented = self._issued or ""
        extra: dict[str, Any] = self._profile.start_kwargs() if self._profile is not None else {}
        call = await asyncio.wait_for(
            start_call(
                workflow=self._workflow,
                caller_identity=caller,
                persistence=self._persistence,
                **extra,
                caller_kind=self._scenario.caller_kind,
                resume_token=presented or None,
            ),
            TURN_TIMEOUT,
        )
        self._issued = call.resume_token or self._issued
        return call

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
            self._call = call = await self._start(caller, token=turn.resume_token)
            self._run = call.opening
            result.resumed = call.resumed
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
        if call.ended_reason:
            result.failures.append(f"the call has ended ({call.ended_reason})")
            return result
        before = call.session.current_agent.id
        try:
            run: RunResult[Any] = await asyncio.wait_for(
                call.session.run(user_input=turn.say or ""), TURN_TIMEOUT
            )
        except TimeoutError:
            result.failures.append(f"no reply within {TURN_TIMEOUT:.0f}s")
            return result
        except Exception as exc:  # a model failure LiveKit reports through the run
            result.failures.append(f"the turn failed: {type(exc).__name__}: {exc}")
            result.data = dict(call.userdata.fields)
            return result
        self._run = run
        result.record(reply_of(list(run.events), before))
        result.tools = tool_calls_of(list(run.events))
        result.data = dict(call.userdata.fields)
        return result
