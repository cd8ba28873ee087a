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
   to the route listed first; only routes offered now count: a guarded route's tool is absent
   until its ``requires``/``if`` hold; ``examples.end_call`` → the agent's ``end_call`` tool); else
   an ``[offline.tools]`` example of one of its work tools → call that tool (a Python tool's
   arguments named like known caller-data fields are filled; an agent's ``transfer_to_human``
   counts as one of its work tools).
   A work tool's result is then said as is.
5. A collected field is missing: if the caller's answer (what they said since the agent last
   asked one of its fields; before it asked anything, the utterance that brought them here)
   holds a value of the field's type (digits or number words, a spoken date, a choice or
   synonym, yes/no — :func:`~frontdesk.workflows.definition.field_types.find_value`) or
   matching its ``pattern`` → call ``record_<field>`` (fields in any order of ``collects``); else
   if it answers the field's question just asked → record the answer as said (the tool
   normalises or refuses it); otherwise say the field's ``ask``. Older messages are never read:
   a refused card number is not taken for the security code asked next.
   A caller's correction ("actually make it 5", "no, it's 5") of a field already recorded —
   the field it names, else the one recorded last — records the new value first; a
   ``confirm = true`` field's read-back is said, and "yes" records the value read back.
6. Otherwise say the agent's ``reply`` (``{field}`` filled from caller data), or a generic line.

``reply`` and ``examples`` are the brain's fixtures: ``[offline.agents.<name>]`` in config.toml,
read by nothing else.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping
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

from frontdesk.agents.fields import READ_BACK_MARKER
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
from frontdesk.workflows.definition import CallerField, Workflow
from frontdesk.workflows.definition.field_types import (
    FieldValue,
    FieldValueError,
    find_boolean,
    find_candidate,
    find_value,
    label_of,
)
from frontdesk.workflows.definition.flow_checks import END_CALL_TOOL
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
    arguments: dict[str, FieldValue] | None = None


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
            if last.name.startswith("record_") and last.output.startswith(READ_BACK_MARKER):
                return Decision(text=_read_back_question(last.output))
            if last.name.startswith("record_"):
                known.update(self._recorded_values(items))
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
        if caller_turn:
            confirmed = self._confirmation(context.agent, items, tool_names)
            if confirmed is not None:
                return confirmed
        if caller_turn and not note.startswith(HANDOFF_NOTE_MARKER):
            route = self._matching_route(context.agent, _text(last), tool_names)
            if route == END_CALL_TOOL:
                return Decision(tool=END_CALL_TOOL, arguments={})
            if route is not None:
                return Decision(tool=f"transfer_to_{route}", arguments={})
            tool = self._matching_tool(context.agent, _text(last), tool_names)
            if tool is not None:
                arguments = self._tool_arguments(context.agent, tool, known, _text(last))
                return Decision(tool=tool, arguments=dict(arguments))
            correction = self._correction(context.agent, items, known, tool_names, _text(last))
            if correction is not None:
                return correction
        return self._collect_or_reply(context, items, known, tool_names)

    def _collect_or_reply(
        self,
        context: CallContext,
        items: list[Any],
        known: dict[str, FieldValue],
        tool_names: set[str],
        *,
        ask_only: bool = False,
    ) -> Decision:
        agent = self._workflow.agent(context.agent)
        caller_messages, asked = self._answer_window(context.agent, items, known)
        last_agent_line = next(
            (
                _text(item)
                for item in reversed(items)
                if item.type == "message" and item.role == "assistant"
            ),
            "",
        )
        last_is_caller = bool(items) and items[-1].type == "message" and items[-1].role == "user"
        missing = [name for name in agent.collects if name not in known]
        if not ask_only:
            # the field asked first; the others (in any order) only once the answer gave the
            # field asked — a refused answer is trusted for nothing
            searched = [asked] if asked in missing else missing
            for field_name in searched:
                if f"record_{field_name}" not in tool_names:
                    continue
                found = self._found(field_name, self._workflow.field(field_name), caller_messages)
                if found is not None:
                    return Decision(tool=f"record_{field_name}", arguments={field_name: found})
        for field_name in missing:
            spec = self._workflow.field(field_name)
            tool = f"record_{field_name}"
            if (
                not ask_only
                and tool in tool_names
                and last_is_caller
                and last_agent_line.endswith(_ask_of(field_name, spec, known))
                and caller_messages
            ):
                answer = caller_messages[-1].strip()
                # a typed answer: what in it looks like a value (the 13 of "we are 13"), so the
                # refusal can say what is wrong with it
                candidate = None if spec.type == "string" else find_candidate(spec, answer)
                said = candidate if isinstance(candidate, str | int | float | bool) else answer
                return Decision(tool=tool, arguments={field_name: said})
            return Decision(text=_ask_of(field_name, spec, known))
        if ask_only:
            return Decision(text="")
        reply = self._workflow.config.offline.agent(context.agent).reply
        if reply:
            return Decision(text=fill_template(reply, known))
        return Decision(text="I can help you with that. What else would you like to know?")

    def _found(
        self, field_name: str, spec: CallerField, utterances: list[str]
    ) -> FieldValue | None:
        """A value of the field in ``utterances`` (newest first): by its pattern for text
        fields, by its type otherwise."""
        for utterance in reversed(utterances):
            if spec.type == "string" or spec.regex is not None:
                if spec.regex is None or spec.pattern is None:
                    return None
                finder = self._finders.setdefault(field_name, value_finder(spec.pattern))
                found: FieldValue | None = _search_value(finder, spec.regex, utterance)
            else:
                found = find_value(spec, utterance, label=label_of(field_name))
            if found is not None and found != "":
                return found
        return None

    def _answer_window(
        self, agent_name: str, items: list[Any], known: dict[str, FieldValue]
    ) -> tuple[list[str], str | None]:
        """What the caller said since this agent last asked one of its fields, and that field;
        before it asked anything, the latest thing they said (the utterance that brought them
        here) and None."""
        agent = self._workflow.agent(agent_name)
        asks = [(name, _ask_of(name, self._workflow.field(name), known)) for name in agent.collects]
        boundary: int | None = None
        asked: str | None = None
        for index, item in enumerate(items):
            if item.type == "message" and item.role == "assistant":
                line = _text(item).rstrip()
                for name, ask in asks:
                    if ask and line.endswith(ask):
                        boundary, asked = index, name
        said = [
            (index, _text(item)[:MAX_SCANNED_CHARS])
            for index, item in enumerate(items)
            if item.type == "message" and item.role == "user"
        ]
        if boundary is not None:
            return [text for index, text in said if index > boundary], asked
        return ([said[-1][1]] if said else []), None

    def _recorded_values(self, items: list[Any]) -> dict[str, FieldValue]:
        """Field values recorded by record_ calls in view, as the tool stored them."""
        values: dict[str, FieldValue] = {}
        for field_name, raw in _recorded_arguments(items):
            spec = self._workflow.config.caller_data.get(field_name)
            if spec is None:
                continue
            try:
                values[field_name] = (
                    str(raw).strip()
                    if spec.type == "string"
                    else spec.normalise(raw, label=label_of(field_name))
                )
            except FieldValueError:
                continue
        return values

    def _correction(
        self,
        agent_name: str,
        items: list[Any],
        known: dict[str, FieldValue],
        tool_names: set[str],
        utterance: str,
    ) -> Decision | None:
        """ "actually make it 5": a new value for a field already recorded — the one the caller
        names ("the coverage"), else the one recorded last."""
        if not _CORRECTION.search(utterance[:MAX_SCANNED_CHARS]):
            return None
        collected = [
            name
            for name in self._workflow.agent(agent_name).collects
            if name in known and f"record_{name}" in tool_names
        ]
        if not collected:
            return None
        lowered = utterance.lower()
        named = [
            name
            for name in collected
            if label_of(name) in lowered
            or any(len(word) >= 4 and word in lowered for word in label_of(name).split())
        ]
        recorded = [name for name, _ in _recorded_arguments(items) if name in collected]
        # the field named; else the one recorded last that the new value fits
        candidates = named[:1] or list(dict.fromkeys(reversed(recorded)))
        for target in candidates:
            found = self._found(target, self._workflow.field(target), [utterance])
            if found is not None and found != known.get(target):
                return Decision(tool=f"record_{target}", arguments={target: found})
        return None

    def _confirmation(
        self, agent_name: str, items: list[Any], tool_names: set[str]
    ) -> Decision | None:
        """The caller's answer to a read-back: "yes" records the value read back; "no" with a
        new value records that (read back in turn); a bare "no" asks again."""
        pending = _pending_read_back(items)
        if pending is None:
            return None
        field_name, value = pending
        tool = f"record_{field_name}"
        if tool not in tool_names or field_name not in self._workflow.agent(agent_name).collects:
            return None
        answer = _text(items[-1])[:MAX_SCANNED_CHARS]
        spec = self._workflow.field(field_name)
        agreed = find_boolean(answer)
        if agreed:
            return Decision(tool=tool, arguments={field_name: value})
        other = self._found(field_name, spec, [answer])
        if other is not None and other != value:
            return Decision(tool=tool, arguments={field_name: other})
        if agreed is False:
            return Decision(text=f"Sorry about that. {_ask_of(field_name, spec)}")
        return None

    def _matching_route(self, agent_name: str, utterance: str, tool_names: set[str]) -> str | None:
        lowered = utterance[:MAX_SCANNED_CHARS].lower()
        best: tuple[int, int, str] | None = None
        examples = self._workflow.config.offline.agent(agent_name).examples
        # the routes offered now (a guarded route is absent until it is open), then end_call
        targets = [
            (route.to, route.tool_name) for route in self._workflow.agent(agent_name).handoffs
        ]
        targets.append((END_CALL_TOOL, END_CALL_TOOL))
        for order, (to, tool) in enumerate(targets):
            if tool not in tool_names:
                continue
            positions = [lowered.find(example.lower()) for example in examples.get(to, ())]
            hits = [position for position in positions if position >= 0]
            if hits and (best is None or (min(hits), order) < best[:2]):
                best = (min(hits), order, to)
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
        self, agent_name: str, tool: str, known: dict[str, FieldValue], utterance: str
    ) -> dict[str, FieldValue]:
        """A Python tool's arguments named like caller-data fields: the known value, else a
        value matching the field's ``pattern`` in the caller's words."""
        reference = self._agent_tool_names(agent_name)[tool]
        if ":" not in reference:
            return {}
        from frontdesk.agents.tools import argument_names, python_tool

        arguments: dict[str, FieldValue] = {}
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


_CORRECTION = re.compile(
    r"^\W*(?:actually|no\b|nope|sorry|wait|oops|correction|i meant)|\b(?:actually|instead|i meant|"
    r"make (?:it|that|the)|change (?:it|that|the)|correct(?:ion)?)\b",
    re.IGNORECASE,
)
"""Words that make an utterance a correction of something already recorded."""


def _ask_of(
    field_name: str, spec: CallerField, known: Mapping[str, FieldValue] | None = None
) -> str:
    """The field's question as the agent asks it (``{field}``s filled from ``known``)."""
    if spec.ask:
        return fill_template(spec.ask, known or {})
    return f"Could you tell me your {field_name.replace('_', ' ')}?"


def _recorded_arguments(items: list[Any], *, read_back: bool = False) -> list[tuple[str, Any]]:
    """(field, argument) of each record_ call in view that the tool accepted, oldest first;
    ``read_back``: the calls a ``confirm = true`` field held for a read-back instead."""
    found: list[tuple[str, Any]] = []
    calls = {item.call_id: item for item in items if item.type == "function_call"}
    for item in items:
        if (
            item.type != "function_call_output"
            or not item.name.startswith("record_")
            or item.is_error
            or item.output.startswith(READ_BACK_MARKER) != read_back
        ):
            continue
        call = calls.get(item.call_id)
        if call is None:
            continue
        field_name = item.name.removeprefix("record_")
        try:
            arguments = json.loads(call.arguments or "{}")
            value = arguments.get(field_name, arguments.get("value"))
        except (ValueError, AttributeError):
            continue
        if value is not None:
            found.append((field_name, value))
    return found


def _pending_read_back(items: list[Any]) -> tuple[str, Any] | None:
    """The value read back to the caller just before their answer, if the agent's last step
    was a read-back."""
    outputs = [item for item in items if item.type == "function_call_output"]
    if not outputs or not outputs[-1].output.startswith(READ_BACK_MARKER):
        return None
    held = _recorded_arguments(items, read_back=True)
    return held[-1] if held else None


def _read_back_question(output: str) -> str:
    """The question a read-back tool result asks the agent to say."""
    match = re.search(r'ask if it is right: "([^"]*)"', output)
    return match.group(1) if match else output


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
