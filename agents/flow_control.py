"""What moves a call along by its data: route guards, automatic steps, the end of the call.

- **Guards.** A route with ``requires = [...]`` and/or ``if = "..."`` is *open* only while every
  required field is recorded and the condition is known to be true
  (:mod:`frontdesk.workflows.definition.conditions`). A closed route's ``transfer_to_`` tool is
  not among the agent's tools (so neither a real model nor the offline brain can take it); the
  agent's tool list is brought up to date whenever caller data change.
- **Automatic steps.** ``[agents.X] next = "Y"``: once X's ``collects`` are all recorded the
  call moves to Y by itself (the route X → Y's ``say``, ``context`` and ``clear`` apply when X
  has one), with no model request deciding it; the loop guard counts it like any handoff.
- **The end of the call.** A ``final`` agent says its ``end_call`` line verbatim once its
  ``collects`` are recorded, and the session shuts down, marked ended; an agent with
  ``end_call = { say, when }`` has an ``end_call`` tool the model may use.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from livekit.agents import RunContext, StopResponse, function_tool
from livekit.agents.llm import RawFunctionTool

from frontdesk.agents.userdata import CallerData
from frontdesk.workflows.definition import Route, Workflow
from frontdesk.workflows.definition.conditions import holds
from frontdesk.workflows.definition.flow_checks import END_CALL_TOOL, field_types

logger = logging.getLogger(__name__)


def withheld_fields(data: CallerData) -> frozenset[str]:
    """Fields an unverified resumed caller may not hear (see :mod:`frontdesk.agents.verification`)."""
    gate = data.gate
    if gate is None or getattr(gate, "verified", False):
        return frozenset()
    return frozenset(getattr(gate, "withheld", {}) or {})


def visible_fields(data: CallerData) -> dict[str, Any]:
    """The caller data a template or a guard may use now (withheld values left out)."""
    hidden = withheld_fields(data)
    return {name: value for name, value in data.fields.items() if name not in hidden}


def route_open(workflow: Workflow, route: Route, data: CallerData) -> bool:
    """True while the route may be taken: ``requires`` recorded and ``if`` true."""
    values = visible_fields(data)
    if any(values.get(name) is None for name in route.requires):
        return False
    condition = route.condition
    return condition is None or holds(condition, values, field_types(workflow.config))


def why_closed(workflow: Workflow, route: Route, data: CallerData) -> str:
    """What the model is told when it calls a closed route's tool anyway."""
    values = visible_fields(data)
    missing = [name for name in route.requires if values.get(name) is None]
    if missing:
        return (
            f"Not yet: {route.tool_name} needs {', '.join(missing)} recorded first. Ask the "
            "caller for it and record it."
        )
    return f"Not available: {route.tool_name} applies only when {route.if_}."


def collects_done(workflow: Workflow, agent: str, data: CallerData) -> bool:
    """True once every field the agent collects is recorded."""
    return not data.missing(workflow.agent(agent).collects)


def step_route(workflow: Workflow, agent: str) -> Route | None:
    """The route an automatic step (``next``) takes: the agent's own route to its ``next``
    when it has one (its ``say``, ``context`` and ``clear`` apply), else a plain one."""
    config = workflow.agent(agent)
    if config.next is None:
        return None
    for route in config.handoffs:
        if route.to == config.next:
            return route
    return Route(to=config.next, when="automatic: this agent's caller data are complete")


EndCall = Callable[[CallerData, str], Awaitable[None]]
"""Says the closing line and ends the call (``FlowAgent.end_call``)."""


def make_end_call_tool(agent: str, when: str, end_call: EndCall) -> RawFunctionTool[Any, Any]:
    """The ``end_call`` tool of an agent with ``end_call = { say, when }``."""
    schema = {
        "name": END_CALL_TOOL,
        "description": f"End the call with the closing line. Use when: {when}",
        "parameters": {"type": "object", "properties": {}, "additionalProperties": False},
    }

    async def end(raw_arguments: dict[str, object], context: RunContext[CallerData]) -> Any:
        logger.info("session %s: %s ends the call (end_call)", context.userdata.session_id, agent)
        await end_call(context.userdata, f"{agent}: end_call")
        raise StopResponse()  # the closing line is the last word, verbatim

    return function_tool(end, raw_schema=schema)
