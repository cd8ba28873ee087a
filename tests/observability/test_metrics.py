"""Frontdesk's metrics in LiveKit's Prometheus endpoint, and its spans on LiveKit's tracer."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import aiohttp
import pytest
from livekit.agents.telemetry import set_tracer_provider
from livekit.agents.telemetry.http_server import HttpServer
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from frontdesk import telemetry
from frontdesk.workflows.definition import Workflow
from frontdesk.workflows.runtime import Persistence
from tests.observability.conftest import play_demo

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


SCRAPED: list[str] = []


async def _scrape() -> Samples:
    """The text LiveKit's worker serves on ``/metrics``, from LiveKit's own HTTP server."""
    server = HttpServer("127.0.0.1", _free_port())
    await server.start()
    try:
        async with (
            aiohttp.ClientSession() as client,
            client.get(f"http://127.0.0.1:{server.port}/metrics") as response,
        ):
            assert response.status == 200
            text = await response.text()
            SCRAPED.append(text)
    finally:
        await server.aclose()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    set_tracer_provider(provider, allow_pii=True)
    yield exporter
    provider.shutdown()


async def test_a_simulated_call_shows_handoff_persist_and_resume_series(
    workflow: Workflow, persistence: Persistence
) -> None:
    before = await _scrape()
    await play_demo(workflow, persistence)
    after = await _scrape()

    def delta(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    base = {"workflow": "acme-broadband"}
    assert (
        delta(
            "frontdesk_handoffs_total",
            **base,
            from_agent="receptionist",
            to_agent="support",
            context="full",
        )
        == 1
    )
    assert (
        delta(
            "frontdesk_handoffs_total",
            **base,
            from_agent="support",
            to_agent="sales",
            context="last:6",
        )
        == 1
    )
    assert (
        delta(
            "frontdesk_handoffs_total",
            **base,
            from_agent="sales",
            to_agent="support",
            context="full",
        )
        == 0
    )
    # The first connection starts fresh, the second resumes the dropped call.
    assert delta("frontdesk_resumes_total", **base, outcome="fresh") == 1
    assert delta("frontdesk_resumes_total", **base, outcome="resumed") == 1
    assert delta("frontdesk_resumes_total", **base, outcome="expired") == 0
    writes = delta("frontdesk_persist_seconds_count", operation="append")
    assert writes >= 5, "every agent turn is one acknowledged append"
    assert delta("frontdesk_persist_seconds_sum", operation="append") > 0
    assert delta("frontdesk_persist_items_total", operation="append") >= 20
    assert _value(after, "frontdesk_persist_queue_items") == 0, "nothing left waiting"
    # Every family Frontdesk documents is served, with its help text.
    for family in telemetry.METRIC_NAMES:
        assert f"# HELP {family} " in SCRAPED[-1], family


async def test_handoff_persist_and_resume_spans_keep_caller_text_in_pii_attributes(
    workflow: Workflow, persistence: Persistence, spans: InMemorySpanExporter
) -> None:
    await play_demo(workflow, persistence)
    finished: list[ReadableSpan] = list(spans.get_finished_spans())
    by_name: dict[str, list[ReadableSpan]] = {}
    for span in finished:
        by_name.setdefault(span.name, []).append(span)

    handoffs = by_name["frontdesk.handoff"]
    routes = [
        (s.attributes["frontdesk.handoff.from"], s.attributes["frontdesk.handoff.to"])
        for s in handoffs
        if s.attributes
    ]
    assert routes == [("receptionist", "support"), ("support", "sales")]
    first = handoffs[0].attributes or {}
    assert first[telemetry.PII_CALLER_TEXT] == "hi, my internet is down"
    second = handoffs[1].attributes or {}
    assert json.loads(str(second[telemetry.PII_CALLER_DATA])) == {"account_number": "AC-48213"}
    assert [
        (s.attributes or {})["frontdesk.resume.outcome"] for s in by_name["frontdesk.resume"]
    ] == [
        "fresh",
        "resumed",
    ]
    assert len(by_name["frontdesk.persist"]) >= 5

    # Caller words and data appear in no attribute but the lk.pii.* ones.
    secrets = ("internet is down", "AC-48213", "94103", "upgrade to a faster plan")
    for span in finished:
        if not span.name.startswith("frontdesk."):
            continue
        for key, value in (span.attributes or {}).items():
            if any(secret in str(value) for secret in secrets):
                assert key.startswith("lk.pii."), (span.name, key)


async def test_livekit_redaction_drops_the_caller_text(
    workflow: Workflow, persistence: Persistence
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    set_tracer_provider(provider, allow_pii=False)  # LiveKit strips PII before exporters
    try:
        await play_demo(workflow, persistence)
    finally:
        provider.shutdown()
    handoffs = [s for s in exporter.get_finished_spans() if s.name == "frontdesk.handoff"]
    assert len(handoffs) == 2
    for span in handoffs:
        attributes = span.attributes or {}
        assert attributes["frontdesk.handoff.to"] in ("support", "sales")
        assert not any(key.startswith("lk.pii.") for key in attributes)


def test_resume_outcomes_are_named_from_the_plan() -> None:
    outcome = telemetry.resume_outcome
    assert outcome(kind="fresh", had_state=False, ended=False, quarantined=False) == "fresh"
    assert outcome(kind="fresh", had_state=True, ended=True, quarantined=False) == "fresh"
    assert outcome(kind="fresh", had_state=True, ended=False, quarantined=False) == "expired"
    assert outcome(kind="fresh", had_state=False, ended=False, quarantined=True) == "quarantined"
    assert outcome(kind="resume", had_state=True, ended=False, quarantined=False) == "resumed"
    assert (
        outcome(kind="restart_at_start", had_state=True, ended=False, quarantined=False)
        == "restarted"
    )


def test_the_worker_serves_metrics_only_when_a_port_is_configured(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    assert telemetry.worker_options(None) == {}
    options = telemetry.worker_options(9464)
    assert options["prometheus_port"] == 9464
    assert "frontdesk-prometheus-9464" in options["prometheus_multiproc_dir"]
