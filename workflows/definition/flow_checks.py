"""Load-time checks of what shapes a flow by its data: templates, route guards, ``next``, ``final``.

Run by :func:`frontdesk.workflows.definition.graph.check_graph` with the other cross-reference
checks, so ``validate`` reports them with the rest, each as ``file:line key.path: message``:

- every ``{field}`` of a template (instructions, spoken lines, a field's ``ask``, the offline
  brain's ``reply``) names a declared caller-data field (``unknown field 'nmae' (did you mean
  'name'?)``);
- a route's ``requires`` and ``clear`` name declared fields, and its ``if`` type-checks against
  the fields' declared ``type`` (``string`` when a field declares none);
- an agent's ``next`` names another agent.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass

from frontdesk.workflows.definition import templates
from frontdesk.workflows.definition.conditions import ConditionError, check_condition
from frontdesk.workflows.definition.schema import CallerField, WorkflowConfig

END_CALL_TOOL = "end_call"
"""The tool an agent with ``end_call = { say, when }`` gets; its offline examples' key."""


@dataclass(frozen=True)
class FlowIssue:
    path: tuple[str | int, ...]
    message: str
    is_error: bool = True


def field_type(spec: CallerField) -> str:
    """A field's declared ``type``; ``string`` for a field that declares none."""
    declared = getattr(spec, "type", None)
    return declared if isinstance(declared, str) and declared else "string"


def field_choices(spec: CallerField) -> tuple[str, ...]:
    """An enum field's choices (a list of names, or a table of name → synonyms)."""
    choices = getattr(spec, "choices", None)
    if isinstance(choices, dict):
        return tuple(str(key) for key in choices)
    if isinstance(choices, list | tuple):
        names: list[str] = []
        for choice in choices:
            if isinstance(choice, str):
                names.append(choice)
            else:  # a structured choice: its name / value attribute
                name = getattr(choice, "name", None) or getattr(choice, "value", None)
                if isinstance(name, str):
                    names.append(name)
        return tuple(names)
    return ()


def field_types(config: WorkflowConfig) -> dict[str, str]:
    return {name: field_type(spec) for name, spec in config.caller_data.items()}


def _templates(config: WorkflowConfig) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """(key path, text) of every template of the config that caller data fill."""
    workflow = config.workflow
    yield ("workflow", "loop_fallback"), workflow.loop_fallback
    for name, spec in config.caller_data.items():
        if spec.ask:
            yield ("caller_data", name, "ask"), spec.ask
    for name, agent in config.agents.items():
        yield ("agents", name, "instructions"), agent.instructions
        for key in ("greeting", "resume"):
            text = getattr(agent, key)
            if text:
                yield ("agents", name, key), text
        if agent.end_call is not None:
            yield ("agents", name, "end_call"), agent.end_call.say
        for index, route in enumerate(agent.handoffs):
            if route.say:
                yield ("agents", name, "handoffs", index, "say"), route.say
    for name, offline in config.offline.agents.items():
        if offline.reply:
            yield ("offline", "agents", name, "reply"), offline.reply


def _unknown(kind: str, name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    hint = (
        f" (did you mean '{close[0]}'?)"
        if close
        else f" (known: {', '.join(sorted(known)) or 'none'})"
    )
    return f"unknown {kind} '{name}'{hint}"


def check_flow(config: WorkflowConfig) -> list[FlowIssue]:
    """Every problem of the config's templates, guards and automatic steps."""
    issues: list[FlowIssue] = []
    fields = list(config.caller_data)
    for path, text in _templates(config):
        issues += [FlowIssue(path, message) for message in templates.check(text, fields)]

    types = field_types(config)
    choices = {name: field_choices(spec) for name, spec in config.caller_data.items()}
    collected = {name for agent in config.agents.values() for name in agent.collects}
    collected |= {tool.store_as for tool in config.tools.values() if tool.store_as}
    agents = list(config.agents)
    for name, agent in config.agents.items():
        for index, route in enumerate(agent.handoffs):
            base: tuple[str | int, ...] = ("agents", name, "handoffs", index)
            for key in ("requires", "clear"):
                for position, field_name in enumerate(getattr(route, key)):
                    if field_name not in config.caller_data:
                        issues.append(
                            FlowIssue(
                                (*base, key, position),
                                _unknown("caller_data field", field_name, fields),
                            )
                        )
                    elif key == "requires" and field_name not in collected:
                        issues.append(
                            FlowIssue(
                                (*base, key, position),
                                f"no agent collects '{field_name}' (and no tool stores it): "
                                "this route is never offered",
                                is_error=False,
                            )
                        )
            if route.if_:
                try:
                    node = route.condition
                except ConditionError as exc:  # the schema refuses these; defensive
                    issues.append(FlowIssue((*base, "if"), f"not a valid condition: {exc}"))
                    continue
                assert node is not None
                issues += [
                    FlowIssue((*base, "if"), message)
                    for message in check_condition(node, types, choices)
                ]
        if agent.final and agent.closing_line is None:
            issues.append(
                FlowIssue(
                    ("agents", name, "final"),
                    "a final agent needs end_call: the line said verbatim before the call "
                    'ends, e.g. end_call = "Thanks for calling. Goodbye!"',
                )
            )
        if agent.final and agent.next is not None:
            issues.append(
                FlowIssue(("agents", name, "next"), "a final agent has no next: choose one")
            )
        if agent.end_call is not None and not agent.final and not agent.end_call_when:
            issues.append(
                FlowIssue(
                    ("agents", name, "end_call"),
                    "a closing line alone needs final = true; to let the model end the call "
                    'here write end_call = { say = "...", when = "..." }',
                )
            )
        if agent.next is not None:
            path = ("agents", name, "next")
            if agent.next == name:
                issues.append(FlowIssue(path, f"agent '{name}' cannot move on to itself"))
            elif agent.next not in config.agents:
                issues.append(FlowIssue(path, _unknown("agent", agent.next, agents)))
    return issues
