"""Graph checks over a workflow's agents and routes, and its drawing as Mermaid or DOT.

The schema (:mod:`frontdesk.workflows.definition.schema`) checks each table alone; this module checks what
only the whole graph shows: the start agent exists, every route leads to an agent, every agent
can be reached, ``collects`` names declared fields, nobody hands off to themselves. Agents with no
way back to the start are only warned about: a terminal agent is a legitimate design.
"""

from __future__ import annotations

import difflib
from collections import deque
from dataclasses import dataclass
from typing import Literal

from frontdesk.workflows.definition.schema import WorkflowConfig


@dataclass(frozen=True)
class GraphIssue:
    """One finding: where (key path), what, and whether it stops the workflow from loading."""

    path: tuple[str | int, ...]
    message: str
    is_error: bool = True


def _unknown(kind: str, name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(sorted(known))})"
    return f"unknown {kind} '{name}'{hint}"


def reachable_from(config: WorkflowConfig, start: str) -> set[str]:
    """Agents a call can reach from ``start`` by following routes."""
    seen = {start}
    queue = deque([start])
    while queue:
        agent = config.agents.get(queue.popleft())
        for route in agent.handoffs if agent else ():
            if route.to in config.agents and route.to not in seen:
                seen.add(route.to)
                queue.append(route.to)
    return seen


def check_graph(config: WorkflowConfig) -> list[GraphIssue]:
    """Every cross-reference problem of ``config``, errors and warnings, in file order."""
    issues: list[GraphIssue] = []
    agent_names = list(config.agents)
    field_names = list(config.caller_data)
    start = config.workflow.start
    if start not in config.agents:
        issues.append(GraphIssue(("workflow", "start"), _unknown("agent", start, agent_names)))

    for name, agent in config.agents.items():
        seen_targets: set[str] = set()
        for index, route in enumerate(agent.handoffs):
            path: tuple[str | int, ...] = ("agents", name, "handoffs", index, "to")
            if route.to == name:
                issues.append(GraphIssue(path, f"agent '{name}' cannot hand off to itself"))
            elif route.to not in config.agents:
                issues.append(GraphIssue(path, _unknown("agent", route.to, agent_names)))
            elif route.to in seen_targets:
                issues.append(GraphIssue(path, f"a second route from '{name}' to '{route.to}'"))
            seen_targets.add(route.to)
        for index, field_name in enumerate(agent.collects):
            if field_name not in config.caller_data:
                issues.append(
                    GraphIssue(
                        ("agents", name, "collects", index),
                        _unknown("caller_data field", field_name, field_names),
                    )
                )
        if agent.collects and len(set(agent.collects)) != len(agent.collects):
            issues.append(GraphIssue(("agents", name, "collects"), "a field is listed twice"))

    for name, offline in config.offline.agents.items():
        if name not in config.agents:
            issues.append(
                GraphIssue(("offline", "agents", name), _unknown("agent", name, agent_names))
            )
            continue
        targets = [route.to for route in config.agents[name].handoffs]
        for to in offline.examples:
            if to not in targets:
                issues.append(
                    GraphIssue(
                        ("offline", "agents", name, "examples", to),
                        f"agent '{name}' has no route to '{to}'"
                        + (f" (its routes: {', '.join(targets)})" if targets else ""),
                    )
                )
    for field_name, spec in config.caller_data.items():
        for index, other in enumerate(spec.verify_with):
            path = ("caller_data", field_name, "verify_with", index)
            if other not in config.caller_data:
                issues.append(GraphIssue(path, _unknown("caller_data field", other, field_names)))
        if spec.verify_with and not spec.sensitive:
            issues.append(
                GraphIssue(
                    ("caller_data", field_name, "verify_with"),
                    "verify_with only applies to a field marked sensitive = true",
                )
            )
    resume = config.state.resume
    if resume.lockout >= config.state.resume_window > 0:
        issues.append(
            GraphIssue(
                ("state", "resume", "lockout"),
                "the lock-out is not shorter than state.resume_window: a locked-out caller's "
                "genuine owner could never resume afterwards",
                is_error=False,
            )
        )

    if start in config.agents:
        reachable = reachable_from(config, start)
        for name in config.agents:
            if name not in reachable:
                issues.append(
                    GraphIssue(("agents", name), f"agent '{name}' cannot be reached from '{start}'")
                )
            elif name != start and start not in reachable_from(config, name):
                issues.append(
                    GraphIssue(
                        ("agents", name),
                        f"agent '{name}' has no way back to '{start}' (calls that reach it stay there)",
                        is_error=False,
                    )
                )
    from frontdesk.workflows.definition.tools import check_tools

    tool_issues = check_tools(
        dict(config.tools),
        {name: agent.tools for name, agent in config.agents.items()},
        field_names,
    )
    issues += [GraphIssue(issue.path, issue.message) for issue in tool_issues]
    for name, agent in config.agents.items():
        if agent.transfer is not None and any(route.to == "human" for route in agent.handoffs):
            issues.append(
                GraphIssue(
                    ("agents", name, "transfer"),
                    "a route to an agent named 'human' and a transfer to a person would both be "
                    "the tool transfer_to_human: rename the agent",
                )
            )
    return issues


def render_graph(config: WorkflowConfig, fmt: Literal["mermaid", "dot"] = "mermaid") -> str:
    """The workflow's agents and routes as a Mermaid flowchart or a Graphviz DOT digraph."""
    start = config.workflow.start
    if fmt == "dot":
        lines = [f'digraph "{config.workflow.name}" {{', "  rankdir=LR;"]
        for name, agent in config.agents.items():
            shape = "doublecircle" if name == start else "box"
            label = name + (f"\\ncollects: {', '.join(agent.collects)}" if agent.collects else "")
            lines.append(f'  "{name}" [shape={shape}, label="{label}"];')
        for name, agent in config.agents.items():
            for route in agent.handoffs:
                lines.append(f'  "{name}" -> "{route.to}" [label="{route.context}"];')
        lines.append("}")
        return "\n".join(lines)
    # Mermaid ids: every agent as ``agent_<name>`` (so ``end``, ``graph``, ``o``/``x`` (edge
    # shapes) and any other name Mermaid reads as a keyword are safe), labels always quoted.
    lines = ["flowchart LR", f"  caller((caller)) --> {_mermaid_id(start)}"]
    for name, agent in config.agents.items():
        label = name + (f"<br/>collects: {', '.join(agent.collects)}" if agent.collects else "")
        lines.append(f'  {_mermaid_id(name)}["{_mermaid_text(label)}"]')
    for name, agent in config.agents.items():
        for route in agent.handoffs:
            lines.append(
                f'  {_mermaid_id(name)} -->|"{_mermaid_text(route.context)}"| {_mermaid_id(route.to)}'
            )
    return "\n".join(lines)


def _mermaid_id(name: str) -> str:
    return f"agent_{name}"


def _mermaid_text(text: str) -> str:
    """Text inside a quoted Mermaid label (``"`` is Mermaid's ``#quot;`` entity)."""
    return text.replace('"', "#quot;")
