"""The Grafana dashboard shipped in deploy/grafana/ queries only metrics that exist, by the
labels they have, and shows every metric Frontdesk adds."""

from __future__ import annotations

import json
import re

import prometheus_client

from frontdesk import telemetry
from tests.observability.conftest import ROOT

DASHBOARD = ROOT / "deploy" / "grafana" / "frontdesk-dashboard.json"
SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def _families() -> dict[str, set[str]]:
    """Every metric name in the registry LiveKit serves (Frontdesk's and LiveKit's) → labels."""
    families: dict[str, set[str]] = {}
    for collector in list(prometheus_client.REGISTRY._collector_to_names):  # the served registry
        labels = set(getattr(collector, "_labelnames", ()))
        for name in prometheus_client.REGISTRY._collector_to_names[collector]:
            families[name] = labels
    return families


def _expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    exprs += [
        v["query"]["query"]
        for v in dashboard["templating"]["list"]
        if isinstance(v.get("query"), dict)
    ]
    return exprs


def _metrics_in(expr: str) -> set[str]:
    return set(re.findall(r"\b((?:frontdesk|lk_agents)_[a-z0-9_]+)\b", expr))


def test_every_query_names_a_served_metric_with_its_labels() -> None:
    import livekit.agents.telemetry.metrics  # noqa: F401  (registers LiveKit's own)

    families = _families()
    exprs = _expressions()
    assert len(exprs) >= 10
    for expr in exprs:
        metrics = _metrics_in(expr)
        assert metrics, expr
        labels: set[str] = {"le"}
        for metric in metrics:
            assert metric in families, f"{metric} is not a served metric ({expr})"
            labels |= families[metric]
        used = set()
        for group in re.findall(r"\bby \(([^)]*)\)", expr):
            used |= {label.strip() for label in group.split(",")}
        used |= set(re.findall(r"\{([a-z_]+)=~?", expr))
        assert used <= labels, f"{sorted(used - labels)} are not labels of {metrics}"


def test_the_dashboard_shows_every_frontdesk_metric() -> None:
    queried = set().union(*(_metrics_in(expr) for expr in _expressions()))
    bases = {name.removesuffix(s) for name in queried for s in SUFFIXES if name.endswith(s)}
    for family in telemetry.METRIC_NAMES:
        assert (
            family in queried
            or family.removesuffix("_total") in bases | queried
            or any(q.startswith(family) for q in queried)
        ), f"no panel shows {family}"
