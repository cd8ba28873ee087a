"""What the inspector shows, computed from stored sessions: pure functions, no I/O, no HTML.

A stored session is a :class:`~frontdesk.state.models.SessionState` (meta + LiveKit's serialised
chat items). From it come the rows of the sessions list (with a state: live, dropped,
resumable, ended, quarantined) and the entries of a session page: caller and agent lines with
the agent that spoke each, handoff markers (from, to, reason, the route's context policy), tool
calls with their results, caller data as it was recorded, resume markers and per-turn timings.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from frontdesk.state.crypto import Finder, replace_sealed
from frontdesk.state.models import SessionState, SessionSummary
from frontdesk.workflows.definition import WorkflowConfig
from frontdesk.workflows.definition.field_types import FieldValue, as_text
from frontdesk.workflows.definition.patterns import span_finder

SessionStateLabel = Literal["live", "dropped", "resumable", "ended", "quarantined"]
STATES: tuple[SessionStateLabel, ...] = ("live", "dropped", "resumable", "ended", "quarantined")

STATE_MEANING: dict[str, str] = {
    "live": "a worker holds the call's lease now",
    "dropped": "the last connection ended by a drop (or its worker died); a call back within "
    "the resume window resumes it",
    "resumable": "not on a call now; a call back within the resume window resumes it",
    "ended": "ended for good, or last active longer ago than the resume window",
    "quarantined": "moved aside as corrupt; kept for inspection, never resumed",
}

MASK = "•••"


@dataclass(frozen=True)
class SessionRow:
    """One line of the sessions list."""

    session_id: str
    state: SessionStateLabel
    agent: str
    workflow: str
    workflow_hash: str
    caller_hash: str | None
    turns: int
    created_at: float | None
    updated_at: float | None
    items: int

    def as_json(self, now: float) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "state": self.state,
            "agent": self.agent,
            "workflow": self.workflow,
            "workflow_hash": self.workflow_hash,
            "caller_hash": self.caller_hash,
            "turns": self.turns,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "age_seconds": round(now - self.created_at, 1) if self.created_at else None,
            "idle_seconds": round(now - self.updated_at, 1) if self.updated_at else None,
            "items": self.items,
        }

    def matches(self, query: str) -> bool:
        """Case-insensitive search over id, agent, workflow, caller hash and state."""
        if not query:
            return True
        needle = query.casefold()
        haystack = (self.session_id, self.agent, self.workflow, self.caller_hash or "", self.state)
        return any(needle in value.casefold() for value in haystack)


def session_state(
    summary: SessionSummary,
    *,
    live: bool,
    last_call: Mapping[str, Any] | None,
    now: float,
    resume_window: float,
) -> SessionStateLabel:
    """The state of a stored (not quarantined) session; see :data:`STATE_MEANING`."""
    if live:
        return "live"
    if summary.ended or now - summary.updated_at > resume_window:
        return "ended"
    if last_call is None:
        return "dropped"  # a connection that never wrote its record: the worker died
    ended_at = last_call.get("ended_at")
    if isinstance(ended_at, int | float) and ended_at < summary.updated_at - 1.0:
        return "dropped"  # written to after its last record, then no record: died mid-call
    return "dropped" if "drop" in str(last_call.get("reason", "")).casefold() else "resumable"


def row_of(summary: SessionSummary, *, state: SessionStateLabel, workflow_hash: str) -> SessionRow:
    return SessionRow(
        session_id=summary.session_id,
        state=state,
        agent=summary.agent,
        workflow=summary.workflow,
        workflow_hash=workflow_hash,
        caller_hash=summary.caller_hash,
        turns=summary.turns,
        created_at=summary.created_at,
        updated_at=summary.updated_at,
        items=summary.item_count,
    )


def quarantined_row(session_id: str, meta: Mapping[str, Any]) -> SessionRow:
    """A quarantined session, from whatever of its meta still decodes (it may be garbage)."""

    def text(name: str, default: str = "?") -> str:
        value = meta.get(name)
        return value if isinstance(value, str) else default

    def number(name: str) -> float | None:
        value = meta.get(name)
        return float(value) if isinstance(value, int | float) else None

    turns = meta.get("turns")
    return SessionRow(
        session_id=session_id,
        state="quarantined",
        agent=text("current_agent"),
        workflow=text("workflow"),
        workflow_hash=text("workflow_hash", ""),
        caller_hash=meta.get("caller_hash") if isinstance(meta.get("caller_hash"), str) else None,
        turns=turns if isinstance(turns, int) else 0,
        created_at=number("created_at"),
        updated_at=number("updated_at"),
        items=0,
    )


# --------------------------------------------------------------------------- a session's page


@dataclass(frozen=True)
class Entry:
    """One thing that happened in a call, in order. ``kind`` says which fields matter."""

    kind: Literal["caller", "agent", "handoff", "start", "resume", "tool", "data"]
    at: float | None
    agent: str | None = None
    text: str = ""
    to_agent: str | None = None
    reason: str | None = None
    context: str | None = None
    tool: str | None = None
    arguments: str | None = None
    result: str | None = None
    is_error: bool = False
    field_name: str | None = None
    latency: float | None = None
    """Agent line: seconds from the caller's last line to this reply."""
    ttft: float | None = None
    """Agent line: the model's time to first token, from LiveKit's message metrics."""
    interrupted: bool = False


@dataclass
class SessionPage:
    """Everything the session page shows."""

    state: SessionState
    entries: list[Entry] = field(default_factory=list)
    masked_fields: frozenset[str] = frozenset()

    @property
    def caller_data(self) -> dict[str, FieldValue]:
        return {
            name: MASK if name in self.masked_fields else value
            for name, value in self.state.caller_data.items()
        }

    @property
    def handoffs(self) -> list[Entry]:
        return [entry for entry in self.entries if entry.kind == "handoff"]


def sensitive_fields(config: WorkflowConfig) -> frozenset[str]:
    """Caller-data fields the config marks as sensitive (``sensitive = true``)."""
    return frozenset(name for name, spec in config.caller_data.items() if spec.sensitive)


def route_context(config: WorkflowConfig | None, from_agent: str | None, to_agent: str) -> str:
    """The context policy of the route ``from_agent`` → ``to_agent`` in ``config`` ('?' if none)."""
    if config is None or from_agent is None or from_agent not in config.agents:
        return "?"
    for route in config.agents[from_agent].handoffs:
        if route.to == to_agent:
            return route.context
    return "?"


def _text(item: Mapping[str, Any]) -> str:
    content = item.get("content") or []
    if isinstance(content, str):
        return content
    return " ".join(part for part in content if isinstance(part, str)).strip()


def _mask(text: str, secrets: Sequence[str], finders: Sequence[Finder] = ()) -> str:
    """``text`` with every sensitive value, every match of a sensitive field's pattern and
    every sealed string no key opened replaced by :data:`MASK`."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    for finder in finders:
        spans = sorted(finder(text), reverse=True)
        for start, end in spans:
            text = text[:start] + MASK + text[end:]
    return replace_sealed(text, MASK)


def _pattern_finders(config: WorkflowConfig | None, masked: frozenset[str]) -> list[Finder]:
    if config is None:
        return []
    regexes = (config.caller_data[name].regex for name in sorted(masked))
    return [span_finder(regex) for regex in regexes if regex is not None]


def build_page(state: SessionState, config: WorkflowConfig | None) -> SessionPage:
    """The session page of ``state``; ``config`` names context policies and sensitive fields.

    Handoff reasons come from the stored handoff trail (in order, matched by from/to); a
    LiveKit ``agent_handoff`` item with no previous agent after the first one is a resume.
    """
    masked = sensitive_fields(config) if config is not None else frozenset()
    secrets = [as_text(value) for name, value in state.caller_data.items() if name in masked]
    finders = _pattern_finders(config, masked)
    trail = list(state.handoff_trail)
    page = SessionPage(state=state, masked_fields=masked)
    current: str | None = None
    started = False
    last_caller_at: float | None = None
    answered = True
    calls: dict[str, tuple[str, str]] = {}
    for item in state.items:
        kind = item.get("type")
        at = item.get("created_at") if isinstance(item.get("created_at"), int | float) else None
        if kind == "agent_handoff":
            new = str(item.get("new_agent_id") or "?")
            old = item.get("old_agent_id")
            if old:
                reason = None
                for index, entry in enumerate(trail):
                    if entry.from_agent == old and entry.to_agent == new:
                        reason = trail.pop(index).reason
                        break
                page.entries.append(
                    Entry(
                        kind="handoff",
                        at=at,
                        agent=str(old),
                        to_agent=new,
                        reason=reason,
                        context=route_context(config, str(old), new),
                    )
                )
            else:
                page.entries.append(Entry(kind="resume" if started else "start", at=at, agent=new))
            started = True
            current = new
        elif kind == "message" and item.get("role") in ("user", "assistant"):
            text = _mask(_text(item), secrets, finders)
            if not text:
                continue
            if item.get("role") == "user":
                page.entries.append(Entry(kind="caller", at=at, agent=current, text=text))
                last_caller_at, answered = at, False
            else:
                metrics = item.get("metrics") if isinstance(item.get("metrics"), dict) else {}
                ttft = metrics.get("llm_node_ttft") if metrics else None
                latency = None
                if not answered and at is not None and last_caller_at is not None:
                    latency = max(at - last_caller_at, 0.0)
                    answered = True
                page.entries.append(
                    Entry(
                        kind="agent",
                        at=at,
                        agent=current,
                        text=text,
                        latency=latency,
                        ttft=ttft if isinstance(ttft, int | float) else None,
                        interrupted=bool(item.get("interrupted")),
                    )
                )
        elif kind == "function_call":
            call_id = str(item.get("call_id") or "")
            calls[call_id] = (str(item.get("name") or "?"), str(item.get("arguments") or ""))
        elif kind == "function_call_output":
            call_id = str(item.get("call_id") or "")
            name, arguments = calls.pop(call_id, (str(item.get("name") or "?"), ""))
            output = str(item.get("output") or "")
            is_error = bool(item.get("is_error"))
            page.entries.append(
                Entry(
                    kind="tool",
                    at=at,
                    agent=current,
                    tool=name,
                    arguments=_mask(_compact(arguments), secrets, finders),
                    result=_mask(output, secrets, finders),
                    is_error=is_error,
                )
            )
            field_name = name.removeprefix("record_") if name.startswith("record_") else None
            if field_name and not is_error and field_name in state.caller_data:
                value = state.caller_data[field_name]
                shown = MASK if field_name in masked else _recorded_value(arguments, as_text(value))
                page.entries.append(
                    Entry(kind="data", at=at, agent=current, field_name=field_name, text=shown)
                )
    _mark_unstored_resumes(page)
    return page


def _mark_unstored_resumes(page: SessionPage) -> None:
    """A resumed connection whose first turns were never stored (a caller resumed by caller ID
    is not recorded until they verify) still shows where the caller came back: at the start
    of its call record, on the agent the call was on."""
    for call in page.state.calls:
        if not call.resumed or any(
            entry.kind == "resume" and entry.at is not None
            and call.started_at - 1 <= entry.at <= call.ended_at
            for entry in page.entries
        ):  # fmt: skip
            continue
        index = next(
            (i for i, e in enumerate(page.entries) if e.at is not None and e.at >= call.started_at),
            len(page.entries),
        )
        agent = next(
            (
                e.to_agent or e.agent
                for e in reversed(page.entries[:index])
                if e.kind in ("start", "handoff", "resume")
            ),
            None,
        )
        page.entries.insert(index, Entry(kind="resume", at=call.started_at, agent=agent))


def _compact(arguments: str) -> str:
    try:
        return json.dumps(json.loads(arguments), ensure_ascii=False)
    except ValueError:
        return arguments


def _recorded_value(arguments: str, final: str) -> str:
    """The value a record tool was called with (it may have changed later), else the final one."""
    try:
        value = json.loads(arguments).get("value")
    except (ValueError, AttributeError):
        return final
    return value if isinstance(value, str) and value else final


# --------------------------------------------------------------------------- the workflow page


def route_counts(
    trails: Iterable[Iterable[tuple[str | None, str]]],
) -> Counter[tuple[str, str]]:
    """Handoffs taken per route (from, to) over the stored sessions' handoff trails."""
    counts: Counter[tuple[str, str]] = Counter()
    for trail in trails:
        for from_agent, to_agent in trail:
            if from_agent is not None:
                counts[(from_agent, to_agent)] += 1
    return counts


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``1 agent``, ``2 agents``."""
    return f"{count} {singular if count == 1 else plural_form or singular + 's'}"
