"""Fixtures of the operator's-view tests: calls simulated on the default workflow, stored in a
real redis-server (the session-wide one of ``tests/conftest.py``, emptied per test)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from frontdesk.state import RedisSessionStore
from frontdesk.workflows.definition import Workflow, load_workflow
from frontdesk.workflows.runtime import Persistence, ScenarioRunner, TurnResult, load_scenario
from tests.conftest import TEST_CALLER_SECRET

ROOT = Path(__file__).resolve().parents[2]
DEMO_SCENARIO = ROOT / "workflows" / "runtime" / "demo_scenario.toml"


@pytest.fixture(scope="session")
def workflow() -> Workflow:
    return load_workflow(ROOT / "config.toml")


@pytest.fixture
def store(redis_client: Any, make_store: Callable[..., RedisSessionStore]) -> RedisSessionStore:
    return make_store(redis_client, key_prefix="frontdesk")


@pytest.fixture
def persistence(store: RedisSessionStore, workflow: Workflow) -> Persistence:
    return Persistence(
        store=store, settings=workflow.config.state, caller_secret=TEST_CALLER_SECRET
    )


async def play_demo(workflow: Workflow, persistence: Persistence) -> list[TurnResult]:
    """The demo's call (triage, handoff, a refused value, drop, resume, second handoff)."""
    results = await ScenarioRunner(workflow=workflow, persistence=persistence).run(
        load_scenario(DEMO_SCENARIO)
    )
    assert all(result.ok for result in results), [r.failures for r in results if not r.ok]
    return results


@pytest.fixture
def inspector(
    redis_server: Any, workflow: Workflow, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Any]]:
    """``inspector(allow_delete=False, token=None, workflow=...)``: a TestClient of the app,
    reading the test Redis (through ``FRONTDESK_REDIS_URL``, as an operator would point it)."""
    from starlette.testclient import TestClient

    from frontdesk.workflows.inspector import InspectorSettings, create_app
    from frontdesk.workflows.inspector.source import open_source

    monkeypatch.setenv("FRONTDESK_REDIS_URL", redis_server.url)
    clients: list[Any] = []

    def make(**options: Any) -> Any:
        shown: Workflow = options.pop("workflow", workflow)
        settings = InspectorSettings(
            workflow=shown, open_source=lambda: open_source(shown), **options
        )
        client = TestClient(create_app(settings), follow_redirects=False)
        client.__enter__()  # runs the lifespan: the store is opened in the app's own loop
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)
