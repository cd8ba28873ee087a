"""What changed between two workflow configs, and which changes break live or resumable calls.

``frontdesk validate --diff OLD NEW`` prints :func:`diff_workflows`. A change *breaks* sessions
when a call stored under the old config would lose something on resume under the new one: its
agent is gone (the call restarts at the start agent), a field it recorded is gone or its type,
pattern or sensitivity changed (the stored value is dropped or no longer readable), or a tool it
may have stored a result of is gone. Everything else (new agents, new routes, new wording) only
changes what new turns do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from frontdesk.workflows.definition.loader import Workflow

Kind = Literal["added", "removed", "changed"]
Area = Literal["workflow", "agent", "route", "field", "tool"]

FIELD_KEYS_THAT_BREAK = ("type", "pattern", "sensitive", "verify_with", "values")
"""Keys of ``[caller_data.<f>]`` whose change makes a stored value unusable on resume."""


@dataclass(frozen=True)
class Change:
    """One difference between the old and the new config."""

    kind: Kind
    area: Area
    path: str
    """Key path in the config, e.g. ``agents.sales``, ``caller_data.account_number``."""
    detail: str = ""
    breaks: str | None = None
    """Why live or resumable sessions are affected (None: they are not)."""


def _dump(value: Any) -> Any:
    return value.model_dump(mode="json") if hasattr(value, "model_dump") else value


def _changed_keys(old: Any, new: Any) -> list[str]:
    before, after = _dump(old), _dump(new)
    keys = dict.fromkeys([*before, *after])
    return [key for key in keys if before.get(key) != after.get(key)]


def _routes(workflow: Workflow, agent: str) -> dict[str, dict[str, Any]]:
    return {route.to: _dump(route) for route in workflow.agent(agent).handoffs}


def diff_workflows(old: Workflow, new: Workflow) -> list[Change]:
    """Every change from ``old`` to ``new``: agents, routes, caller-data fields, tools."""
    changes: list[Change] = []
    if old.start != new.start:
        changes.append(
            Change("changed", "workflow", "workflow.start", f"{old.start} -> {new.start}")
        )
    old_agents, new_agents = old.config.agents, new.config.agents
    for name in sorted(old_agents.keys() - new_agents.keys()):
        changes.append(
            Change(
                "removed",
                "agent",
                f"agents.{name}",
                breaks=f"calls on {name} restart at {new.start!r} on resume (caller data kept, "
                "history dropped)",
            )
        )
    for name in sorted(new_agents.keys() - old_agents.keys()):
        changes.append(Change("added", "agent", f"agents.{name}"))
    for name in sorted(old_agents.keys() & new_agents.keys()):
        keys = [
            key for key in _changed_keys(old_agents[name], new_agents[name]) if key != "handoffs"
        ]
        if keys:
            changes.append(Change("changed", "agent", f"agents.{name}", ", ".join(keys)))
        before, after = _routes(old, name), _routes(new, name)
        for to in sorted(before.keys() - after.keys()):
            changes.append(Change("removed", "route", f"agents.{name}.handoffs -> {to}"))
        for to in sorted(after.keys() - before.keys()):
            changes.append(Change("added", "route", f"agents.{name}.handoffs -> {to}"))
        for to in sorted(before.keys() & after.keys()):
            keys = _changed_keys(before[to], after[to])
            if keys:
                changes.append(
                    Change("changed", "route", f"agents.{name}.handoffs -> {to}", ", ".join(keys))
                )
    old_fields, new_fields = old.config.caller_data, new.config.caller_data
    for name in sorted(old_fields.keys() - new_fields.keys()):
        changes.append(
            Change(
                "removed",
                "field",
                f"caller_data.{name}",
                breaks=f"a stored {name} is dropped on resume (the caller is asked again if an "
                "agent still needs it)",
            )
        )
    for name in sorted(new_fields.keys() - old_fields.keys()):
        changes.append(Change("added", "field", f"caller_data.{name}"))
    for name in sorted(old_fields.keys() & new_fields.keys()):
        keys = _changed_keys(old_fields[name], new_fields[name])
        if not keys:
            continue
        breaking = [key for key in keys if key in FIELD_KEYS_THAT_BREAK]
        changes.append(
            Change(
                "changed",
                "field",
                f"caller_data.{name}",
                ", ".join(keys),
                breaks=(
                    f"{' and '.join(breaking)} changed: a stored {name} that no longer fits is "
                    "dropped on resume"
                )
                if breaking
                else None,
            )
        )
    old_tools, new_tools = old.config.tools, new.config.tools
    for name in sorted(old_tools.keys() - new_tools.keys()):
        changes.append(
            Change(
                "removed",
                "tool",
                f"tools.{name}",
                breaks="live calls keep it (they run the version they started with); resumed "
                "calls can no longer call it",
            )
        )
    for name in sorted(new_tools.keys() - old_tools.keys()):
        changes.append(Change("added", "tool", f"tools.{name}"))
    for name in sorted(old_tools.keys() & new_tools.keys()):
        keys = _changed_keys(old_tools[name], new_tools[name])
        if keys:
            changes.append(Change("changed", "tool", f"tools.{name}", ", ".join(keys)))
    order = {"workflow": 0, "agent": 1, "route": 2, "field": 3, "tool": 4}
    return sorted(changes, key=lambda change: (order[change.area], change.path))
