"""Everything the ``frontdesk`` command prints with rich: turns, sessions and provider tables."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping, Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from frontdesk.errors import WorkerSetupError
from frontdesk.state.crypto import mask
from frontdesk.state.models import SessionState, SessionSummary
from frontdesk.workflows.cli.display import masked, shown
from frontdesk.workflows.definition import ComponentOverride, Workflow
from frontdesk.workflows.definition.diff import Change
from frontdesk.workflows.providers import (
    OVERRIDABLE_SLOTS,
    PROFILE_ENV,
    EnvRequirement,
    active_profile_name,
    agent_overrides,
    describe_component,
    required_env,
)
from frontdesk.workflows.runtime import Transcript, TurnResult

PIPE_WIDTH = 4096
"""Line width when writing to a pipe or a file: lines are never wrapped mid-sentence there."""


def make_console(*, stderr: bool = False) -> Console:
    """A console that wraps and colours only on a terminal.

    Written to a pipe or a file (CI logs, ``| tee``, ``> out.txt``), rich would otherwise wrap
    every line at 80 columns; there it writes whole lines, and no colour codes (rich adds none
    when the stream is not a terminal, unless ``FORCE_COLOR`` asks for them).
    """
    stream = sys.stderr if stderr else sys.stdout
    terminal = stream.isatty()
    return Console(
        stderr=stderr,
        highlight=False,
        soft_wrap=not terminal,
        width=None if terminal else PIPE_WIDTH,
    )


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``1 agent``, ``2 agents``, ``0 routes``."""
    return f"{count} {singular if count == 1 else plural_form or singular + 's'}"


console = make_console()
err_console = make_console(stderr=True)


# --------------------------------------------------------------------------- calls


def print_lines(
    lines: Sequence[tuple[str | None, str]], handoffs: Sequence[Mapping[str, str | None]]
) -> None:
    """Each spoken line with its agent, and a handoff marker where the speaker changes."""
    pending = list(handoffs)
    for agent, text in lines:
        while pending and pending[0]["to"] == agent:
            handoff = pending.pop(0)
            console.print(f"  [dim]↪ handoff {handoff['from']} → {handoff['to']}[/]")
        console.print(f"[bold]{agent}[/]: {shown(text)}")
    for handoff in pending:
        console.print(f"  [dim]↪ handoff {handoff['from']} → {handoff['to']}[/]")


def print_turn(result: TurnResult) -> None:
    if result.event == "disconnect":
        console.print("[magenta]✂ the caller drops[/]")
    elif result.event == "reconnect":
        console.print("[magenta]☎ the same caller calls back[/]")
    else:
        console.print(f"[cyan]caller[/]: {shown(result.user)}")
    print_lines(result.lines, result.handoffs)
    for failure in result.failures:
        console.print(f"  [red]✗ turn {result.turn}: {shown(failure)}[/]")
    for skipped in result.skipped:
        console.print(f"  [yellow]∅ turn {result.turn}: {shown(skipped)}[/]")


# --------------------------------------------------------------------------- sessions


def print_session_list(summaries: Sequence[SessionSummary]) -> None:
    table = Table("session", "workflow", "caller hash", "agent", "turns", "age")
    table.columns[0].no_wrap = True
    for summary in summaries:
        table.add_row(
            summary.session_id,
            summary.workflow,
            (summary.caller_hash or "-")[:12],
            summary.agent,
            str(summary.turns),
            f"{time.time() - summary.updated_at:.0f}s",
        )
    console.print(table)


def session_list_json(summaries: Sequence[SessionSummary]) -> str:
    """``sessions list --json``: one JSON array of the summaries."""
    return json.dumps([summary.model_dump(mode="json") for summary in summaries], indent=2)


def session_json(
    state: SessionState, transcript: Transcript, *, sensitive: frozenset[str] = frozenset()
) -> str:
    """``sessions show --json``: what ``sessions show`` prints, as one JSON object
    (``sensitive`` fields masked wherever their values appear)."""
    secret_values = [v for k, v in state.caller_data.items() if k in sensitive]
    return json.dumps(
        {
            "session_id": state.session_id,
            "workflow": state.workflow,
            "workflow_hash": state.workflow_hash,
            "agent": state.current_agent,
            "turns": state.turns,
            "ended": state.ended,
            "created_at": state.created_at,
            "updated_at": state.updated_at,
            "transcript": [
                {"role": line.role, "agent": line.agent, "text": masked(line.text, secret_values)}
                for line in transcript.lines
            ],
            "handoffs": [
                {
                    "from": entry.from_agent,
                    "to": entry.to_agent,
                    "reason": entry.reason,
                    "at": entry.at,
                }
                for entry in state.handoff_trail
            ],
            "caller_data": {
                k: mask(v) if k in sensitive else v for k, v in state.caller_data.items()
            },
            "calls": [record.model_dump(mode="json") for record in state.calls],
        },
        indent=2,
        ensure_ascii=False,
    )


def print_session(
    state: SessionState, transcript: Transcript, *, sensitive: frozenset[str] = frozenset()
) -> None:
    """A stored session: stored text shown as text (escaped, control characters stripped),
    ``sensitive`` fields masked (``****8213``) wherever their values appear."""
    secret_values = [v for k, v in state.caller_data.items() if k in sensitive]
    console.print(
        f"[bold]session {shown(state.session_id)}[/] workflow "
        f"{shown(state.workflow)}@{shown(state.workflow_hash)} "
        f"agent {shown(state.current_agent)}, {plural(state.turns, 'turn')}"
    )
    for line in transcript.lines:
        who = "caller" if line.role == "caller" else line.agent
        console.print(f"  [bold]{shown(who)}[/]: {shown(masked(line.text, secret_values))}")
    console.print("handoff trail:")
    for entry in state.handoff_trail:
        console.print(
            f"  {shown(entry.from_agent)} → {shown(entry.to_agent)}: {shown(entry.reason)}"
        )
    data = {k: mask(v) if k in sensitive else v for k, v in state.caller_data.items()}
    console.print(f"caller data: {shown(json.dumps(data))}")
    for number, record in enumerate(state.calls, start=1):
        console.print(
            f"call {number}: {record.ended_at - record.started_at:.1f}s, "
            f"{'resumed, ' if record.resumed else ''}ended: {shown(record.reason)}"
        )


# --------------------------------------------------------------------------- providers


def print_providers(workflow: Workflow, console: Console) -> int:
    """``frontdesk providers``: every profile, its components, the keys it needs, which is active.

    Only whether a variable is set is shown, never its value. Exit code 0, or
    :attr:`WorkerSetupError.exit_code` when ``FRONTDESK_PROFILE`` names an unknown profile (the
    table is still printed, so the known names are in front of the user).
    """
    profiles = workflow.config.providers.profiles
    try:
        active: str | None = active_profile_name(workflow)
        problem = None
    except WorkerSetupError as exc:
        active, problem = None, exc

    table = Table(title=f"Provider profiles of {workflow.name}", title_justify="left")
    for column in ("profile", "stt", "llm", "tts", "vad", "needs"):
        table.add_column(column, overflow="fold")
    for name, profile in profiles.items():
        needs = [
            f"[green]✓[/] {var}" if is_set else f"[red]✗[/] {var} [dim](missing)[/]"
            for var, is_set in _by_name(required_env(profile, profile_name=name, workflow=workflow))
        ]
        label = f"[bold]{name}[/] [cyan](active)[/]" if name == active else name
        if profile.description:
            label += f"\n[dim]{profile.description}[/]"
        if profile.cost_per_minute_usd is not None:
            label += f"\n[dim]≈ ${profile.cost_per_minute_usd:.3f} per call minute[/]"
        table.add_row(
            label,
            describe_component(profile.stt),
            " → ".join(describe_component(model) for model in profile.llm_chain),
            describe_component(profile.tts),
            describe_component(profile.vad),
            "\n".join(needs) or "[dim]nothing[/]",
        )
    console.print(table)

    overrides = agent_overrides(workflow)
    if overrides:
        agents = Table(title="Per-agent overrides", title_justify="left")
        for column in ("agent", "component", "override"):
            agents.add_column(column)
        for agent_name, agent in overrides.items():
            for slot in OVERRIDABLE_SLOTS:
                override: ComponentOverride | None = getattr(agent, slot)
                if override is not None:
                    shown = ", ".join(
                        f"{k}={v}" for k, v in override.model_dump(exclude_none=True).items()
                    )
                    agents.add_row(agent_name, slot, shown)
        console.print(agents)

    source = PROFILE_ENV if os.environ.get(PROFILE_ENV, "").strip() else "providers.active"
    if problem is not None:
        console.print(f"[red]error:[/] {escape(str(problem))}")
        return problem.exit_code
    console.print(f"active profile: [bold]{active}[/] (from {source})")
    return 0


def _without_provider(component: str) -> str:
    """``tts (cartesia)`` → ``tts``: the table's columns already name the provider."""
    head, _, _ = component.rpartition(" (")
    return head or component


def _by_name(requirements: list[EnvRequirement]) -> list[tuple[str, bool]]:
    """Each variable once, with the components needing it: ``OPENAI_API_KEY (llm, tts)``."""
    grouped: dict[str, list[EnvRequirement]] = {}
    for requirement in requirements:
        grouped.setdefault(requirement.name, []).append(requirement)
    return [
        (
            f"{var} [dim]({', '.join(_without_provider(req.component) for req in reqs)})[/]",
            reqs[0].is_set,
        )
        for var, reqs in grouped.items()
    ]


def print_diff(old: Workflow, new: Workflow, changes: Sequence[Change]) -> None:
    """``validate --diff``: one line per change, breaking ones flagged with why."""
    console.print(
        f"{shown(old.source)} ({shown(old.identity)}) -> {shown(new.source)} ({shown(new.identity)})"
    )
    if not changes:
        console.print("[green]no changes[/] to agents, routes, caller data or tools")
        return
    signs = {"added": "[green]+[/]", "removed": "[red]-[/]", "changed": "[yellow]~[/]"}
    for change in changes:
        detail = f": {shown(change.detail)}" if change.detail else ""
        console.print(f"{signs[change.kind]} {change.area} {shown(change.path)}{detail}")
        if change.breaks:
            console.print(f"  [red]warning[/] breaks live or resumable sessions: {change.breaks}")
    breaking = sum(1 for change in changes if change.breaks)
    console.print(
        f"{plural(len(changes), 'change')}, "
        + (f"[red]{breaking} breaking[/]" if breaking else "[green]none breaking[/]")
    )
