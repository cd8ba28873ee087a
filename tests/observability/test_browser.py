"""The inspector in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

``frontdesk inspect`` runs as a subprocess against a real redis-server holding the demo's call;
the browser opens the sessions list, opens the session, checks the handoff markers and the
agent labels, opens the workflow page and finds every agent in the SVG. Screenshots go to the
test's tmp folder (``FRONTDESK_DOCS_SCREENSHOTS=1`` also copies them into ``docs/``).

No browser is downloaded: Playwright is pointed at ``/usr/bin/chromium``. Outside CI a missing
Chromium skips the test with a loud reason; in CI (``CI=true``) it fails instead.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from frontdesk.state import EmbeddedRedis, RedisSessionStore, connect_redis
from frontdesk.workflows.definition import Workflow, load_workflow
from frontdesk.workflows.runtime import Persistence
from tests.conftest import TEST_CALLER_SECRET
from tests.observability.conftest import ROOT, play_demo

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI must run the browser test: {reason}")
    print(f"\n*** SKIPPING the browser test: {reason} ***", file=sys.stderr)
    pytest.skip(f"LOUD SKIP: {reason} (apt-get install chromium; CI installs it)")


@pytest.fixture(scope="module")
def playwright_module() -> Any:
    if not CHROMIUM.exists():
        _missing(f"{CHROMIUM} not found")
    try:
        from playwright import sync_api
    except ImportError as exc:
        _missing(f"the playwright package is not installed ({exc})")
    return sync_api


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _seed(url: str, workflow: Workflow) -> str:
    client = connect_redis(url)
    await client.flushall()
    store = RedisSessionStore(client, key_prefix="frontdesk", caller_secret=TEST_CALLER_SECRET)
    persistence = Persistence(
        store=store, settings=workflow.config.state, caller_secret=TEST_CALLER_SECRET
    )
    try:
        await play_demo(workflow, persistence)
        (summary,) = await store.list_sessions()
        return summary.session_id
    finally:
        await client.aclose()


@pytest.fixture
def served(redis_server: EmbeddedRedis, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """``frontdesk inspect`` on a free port over the demo's call: (base URL, session id)."""
    workflow = load_workflow(ROOT / "config.toml")
    session_id = asyncio.run(_seed(redis_server.url, workflow))
    port = _free_port()
    env = {**os.environ, "FRONTDESK_REDIS_URL": redis_server.url}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "frontdesk",
            "inspect",
            "--config",
            str(ROOT / "config.toml"),
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "inspect.log", "wb"),  # noqa: SIM115
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail((tmp_path / "inspect.log").read_text())
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("frontdesk inspect did not start listening within 60 s")
        yield f"http://127.0.0.1:{port}", session_id
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_an_operator_follows_the_demo_call_in_chromium(
    playwright_module: Any, served: tuple[str, str], tmp_path: Path
) -> None:
    base, session_id = served
    workflow = load_workflow(ROOT / "config.toml")
    with playwright_module.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))

            page.goto(base + "/")
            row = page.locator(f'tr[data-sid="{session_id}"]')
            row.wait_for()
            assert row.locator(".agent-cell").inner_text() == "sales"
            assert row.locator(".state").inner_text() == "resumable"
            # the list refreshes itself (polling): wait for one refresh to land
            page.locator("body[data-refreshed]").wait_for(state="attached", timeout=10_000)
            page.locator(f'tr[data-sid="{session_id}"]').wait_for()
            page.screenshot(path=str(tmp_path / "inspector-sessions.png"))

            page.locator(f'tr[data-sid="{session_id}"] td.sid a').click()
            page.wait_for_url(f"**/sessions/{session_id}")
            markers = page.locator("li.marker.handoff")
            assert markers.count() == 2
            first, second = markers.nth(0), markers.nth(1)
            assert first.locator(".from").inner_text() == "receptionist"
            assert first.locator(".to").inner_text() == "support"
            assert "context: full" in first.inner_text()
            assert second.locator(".from").inner_text() == "support"
            assert second.locator(".to").inner_text() == "sales"
            labels = page.locator("li.turn.agent .agent-label").all_inner_texts()
            assert labels[0] == "receptionist" and labels[-1] == "sales"
            # the line after each marker is the new agent's
            after = page.locator("li.marker.handoff + li.turn.agent .agent-label").all_inner_texts()
            assert after == ["support", "sales"]
            # agents are told apart by colour, not only by name
            colours = {
                name: page.locator(
                    f'li.turn.agent[data-agent="{name}"] .agent-label'
                ).first.evaluate("e => getComputedStyle(e).color")
                for name in ("receptionist", "support", "sales")
            }
            assert len(set(colours.values())) == 3, colours
            page.screenshot(path=str(tmp_path / "inspector-session.png"), full_page=True)

            page.get_by_role("link", name="Workflow").click()
            page.wait_for_url("**/workflow")
            svg = page.locator("svg.workflow-graph")
            for name in workflow.config.agents:
                agent = svg.locator(f'g.agent[data-agent="{name}"]')
                assert agent.count() == 1, name
                assert agent.locator("text.agent-name").text_content() == name
                box = agent.bounding_box()
                assert box is not None and box["width"] > 100, name  # drawn, not just present
            taken = svg.locator('g.route[data-from="receptionist"][data-to="support"]')
            assert taken.get_attribute("data-count") == "1"
            page.screenshot(path=str(tmp_path / "inspector-workflow.png"), full_page=True)
            assert errors == []
        finally:
            browser.close()
    for name in ("inspector-sessions.png", "inspector-session.png", "inspector-workflow.png"):
        shot = tmp_path / name
        assert shot.stat().st_size > 10_000
        if os.environ.get("FRONTDESK_DOCS_SCREENSHOTS") and name != "inspector-sessions.png":
            shutil.copy(shot, ROOT / "docs" / name)
