"""The inspector's HTML: plain server-rendered pages, every piece of stored text escaped.

Caller text is hostile input (a caller can say anything, and a speech-to-text engine writes it
down): everything taken from a stored session, and from config, goes through :func:`h`
(``html.escape`` with quotes) before it reaches a page, including attribute values. Pages carry
no inline script or style, so the Content-Security-Policy (``script-src 'self'``) holds.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any
from urllib.parse import quote

from frontdesk.workflows.definition import WorkflowConfig

from .views import STATE_MEANING, STATES, Entry, SessionPage, SessionRow, plural

PALETTE_SIZE = 8


def h(value: object) -> str:
    """``value`` as text safe in HTML content and in quoted attribute values."""
    return escape("" if value is None else str(value), quote=True)


def agent_class(config: WorkflowConfig | None, agent: str | None) -> str:
    """A CSS class giving each agent of the config its own colour (``agent-0`` …)."""
    if config is None or agent is None or agent not in config.agents:
        return "agent-other"
    return f"agent-{list(config.agents).index(agent) % PALETTE_SIZE}"


def ago(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = max(seconds, 0.0)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def clock(at: float | None) -> str:
    if at is None:
        return ""
    return dt.datetime.fromtimestamp(at, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def layout(title: str, body: str, *, where: str, nav: str = "") -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{h(title)} · Frontdesk inspector</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">'
        '<link rel="stylesheet" href="/static/inspector.css">'
        '<script src="/static/inspector.js" defer></script></head><body>'
        '<header><a class="brand" href="/">Frontdesk inspector</a>'
        '<nav><a href="/">Sessions</a><a href="/workflow">Workflow</a></nav>'
        f'<span class="where">{h(where)}</span></header>'
        f"<main>{nav}{body}</main></body></html>"
    )


# --------------------------------------------------------------------------- sessions list


def row_cells(row: SessionRow, now: float) -> str:
    sid = h(row.session_id)
    return (
        f'<td class="sid"><a href="/sessions/{h(quote(row.session_id, safe=""))}">'
        f"{h(row.session_id[:12])}</a></td>"
        f'<td><span class="state state-{h(row.state)}" title="{h(STATE_MEANING[row.state])}">'
        f"{h(row.state)}</span></td>"
        f'<td class="agent-cell">{h(row.agent)}</td>'
        f'<td>{h(row.workflow)}<span class="dim">@{h(row.workflow_hash)}</span></td>'
        f'<td class="mono">{h((row.caller_hash or "-")[:12])}</td>'
        f'<td class="num">{row.turns}</td>'
        f'<td class="num">{h(ago(now - row.created_at) if row.created_at else "?")}</td>'
        f'<td class="num" data-sid="{sid}">{h(ago(now - row.updated_at) if row.updated_at else "?")}</td>'
    )


def sessions_page(rows: Sequence[SessionRow], *, query: str, state: str, where: str) -> str:
    now = time.time()
    options = "".join(
        f'<option value="{h(s)}"{" selected" if s == state else ""}>{h(s or "any state")}</option>'
        for s in ("", *STATES)
    )
    shown = [r for r in rows if r.matches(query) and (not state or r.state == state)]
    body_rows = "".join(
        f'<tr data-sid="{h(r.session_id)}" data-state="{h(r.state)}">{row_cells(r, now)}</tr>'
        for r in shown
    )
    empty = (
        ""
        if shown
        else '<p class="empty" id="empty">No sessions stored yet. Run <code>frontdesk demo</code> '
        "(or a call) and they appear here.</p>"
    )
    counts = " · ".join(
        f"{sum(1 for r in rows if r.state == s)} {s}"
        for s in STATES
        if any(r.state == s for r in rows)
    )
    body = (
        f'<h1>Sessions <span class="count" id="count">{h(plural(len(rows), "session"))}</span></h1>'
        f'<p class="dim" id="state-counts">{h(counts)}</p>'
        '<form class="filters" method="get" action="/">'
        f'<input type="search" name="q" id="search" placeholder="search id, agent, workflow, caller hash" value="{h(query)}">'
        f'<select name="state" id="state-filter">{options}</select>'
        '<button type="submit">Filter</button>'
        '<label class="live-toggle"><input type="checkbox" id="auto-refresh" checked> live updates</label>'
        "</form>"
        '<table class="sessions" id="sessions"><thead><tr><th>session</th><th>state</th>'
        "<th>agent now</th><th>workflow</th><th>caller hash</th><th>turns</th><th>age</th>"
        f"<th>last active</th></tr></thead><tbody>{body_rows}</tbody></table>{empty}"
    )
    return layout("Sessions", body, where=where)


# --------------------------------------------------------------------------- one session


def _entry_html(entry: Entry, config: WorkflowConfig | None) -> str:
    when = f'<time class="at" title="{h(clock(entry.at))}">{h(clock(entry.at)[11:19])}</time>'
    if entry.kind == "caller":
        return (
            f'<li class="turn caller">{when}<span class="who caller-label">caller</span>'
            f'<span class="text">{h(entry.text)}</span></li>'
        )
    if entry.kind == "agent":
        timing = []
        if entry.latency is not None:
            timing.append(f"reply {entry.latency * 1000:.0f} ms")
        if entry.ttft is not None:
            timing.append(f"ttft {entry.ttft * 1000:.1f} ms")
        if entry.interrupted:
            timing.append("interrupted")
        return (
            f'<li class="turn agent {agent_class(config, entry.agent)}" data-agent="{h(entry.agent)}">'
            f'{when}<span class="who agent-label">{h(entry.agent)}</span>'
            f'<span class="text">{h(entry.text)}</span>'
            f'<span class="timing">{h(" · ".join(timing))}</span></li>'
        )
    if entry.kind == "handoff":
        return (
            f'<li class="marker handoff" data-from="{h(entry.agent)}" data-to="{h(entry.to_agent)}">'
            f'{when}<span class="arrow">↪ handoff</span> '
            f'<span class="from {agent_class(config, entry.agent)}">{h(entry.agent)}</span> → '
            f'<span class="to {agent_class(config, entry.to_agent)}">{h(entry.to_agent)}</span>'
            f'<span class="reason">reason: {h(entry.reason or "?")}</span>'
            f'<span class="policy">context: {h(entry.context)}</span></li>'
        )
    if entry.kind in ("start", "resume"):
        label = (
            "☎ call starts on" if entry.kind == "start" else "☎ the caller came back: resumed on"
        )
        return (
            f'<li class="marker {entry.kind}" data-agent="{h(entry.agent)}">{when}'
            f'{h(label)} <span class="{agent_class(config, entry.agent)}">{h(entry.agent)}</span></li>'
        )
    if entry.kind == "tool":
        status = "error" if entry.is_error else "ok"
        return (
            f'<li class="tool tool-{status}" data-agent="{h(entry.agent)}">{when}'
            f'<span class="who">⚙ {h(entry.tool)}</span><code>{h(entry.arguments)}</code>'
            f'<span class="result">→ {h(entry.result)}</span></li>'
        )
    return (
        f'<li class="data">{when}<span class="who">caller data</span>'
        f"<code>{h(entry.field_name)} = {h(entry.text)}</code></li>"
    )


def _metrics_table(metrics: Mapping[str, Any]) -> str:
    agents = metrics.get("agents") if isinstance(metrics.get("agents"), dict) else None
    if not agents:
        return '<span class="dim">no provider metrics</span>'
    rows = []
    for agent, usage in agents.items():
        if not isinstance(usage, dict):
            continue
        llm = usage.get("llm", {}) if isinstance(usage.get("llm"), dict) else {}
        tts = usage.get("tts", {}) if isinstance(usage.get("tts"), dict) else {}
        ttft = llm.get("ttft", {}) if isinstance(llm.get("ttft"), dict) else {}
        ttfb = tts.get("ttfb", {}) if isinstance(tts.get("ttfb"), dict) else {}
        rows.append(
            f"<tr><td>{h(agent)}</td><td>{h(llm.get('requests', 0))}</td>"
            f"<td>{h(ttft.get('avg'))}</td><td>{h(llm.get('prompt_tokens', 0))}+"
            f"{h(llm.get('completion_tokens', 0))}</td><td>{h(ttfb.get('avg'))}</td>"
            f"<td>{h(tts.get('characters', 0))}</td></tr>"
        )
    return (
        '<table class="metrics"><thead><tr><th>agent</th><th>llm requests</th><th>ttft avg s</th>'
        "<th>tokens</th><th>tts ttfb avg s</th><th>tts chars</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def session_page(
    page: SessionPage,
    *,
    config: WorkflowConfig | None,
    row_state: str,
    allow_delete: bool,
    where: str,
) -> str:
    state = page.state
    sid = quote(state.session_id, safe="")
    entries = "".join(_entry_html(entry, config) for entry in page.entries)
    data_rows = (
        "".join(
            f"<tr><td>{h(name)}</td><td><code>{h(value)}</code></td></tr>"
            for name, value in page.caller_data.items()
        )
        or '<tr><td colspan="2" class="dim">none yet</td></tr>'
    )
    calls = (
        "".join(
            f"<tr><td>{number}</td><td>{h(clock(call.started_at))}</td>"
            f"<td>{call.ended_at - call.started_at:.1f} s</td><td>{'yes' if call.resumed else 'no'}</td>"
            f"<td>{h(call.reason)}</td><td>{call.caller_turns}</td><td>{h(' > '.join(call.agents))}</td>"
            f"<td>{_metrics_table(call.metrics)}</td></tr>"
            for number, call in enumerate(state.calls, start=1)
        )
        or '<tr><td colspan="8" class="dim">no connection has ended yet</td></tr>'
    )
    trail = "".join(
        f"<li>{h(entry.from_agent or 'caller')} → {h(entry.to_agent)}: {h(entry.reason)}</li>"
        for entry in state.handoff_trail
    )
    delete = (
        f'<a class="button danger" id="delete" href="/sessions/{h(sid)}/delete">Delete…</a>'
        if allow_delete
        else ""
    )
    body = (
        f'<h1>Session <code id="session-id">{h(state.session_id)}</code> '
        f'<span class="state state-{h(row_state)}">{h(row_state)}</span></h1>'
        '<p class="summary">'
        f"workflow <b>{h(state.workflow)}</b>@{h(state.workflow_hash)} · agent now "
        f'<b class="{agent_class(config, state.current_agent)}" id="agent-now">{h(state.current_agent)}</b> · '
        f"{h(plural(state.turns, 'turn'))} · {h(plural(len(state.handoff_trail), 'handoff'))} · "
        f"caller hash <code>{h((state.caller_hash or '-')[:16])}</code> · created "
        f"{h(clock(state.created_at))} · last active {h(clock(state.updated_at))}</p>"
        f'<p class="actions"><a class="button" id="export" href="/sessions/{h(sid)}/export.json">'
        f"Export JSON</a>{delete}</p>"
        '<section class="columns"><div class="transcript-col"><h2>Transcript</h2>'
        f'<ol class="transcript" id="transcript">{entries}</ol></div>'
        '<aside><h2>Caller data</h2><table class="data">'
        f'{data_rows}</table><h2>Handoff trail</h2><ol class="trail">{trail}</ol></aside></section>'
        '<h2>Connections</h2><table class="calls"><thead><tr><th>#</th><th>started</th>'
        "<th>lasted</th><th>resumed</th><th>ended because</th><th>caller turns</th><th>agents</th>"
        f"<th>metrics</th></tr></thead><tbody>{calls}</tbody></table>"
    )
    return layout(f"Session {state.session_id[:12]}", body, where=where)


def quarantined_page(session_id: str, meta: Mapping[str, Any], *, where: str, prefix: str) -> str:
    fields = "".join(
        f"<tr><td>{h(name)}</td><td><code>{h(json.dumps(value, ensure_ascii=False)[:2000])}</code></td></tr>"
        for name, value in sorted(meta.items())
        if not name.startswith("_")
    )
    body = (
        f'<h1>Session <code id="session-id">{h(session_id)}</code> '
        '<span class="state state-quarantined">quarantined</span></h1>'
        "<p>This session could not be loaded and was moved aside for a human to inspect, under "
        f"<code>{h(prefix)}:q:{{{h(session_id)}}}:*</code>. A caller who calls back starts "
        "fresh. What still decodes of its meta:</p>"
        f'<table class="data">{fields or "<tr><td>nothing decodes</td></tr>"}</table>'
    )
    return layout(f"Session {session_id[:12]} (quarantined)", body, where=where)


def confirm_delete_page(session_id: str, *, csrf: str, where: str) -> str:
    sid = quote(session_id, safe="")
    body = (
        f"<h1>Delete session <code>{h(session_id)}</code>?</h1>"
        "<p>Its transcript, caller data and caller-index entry are removed from Redis. This "
        "cannot be undone; export it first if you may need it.</p>"
        f'<form method="post" action="/sessions/{h(sid)}/delete" class="confirm">'
        f'<input type="hidden" name="csrf" value="{h(csrf)}">'
        f'<input type="hidden" name="confirm" value="{h(session_id)}">'
        '<button type="submit" class="danger" id="confirm-delete">Delete it</button> '
        f'<a href="/sessions/{h(sid)}">Cancel</a></form>'
    )
    return layout("Delete session", body, where=where)


def message_page(title: str, message: str, *, where: str) -> str:
    return layout(title, f"<h1>{h(title)}</h1><p>{h(message)}</p>", where=where)


# --------------------------------------------------------------------------- workflow


def workflow_page(
    config: WorkflowConfig,
    *,
    svg: str,
    identity: str,
    source: str,
    warnings: Iterable[tuple[str | None, str]],
    counts: Mapping[tuple[str, str], int],
    sessions_counted: int,
    where: str,
) -> str:
    warning_items = "".join(
        f'<li class="warning"{f" data-agent={chr(34)}{h(agent)}{chr(34)}" if agent else ""}>⚠ {h(message)}</li>'
        for agent, message in warnings
    )
    route_rows = "".join(
        f'<tr data-from="{h(name)}" data-to="{h(route.to)}"><td class="{agent_class(config, name)}">{h(name)}</td>'
        f'<td class="{agent_class(config, route.to)}">{h(route.to)}</td><td>{h(route.when)}</td>'
        f"<td>{h(route.context)}</td><td>{h(route.say or '')}</td>"
        f'<td class="num route-count">{counts.get((name, route.to), 0)}</td></tr>'
        for name, agent in config.agents.items()
        for route in agent.handoffs
    )
    fields = "".join(
        f"<tr><td>{h(name)}</td><td>{h(spec.description)}</td><td><code>{h(spec.pattern or '')}</code></td>"
        f"<td>{h(', '.join(a for a, agent in config.agents.items() if name in agent.collects))}</td></tr>"
        for name, spec in config.caller_data.items()
    )
    routes = sum(len(agent.handoffs) for agent in config.agents.values())
    body = (
        f"<h1>Workflow <b>{h(config.workflow.name)}</b></h1>"
        f'<p class="summary">{h(identity)} · {h(source)} · '
        f"{h(plural(len(config.agents), 'agent'))}, {h(plural(routes, 'route'))}, "
        f"{h(plural(len(config.caller_data), 'caller-data field'))} · starts on "
        f"<b>{h(config.workflow.start)}</b> · loop guard: at most "
        f"{h(plural(config.workflow.max_handoffs_per_turn, 'handoff'))} per caller turn</p>"
        f'<div class="graph" id="graph">{svg}</div>'
        f'<p class="dim">Route counts are handoffs taken in {h(plural(sessions_counted, "stored session"))}.</p>'
        + (
            f'<h2>Validation warnings</h2><ul class="warnings">{warning_items}</ul>'
            if warning_items
            else ""
        )
        + '<h2>Routes</h2><table class="routes"><thead><tr><th>from</th><th>to</th><th>when</th>'
        f"<th>context</th><th>says</th><th>taken</th></tr></thead><tbody>{route_rows}</tbody></table>"
        '<h2>Caller data</h2><table class="fields"><thead><tr><th>field</th><th>description</th>'
        f"<th>pattern</th><th>collected by</th></tr></thead><tbody>{fields}</tbody></table>"
    )
    return layout(f"Workflow {config.workflow.name}", body, where=where)
