"""The offline brain: a deterministic :class:`livekit.agents.llm.LLM` built from the workflow config.

It is the embedded default for ``frontdesk demo``, ``chat`` and ``simulate`` and the tests' model:
no API key, no network, the same answer to the same conversation every time. It is not a language
model; it reads what a model would read (the instructions with their call-context block, the
chat items, the tool list) and follows fixed rules, answering through LiveKit's real
tool-calling path (function-call chunks), so everything downstream runs as in production.

Rules, first match wins (a ``tool_choice`` that forces one function is obeyed before all):

1. A summary request (the handoff ``summary`` policy) gets a summary of the caller's words and
   the known caller data.
2. A tool just answered: a refused ``record_<field>`` → say the refusal (it asks again); a
   refused transfer (loop guard) → say the fallback line; a recorded field → go on with rule 5.
3. After a resume → "Welcome back…" (unless the agent's ``resume`` line was already spoken
   verbatim), then rule 5's question if a field is still missing.
4. The caller just spoke to this agent and their words contain an ``example`` of one of its routes
   → call that route's ``transfer_to_<agent>`` tool (earliest match in the utterance wins; ties go
   to the route listed first); else an ``[offline.tools]`` example of one of its work tools →
   call that tool (a Python tool's arguments named like known caller-data fields are filled;
   an agent's ``transfer_to_human`` counts as one of its work tools).
   A work tool's result is then said as is.
5. A collected field is missing: if a caller message in view contains a value matching the
   field's ``pattern`` (newest first), or answers the field's question just asked → call
   ``record_<field>``; otherwise say the field's ``ask``.
6. Otherwise say the agent's ``reply`` (``{field}`` filled from caller data), or a generic line.

``reply`` and ``examples`` are the brain's fixtures: ``[offline.agents.<name>]`` in config.toml,
read by nothing else.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any

from livekit.agents import llm
from livekit.agents.llm import ChatChunk, ChatContext, ChoiceDelta, FunctionToolCall
from livekit.agents.types import (
    DEFAULT_API_CONNECT_OPTIONS,
    NOT_GIVEN,
    APIConnectOptions,
    NotGivenOr,
)

from frontdesk.agents.prompt import (
    HANDOFF_NOTE_MARKER,
    OPENING_NOTE_MARKER,
    RESUME_NOTE_MARKER,
    RESUME_SPOKEN_MARKER,
    SUMMARY_MARKER,
    SUMMARY_PREFIX,
    CallContext,
    fill_template,
    read_call_context,
)
from frontdesk.workflows.definition import Workflow
from frontdesk.workflows.definition.patterns import Pattern, compile_pattern
from frontdesk.workflows.definition.transfer import TRANSFER_TOOL

MAX_SCANNED_CHARS = 4000
"""Only this much of an utterance is searched: a 100 KB utterance costs no more than a long one."""

_call_ids = itertools.count(1)


@dataclass(frozen=True)
class Decision:
    """What the brain does this step: say ``text``, or call ``tool`` with ``arguments``."""

    text: str = ""
    tool: str | None = None
    arguments: dict[str, str] | None = None


def _text(item: Any) -> str:
    return (item.text_content or "") if item.type == "message" else ""


class OfflineBrain(llm.LLM):
    """Deterministic stand-in for a language model, driven by one workflow's config."""

    def __init__(self, *, workflow: Workflow) -> None:
        super().__init__()
        self._workflow = workflow
        self._finders: dict[str, Pattern] = {}

    @property
    def model(self) -> str:
        return "frontdesk-offline-brain"

    @property
    def provider(self) -> str:
        return "frontdesk"

    def chat(
        self,
        *,
        chat_ctx: ChatContext,
        tools: list[llm.Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        parallel_tool_calls: NotGivenOr[bool] = NOT_GIVEN,
        tool_choice: NotGivenOr[llm.ToolChoice] = NOT_GIVEN,
        extra_kwargs: NotGivenOr[dict[str, Any]] = NOT_GIVEN,
    ) -> OfflineBrainStream:
        tool_names = {getattr(tool, "id", "") for tool in tools or []}
        forced = _forced_tool(tool_choice)
        if forced is not None and forced in tool_names:
            decision = Decision(tool=forced, arguments={})
        else:
            decision = self.decide(chat_ctx, set() if tool_choice == "none" else tool_names)
        return OfflineBrainStream(
            self, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options, decision=decision
        )

    # ------------------------------------------------------------------ the rules

    def decide(self, chat_ctx: ChatContext, tool_names: set[str]) -> Decision:
        """The brain's whole policy: the next step for this conversation and these tools."""
        items = [item for item in chat_ctx.items if item.type != "agent_config_update"]
        system = [item for item in items if item.type == "message" and item.role == "system"]
        if system and _text(system[0]).startswith(SUMMARY_MARKER):
            return Decision(text=self._summary(items))

        context = self._call_context(system)
        if context is None or context.agent not in self._workflow.config.agents:
            return Decision(text="How can I help you today?")
        known = dict(context.known)

        last = items[-1] if items else None
        if last is not None and last.type == "function_call_output":
            if last.name.startswith("transfer_to_") or last.is_error:
                return Decision(text=_spoken_part(last.output))
            if last.name.startswith("record_"):
                known.update(_recorded_values(items))
                return self._collect_or_reply(context, items, known, tool_names)
            if last.name in self._agent_tool_names(context.agent):
                return Decision(text=last.output)  # a work tool's result is the answer

        note = (
            _text(last)
            if last is not None and last.type == "message" and last.role == "system"
            else ""
        )
        if note.startswith(RESUME_SPOKEN_MARKER):
            return self._collect_or_reply(context, items, known, set(), ask_only=True)
        if note.startswith(RESUME_NOTE_MARKER):
            welcome = "Welcome back. Let's pick up where we left off."
            follow_up = self._collect_or_reply(context, items, known, set(), ask_only=True)
            return Decision(text=f"{welcome} {follow_up.text}".strip())
        if note.startswith(OPENING_NOTE_MARKER):
            return Decision(text=f"Hello, you're through to {self._workflow.name}. How can I help?")

        caller_turn = last is not None and last.type == "message" and last.role == "user"
        if caller_turn and not note.startswith(HANDOFF_NOTE_MARKER):
            route = self._matching_route(context.agent, _text(last), tool_names)
            if route is not None:
                return Decision(tool=f"transfer_to_{route}", arguments={})
            tool = self._matching_tool(context.agent, _text(last), tool_names)
            if tool is not None:
                arguments = self._tool_arguments(context.agent, tool, known, _text(last))
                return Decision(tool=tool, arguments=arguments)
        return self._collect_or_reply(context, items, known, tool_names)

    def _collect_or_reply(
        self,
        context: CallContext,
        items: list[Any],
        known: dict[str, str],
        tool_names: set[str],
        *,
        ask_only: bool = False,
    ) -> Decision:
        agent = self._workflow.agent(context.agent)
        caller_messages = [
            _text(item)[:MAX_SCANNED_CHARS]
            for item in items
            if item.type == "message" and item.role == "user"
        ]
        last_agent_line = next(
            (
                _text(item)
                for item in reversed(items)
                if item.type == "message" and item.role == "assistant"
            ),
            "",
        )
        last_is_caller = bool(items) and items[-1].type == "message" and items[-1].role == "user"
        for field_name in agent.collects:
            if field_name in known:
                continue
            spec = self._workflow.field(field_name)
            tool = f"record_{field_name}"
            if not ask_only and tool in tool_names:
                if spec.regex is not None and spec.pattern is not None:
                    finder = self._finders.setdefault(field_name, value_finder(spec.pattern))
                    for utterance in reversed(caller_messages):
                        found = _search_value(finder, spec.regex, utterance)
                        if found:
                            return Decision(tool=tool, arguments={field_name: found})
                if (
                    spec.ask
                    and last_is_caller
                    and last_agent_line.endswith(spec.ask)
                    and caller_messages
                ):
                    return Decision(tool=tool, arguments={field_name: caller_messages[-1].strip()})
            return Decision(
                text=spec.ask or f"Could you tell me your {field_name.replace('_', ' ')}?"
            )
        if ask_only:
            return Decision(text="")
        reply = self._workflow.config.offline.agent(context.agent).reply
        if reply:
            return Decision(text=fill_template(reply, known))
        return Decision(text="I can help you with that. What else would you like to know?")

    def _matching_route(self, agent_name: str, utterance: str, tool_names: set[str]) -> str | None:
        lowered = utterance[:MAX_SCANNED_CHARS].lower()
        best: tuple[int, int, str] | None = None
        examples = self._workflow.config.offline.agent(agent_name).examples
        for order, route in enumerate(self._workflow.agent(agent_name).handoffs):
            if route.tool_name not in tool_names:
                continue
            positions = [lowered.find(example.lower()) for example in examples.get(route.to, ())]
            hits = [position for position in positions if position >= 0]
            if hits and (best is None or (min(hits), order) < best[:2]):
                best = (min(hits), order, route.to)
        return best[2] if best else None

    def _agent_tool_names(self, agent_name: str) -> dict[str, str]:
        """The agent's work tools: tool name → its ``tools`` reference."""
        names: dict[str, str] = {}
        agent = self._workflow.agent(agent_name)
        for reference in agent.tools:
            names[reference.rpartition(":")[2]] = reference
        if agent.transfer is not None:
            names[TRANSFER_TOOL] = TRANSFER_TOOL
        return names

    def _matching_tool(self, agent_name: str, utterance: str, tool_names: set[str]) -> str | None:
        """Rule 4b: the caller's words contain an ``[offline.tools]`` example of a work tool
        (earliest match wins; ties go to the tool listed first)."""
        lowered = utterance[:MAX_SCANNED_CHARS].lower()
        best: tuple[int, int, str] | None = None
        for order, name in enumerate(self._agent_tool_names(agent_name)):
            if name not in tool_names:
                continue
            examples = self._workflow.config.offline.tools.get(name, ())
            hits = [p for p in (lowered.find(e.lower()) for e in examples) if p >= 0]
            if hits and (best is None or (min(hits), order) < best[:2]):
                best = (min(hits), order, name)
        return best[2] if best else None

    def _tool_arguments(
        self, agent_name: str, tool: str, known: dict[str, str], utterance: str
    ) -> dict[str, str]:
        """A Python tool's arguments named like caller-data fields: the known value, else a
        value matching the field's ``pattern`` in the caller's words."""
        reference = self._agent_tool_names(agent_name)[tool]
        if ":" not in reference:
            return {}
        from frontdesk.agents.tools import argument_names, python_tool

        arguments: dict[str, str] = {}
        for name in argument_names(python_tool(reference)):
            spec = self._workflow.config.caller_data.get(name)
            if name in known:
                arguments[name] = known[name]
            elif spec is not None and spec.regex is not None and spec.pattern is not None:
                finder = self._finders.setdefault(name, value_finder(spec.pattern))
                found = _search_value(finder, spec.regex, utterance[:MAX_SCANNED_CHARS])
                if found:
                    arguments[name] = found
        return arguments

    def _call_context(self, system: list[Any]) -> CallContext | None:
        for message in reversed(system):
            context = read_call_context(_text(message))
            if context is not None:
                return context
        return None

    def _summary(self, items: list[Any]) -> str:
        said = [
            _text(item)[:200] for item in items if item.type == "message" and item.role == "user"
        ]
        if not said:
            return SUMMARY_PREFIX + "the caller has not said anything yet."
        quoted = "; ".join(f'"{text}"' for text in said[-3:])
        return f"{SUMMARY_PREFIX}the caller said {quoted}."


def _forced_tool(tool_choice: object) -> str | None:
    """The function a ``tool_choice`` forces (``{"type": "function", "function": {"name": …}}``)."""
    if isinstance(tool_choice, dict) and tool_choice.get("type") == "function":
        function = tool_choice.get("function")
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            return function["name"]
    return None


def value_finder(pattern: str) -> Pattern:
    """``pattern`` as a case-insensitive RE2 search (whole tokens are checked by the caller)."""
    return compile_pattern(pattern, ignore_case=True)


def _is_token_char(text: str, index: int) -> bool:
    if index < 0 or index >= len(text):
        return False
    char = text[index]
    return char == "-" or char == "_" or char.isalnum()


def _search_value(finder: Pattern, exact: Pattern, utterance: str) -> str | None:
    """The first whole token of ``utterance`` that is a valid value, in the case the pattern
    wants (no '48213' inside 'AC-48213'): a match anchored at each token start, in RE2."""
    for start in range(len(utterance)):
        if _is_token_char(utterance, start - 1):
            continue
        match = finder.match(utterance, start)
        if match is None or match.end() == start or _is_token_char(utterance, match.end()):
            continue
        text = match.group(0)
        for candidate in (text, text.upper()):
            if exact.fullmatch(candidate):
                return candidate
    return None


def _recorded_values(items: list[Any]) -> dict[str, str]:
    """Field values recorded by record_ calls in view (their outputs say 'Recorded x = v.')."""
    values: dict[str, str] = {}
    calls = {item.call_id: item for item in items if item.type == "function_call"}
    for item in items:
        if (
            item.type == "function_call_output"
            and item.name.startswith("record_")
            and not item.is_error
        ):
            call = calls.get(item.call_id)
            if call is None:
                continue
            field_name = item.name.removeprefix("record_")
            try:
                arguments = json.loads(call.arguments or "{}")
                value = arguments.get(field_name, arguments.get("value"))
            except (ValueError, AttributeError):
                continue
            if isinstance(value, str):
                values[field_name] = value
    return values


def _spoken_part(output: str) -> str:
    """What the caller should hear from a tool's message to the model."""
    marker = "tell them: "
    if marker in output:
        return output.split(marker, 1)[1]
    return output.replace("Ask again: ", "")


class OfflineBrainStream(llm.LLMStream):
    """Streams one :class:`Decision` as LiveKit chat chunks."""

    def __init__(
        self,
        brain: OfflineBrain,
        *,
        chat_ctx: ChatContext,
        tools: list[llm.Tool],
        conn_options: APIConnectOptions,
        decision: Decision,
    ) -> None:
        super().__init__(brain, chat_ctx=chat_ctx, tools=tools, conn_options=conn_options)
        self._decision = decision

    async def _run(self) -> None:
        request_id = f"offline-{next(_call_ids)}"
        if self._decision.tool is not None:
            call = FunctionToolCall(
                name=self._decision.tool,
                arguments=json.dumps(self._decision.arguments or {}),
                call_id=f"call_{request_id}",
            )
            self._event_ch.send_nowait(
                ChatChunk(id=request_id, delta=ChoiceDelta(role="assistant", tool_calls=[call]))
            )
            return
        self._event_ch.send_nowait(
            ChatChunk(
                id=request_id, delta=ChoiceDelta(role="assistant", content=self._decision.text)
            )
        )


def make_offline_llm(workflow: Workflow) -> OfflineBrain:
    """The ``offline`` provider profile's LLM."""
    return OfflineBrain(workflow=workflow)
