"""Frontdesk's metrics and traces, in LiveKit's own telemetry rather than beside it.

LiveKit's worker serves Prometheus metrics (``WorkerOptions(prometheus_port=...)``, fed by
``prometheus_client``'s default registry, in multiprocess mode when job processes write to a
``PROMETHEUS_MULTIPROC_DIR``) and emits OpenTelemetry spans through
``livekit.agents.telemetry.tracer``. Frontdesk registers its counters and histograms in that same
registry and starts its spans on that same tracer, so one scrape and one trace exporter see
LiveKit's figures and Frontdesk's together.

Caller text and caller data go only into attributes named ``lk.pii.*``: LiveKit's PII filter
drops those whole when redaction is on (``livekit.agents.telemetry.pii.is_pii_attribute``).

Every function here is a one-line call from the module that knows the fact (the handoff tool,
the state writer, the resume lookup, the session); none of them raises: telemetry must never
take a call down.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal

import orjson
import prometheus_client
from livekit.agents.telemetry import tracer
from livekit.agents.telemetry.pii import is_pii_attribute

logger = logging.getLogger(__name__)

ResumeOutcome = Literal[
    "resumed", "restarted", "fresh", "expired", "quarantined", "verification_failed"
]
RESUME_OUTCOMES: Final[tuple[str, ...]] = (
    "resumed",
    "restarted",
    "fresh",
    "expired",
    "quarantined",
    "verification_failed",
)

PII_CALLER_TEXT: Final = "lk.pii.frontdesk.caller_text"
"""Span attribute holding what the caller said (dropped by LiveKit's PII filter)."""
PII_CALLER_DATA: Final = "lk.pii.frontdesk.caller_data"
"""Span attribute holding the caller data as JSON (dropped by LiveKit's PII filter)."""

_families: list[str] = []


def _counter(
    name: str, documentation: str, labels: tuple[str, ...] = ()
) -> prometheus_client.Counter:
    """A counter family, listed in :data:`METRIC_NAMES`."""
    _families.append(name)
    return prometheus_client.Counter(name, documentation, labels)


HANDOFFS: Final = _counter(
    "frontdesk_handoffs_total",
    "Handoffs taken, by workflow and route (from agent, to agent) and context policy",
    ("workflow", "from_agent", "to_agent", "context"),
)
HANDOFFS_REFUSED: Final = _counter(
    "frontdesk_handoffs_refused_total",
    "Handoffs refused by the loop guard, by workflow and route",
    ("workflow", "from_agent", "to_agent"),
)
PERSIST_SECONDS: Final = prometheus_client.Histogram(
    "frontdesk_persist_seconds",
    "Time until Redis acknowledged one write of a call's state (append or full rewrite)",
    ["operation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
)
_families.append("frontdesk_persist_seconds")
PERSIST_ITEMS: Final = _counter(
    "frontdesk_persist_items_total", "Chat items acknowledged by Redis", ("operation",)
)
PERSIST_QUEUE: Final = prometheus_client.Gauge(
    "frontdesk_persist_queue_items",
    "Chat items submitted but not yet acknowledged by Redis, over all live calls",
    multiprocess_mode="livesum",
)
_families.append("frontdesk_persist_queue_items")
REDIS_OUTAGES: Final = _counter(
    "frontdesk_redis_outages_total", "Times a call's writer found Redis unreachable"
)
REDIS_OUTAGE_SECONDS: Final = _counter(
    "frontdesk_redis_outage_seconds_total",
    "Seconds calls' writers spent with Redis unreachable (counted when it comes back)",
)
RESUMES: Final = _counter(
    "frontdesk_resumes_total",
    "How each call started: resumed, restarted (at the start agent), fresh, expired, "
    "quarantined, verification_failed",
    ("workflow", "outcome"),
)
MODEL_ERRORS: Final = _counter(
    "frontdesk_model_errors_total",
    "Errors reported by the call's models (LLM, STT, TTS), by component and recoverability",
    ("workflow", "component", "recoverable"),
)
MODEL_FALLBACKS: Final = _counter(
    "frontdesk_model_fallbacks_total",
    "A LiveKit FallbackAdapter marked a provider unavailable (the call moved to the next one)",
    ("workflow", "component", "provider"),
)

METRIC_NAMES: Final[tuple[str, ...]] = tuple(_families)
"""Every metric family Frontdesk adds (a dashboard may query only these and LiveKit's)."""

_queued: dict[str, int] = {}
"""Last queue depth reported per session, so the gauge moves by differences (multiprocess-safe)."""


def _json(value: Mapping[str, Any]) -> str:
    return orjson.dumps(dict(value)).decode()


def _span(name: str, started_ns: int, attributes: Mapping[str, Any]) -> None:
    """A finished span from ``started_ns`` to now on LiveKit's tracer."""
    span = tracer.start_span(
        name,
        start_time=started_ns,
        attributes={k: v for k, v in attributes.items() if v is not None},
    )
    span.end()


# --------------------------------------------------------------------------- handoffs


def handoff(workflow: str, data: Any, from_agent: str, route: Any, history: Any) -> None:
    """A route was taken: count it and trace it (caller text and data only as PII attributes).

    ``data`` is the call's ``CallerData``, ``route`` the config ``Route``, ``history`` the
    session's ``ChatContext`` (its last caller message is the utterance that triggered it).
    The span starts when the transfer tool was called (``data.pending_handoff.at``).
    """
    try:
        pending = getattr(data, "pending_handoff", None)
        started_ns = int(pending.at * 1e9) if pending is not None else time.time_ns()
        HANDOFFS.labels(workflow, from_agent, route.to, route.context).inc()
        _span(
            "frontdesk.handoff",
            started_ns,
            {
                "frontdesk.workflow": workflow,
                "frontdesk.session_id": data.session_id,
                "frontdesk.handoff.from": from_agent,
                "frontdesk.handoff.to": route.to,
                "frontdesk.handoff.context": route.context,
                "frontdesk.handoff.reason": route.when,
                PII_CALLER_TEXT: _last_caller_text(history),
                PII_CALLER_DATA: _json(data.fields),
            },
        )
    except Exception:  # telemetry never breaks a call
        logger.debug("handoff telemetry failed", exc_info=True)


def _last_caller_text(history: Any) -> str | None:
    for item in reversed(list(getattr(history, "items", []))):
        if getattr(item, "type", None) == "message" and getattr(item, "role", None) == "user":
            text = getattr(item, "text_content", None)
            return text if isinstance(text, str) else None
    return None


def handoff_refused(workflow: str, from_agent: str, to_agent: str) -> None:
    """The loop guard refused a route."""
    try:
        HANDOFFS_REFUSED.labels(workflow, from_agent, to_agent).inc()
    except Exception:
        logger.debug("handoff telemetry failed", exc_info=True)


# --------------------------------------------------------------------------- persistence


def persisted(
    session_id: str, operation: Literal["append", "rewrite"], started_ns: int, items: int
) -> None:
    """One write of a call's state was acknowledged (``started_ns``: ``time.time_ns()`` before it)."""
    try:
        seconds = max(time.time_ns() - started_ns, 0) / 1e9
        PERSIST_SECONDS.labels(operation).observe(seconds)
        PERSIST_ITEMS.labels(operation).inc(items)
        _span(
            "frontdesk.persist",
            started_ns,
            {
                "frontdesk.session_id": session_id,
                "frontdesk.persist.operation": operation,
                "frontdesk.persist.items": items,
            },
        )
    except Exception:
        logger.debug("persist telemetry failed", exc_info=True)


def queue_depth(session_id: str, pending: int) -> None:
    """The items one call has waiting for Redis now (0 once acknowledged or closed)."""
    try:
        previous = _queued.pop(session_id, 0)
        if pending > 0:
            _queued[session_id] = pending
        if pending != previous:
            PERSIST_QUEUE.inc(pending - previous)
    except Exception:
        logger.debug("queue telemetry failed", exc_info=True)


def redis_outage_started() -> None:
    try:
        REDIS_OUTAGES.inc()
    except Exception:
        logger.debug("outage telemetry failed", exc_info=True)


def redis_outage_ended(seconds: float) -> None:
    try:
        REDIS_OUTAGE_SECONDS.inc(max(seconds, 0.0))
    except Exception:
        logger.debug("outage telemetry failed", exc_info=True)


# --------------------------------------------------------------------------- resume


def resume_outcome(*, kind: str, had_state: bool, ended: bool, quarantined: bool) -> ResumeOutcome:
    """The outcome label of a call start, from the resume plan and what the lookup found."""
    if quarantined:
        return "quarantined"
    if kind == "resume":
        return "resumed"
    if kind == "restart_at_start":
        return "restarted"
    if had_state and not ended:
        return "expired"
    return "fresh"


def call_started(
    workflow: str, plan: Any, found: Any, *, quarantined: bool, started_ns: int
) -> None:
    """How a call started, from its ``ResumePlan`` and the stored session the lookup ``found``.

    ``verification_failed`` is counted by :func:`verification_failed` (for a caller whose
    identity check failed, when a deployment verifies callers before resuming them).
    """
    try:
        outcome = resume_outcome(
            kind=plan.kind,
            had_state=found is not None,
            ended=bool(getattr(found, "ended", False)),
            quarantined=quarantined,
        )
        _resume_span(workflow, outcome, plan, started_ns)
    except Exception:
        logger.debug("resume telemetry failed", exc_info=True)


def verification_failed(workflow: str, plan: Any, started_ns: int) -> None:
    """A returning caller was not resumed because their identity could not be verified."""
    try:
        _resume_span(workflow, "verification_failed", plan, started_ns)
    except Exception:
        logger.debug("resume telemetry failed", exc_info=True)


def _resume_span(workflow: str, outcome: ResumeOutcome, plan: Any, started_ns: int) -> None:
    RESUMES.labels(workflow, outcome).inc()
    state = getattr(plan, "state", None)
    _span(
        "frontdesk.resume",
        started_ns,
        {
            "frontdesk.workflow": workflow,
            "frontdesk.session_id": getattr(state, "session_id", None),
            "frontdesk.resume.outcome": outcome,
            "frontdesk.resume.agent": getattr(plan, "agent", None),
            "frontdesk.resume.reason": getattr(plan, "reason", None),
            PII_CALLER_DATA: _json(state.caller_data) if state is not None else None,
        },
    )


# --------------------------------------------------------------------------- log lines

REDACTED: Final = "[redacted]"
"""What a log record carries in place of an ``lk.pii.*`` attribute."""


class PiiLogFilter(logging.Filter):
    """Replaces every ``lk.pii.*`` attribute of a log record (caller text, tool arguments).

    LiveKit marks what a caller said, tool-call arguments and model output in its DEBUG records
    the same way it marks span attributes (``extra={"lk.pii.text": ...}``), and a JSON log
    handler prints every extra. Installed on the loggers themselves, so a record is redacted
    where it is made, in the job process, before any handler or LiveKit's log queue to the
    main process sees it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        for key in [key for key in record.__dict__ if is_pii_attribute(key)]:
            record.__dict__[key] = REDACTED
        return True


_PII_FILTER: Final = PiiLogFilter()
_redacted_loggers: set[str] = set()


def redact_pii_in_logs() -> None:
    """Put :class:`PiiLogFilter` on LiveKit's loggers (``livekit.*``, plugins included) and
    Frontdesk's. Idempotent and cheap; called wherever a process starts serving calls."""
    names = ["livekit", "livekit.agents", "frontdesk"]
    names += [
        name
        for name in logging.root.manager.loggerDict
        if name.startswith(("livekit.", "frontdesk.")) and name not in _redacted_loggers
    ]
    for name in names:
        if name not in _redacted_loggers:
            logging.getLogger(name).addFilter(_PII_FILTER)
            _redacted_loggers.add(name)


def worker_options(port: int | None) -> dict[str, Any]:
    """``WorkerOptions`` keywords serving LiveKit's Prometheus endpoint on ``port`` (None: off).

    Job processes write their figures to a multiprocess directory (``PROMETHEUS_MULTIPROC_DIR``
    when set, else one under the temporary folder) that LiveKit's endpoint aggregates.
    """
    if port is None:
        return {}
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or str(
        Path(tempfile.gettempdir()) / f"frontdesk-prometheus-{port}"
    )
    return {"prometheus_port": port, "prometheus_multiproc_dir": folder}


# --------------------------------------------------------------------------- models


def _component_of(error: object) -> str:
    kind = str(getattr(error, "type", "") or "")
    return kind.removesuffix("_error") or "model"


def watch_session(session: Any, *, workflow: str) -> None:
    """Count the session's model errors and its FallbackAdapters' fallbacks.

    ``session`` is a LiveKit ``AgentSession``: its ``error`` events carry LiveKit's
    ``LLMError``/``STTError``/``TTSError``; a ``FallbackAdapter`` (llm, stt or tts) emits
    ``<component>_availability_changed`` when a provider goes down.
    """
    try:

        def on_error(event: Any) -> None:
            error = getattr(event, "error", None)
            recoverable = "true" if getattr(error, "recoverable", False) else "false"
            MODEL_ERRORS.labels(workflow, _component_of(error), recoverable).inc()

        session.on("error", on_error)
        for component in ("llm", "stt", "tts"):
            model = getattr(session, component, None)
            if model is not None and type(model).__name__ == "FallbackAdapter":
                _watch_fallback(model, component, workflow)
    except Exception:
        logger.debug("session telemetry failed", exc_info=True)


def _watch_fallback(adapter: Any, component: str, workflow: str) -> None:
    def on_change(event: Any) -> None:
        if getattr(event, "available", True):
            return
        provider = getattr(event, component, None)
        label = str(getattr(provider, "label", None) or type(provider).__name__)
        MODEL_FALLBACKS.labels(workflow, component, label).inc()

    adapter.on(f"{component}_availability_changed", on_change)
