"""The inspector's pages and API, through Starlette's test client, over a real redis-server
holding sessions made by simulated calls."""

from __future__ import annotations

import base64
import dataclasses
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from frontdesk.errors import SessionNotFoundError
from frontdesk.state import RedisSessionStore
from frontdesk.state.crypto import DATA_KEY_ENV, DataKeys
from frontdesk.state.models import SessionSummary
from frontdesk.workflows.definition import Workflow, parse_workflow
from frontdesk.workflows.inspector.serve import InspectorSetupError, is_loopback, resolve_token
from frontdesk.workflows.inspector.views import session_state
from frontdesk.workflows.runtime import Persistence, start_call
from tests.observability.conftest import ROOT, play_demo

Inspector = Callable[..., Any]
HOSTILE = '<script>alert("x")</script><img src=x onerror="alert(1)">'


async def _demo_session(workflow: Workflow, persistence: Persistence) -> str:
    await play_demo(workflow, persistence)
    sessions = await persistence.store.list_sessions()
    assert len(sessions) == 1
    return sessions[0].session_id


def _handoffs(page: str) -> list[tuple[str, str]]:
    return re.findall(r'<li class="marker handoff" data-from="([^"]*)" data-to="([^"]*)"', page)


async def test_the_sessions_list_shows_the_demo_call(
    workflow: Workflow, persistence: Persistence, inspector: Inspector
) -> None:
    session_id = await _demo_session(workflow, persistence)
    client = inspector()
    page = client.get("/")
    assert page.status_code == 200
    assert f'data-sid="{session_id}"' in page.text
    assert "1 session<" in page.text
    rows = client.get("/api/sessions").json()["sessions"]
    assert [(r["session_id"], r["agent"], r["workflow"], r["turns"]) for r in rows] == [
        (session_id, "sales", "acme-broadband", 6)
    ]
    # The last connection ended normally, within the resume window: resumable.
    assert rows[0]["state"] == "resumable"
    assert rows[0]["caller_hash"] and len(rows[0]["caller_hash"]) == 64


async def test_search_and_state_filters(
    workflow: Workflow, persistence: Persistence, inspector: Inspector
) -> None:
    session_id = await _demo_session(workflow, persistence)
    client = inspector()
    assert client.get("/api/sessions", params={"q": session_id[:6]}).json()["sessions"]
    assert client.get("/api/sessions", params={"q": "SALES"}).json()["sessions"]
    assert client.get("/api/sessions", params={"q": "nobody-matches"}).json()["sessions"] == []
    assert client.get("/api/sessions", params={"state": "resumable"}).json()["sessions"]
    assert client.get("/api/sessions", params={"state": "live"}).json()["sessions"] == []
    html = client.get("/", params={"q": "nobody-matches"}).text
    assert f'data-sid="{session_id}"' not in html


async def test_the_session_page_shows_agents_handoffs_tools_data_and_resume(
    workflow: Workflow, persistence: Persistence, inspector: Inspector
) -> None:
    session_id = await _demo_session(workflow, persistence)
    page = inspector().get(f"/sessions/{session_id}").text
    assert _handoffs(page) == [("receptionist", "support"), ("support", "sales")]
    assert "reason: The caller has a problem: an outage" in page
    assert "context: full" in page and "context: last:6" in page
    # each agent line carries its own agent and colour class
    agents = re.findall(
        r'<li class="turn agent (agent-\d) " data-agent="(\w+)"|'
        r'<li class="turn agent (agent-\d)" data-agent="(\w+)"',
        page,
    )
    spoken = [(a or c, b or d) for a, b, c, d in agents]
    assert spoken[0] == ("agent-0", "receptionist")
    assert ("agent-1", "support") in spoken and ("agent-2", "sales") in spoken
    assert spoken[-1] == ("agent-2", "sales")
    assert "☎ the caller came back: resumed on" in page
    assert "⚙ record_account_number" in page and "tool-error" in page
    assert "account_number = •••" in page and "AC-48213" not in page  # sensitive
    assert re.search(r"reply \d+ ms", page)
    assert "scenario finished" in page and "caller dropped" in page  # the two connections
    entries = inspector().get(f"/api/sessions/{session_id}").json()["entries"]
    kinds = [e["kind"] for e in entries]
    assert kinds[0] == "start" and kinds.count("handoff") == 2 and kinds.count("resume") == 1
    said = [(e.get("agent"), e["text"]) for e in entries if e["kind"] == "caller"]
    assert said[0] == ("receptionist", "hi, my internet is down")
    assert said[-1] == ("sales", "94103")


async def test_caller_text_is_escaped_everywhere(
    workflow: Workflow, persistence: Persistence, inspector: Inspector
) -> None:
    call = await start_call(
        workflow=workflow, caller_identity="+15550001111", persistence=persistence
    )
    await call.session.run(user_input=HOSTILE)
    await call.session.run(user_input="my internet is down " + HOSTILE)
    await call.aclose("caller hung up")
    client = inspector()
    for path in ("/", f"/sessions/{call.session_id}", "/workflow"):
        page = client.get(path)
        assert page.status_code == 200
        assert "<script>alert" not in page.text and "<img src=x" not in page.text, path
        assert page.headers["content-security-policy"].startswith("default-src 'none'")
    page = client.get(f"/sessions/{call.session_id}").text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    exported = client.get(f"/sessions/{call.session_id}/export.json")
    assert exported.headers["content-type"].startswith("application/json")
    said = [
        " ".join(item.get("content") or [])
        for item in exported.json()["items"]
        if item.get("role") == "user"
    ]
    assert said[0] == HOSTILE  # the export keeps it as data


async def test_config_text_is_escaped_on_the_workflow_page(
    redis_server: Any, inspector: Inspector
) -> None:
    text = (ROOT / "config.toml").read_text()
    hostile = parse_workflow(
        text.replace(
            'when = "The caller wants to change or upgrade their plan"',
            'when = "The caller wants <b onmouseover=alert(1)>more</b> & faster"',
        ),
        source="hostile.toml",
    )
    page = inspector(workflow=hostile).get("/workflow").text
    assert "<b onmouseover" not in page
    assert "&lt;b onmouseover=alert(1)&gt;more&lt;/b&gt; &amp; faster" in page


async def test_sessions_update_while_a_call_runs(
    workflow: Workflow, persistence: Persistence, inspector: Inspector
) -> None:
    client = inspector()
    call = await start_call(
        workflow=workflow, caller_identity="+15550002222", persistence=persistence
    )
    try:
        await call.session.run(user_input="hi, my internet is down")
        assert await call.flush(5.0)
        (row,) = client.get("/api/sessions").json()["sessions"]
        assert (row["state"], row["agent"], row["turns"]) == ("live", "support", 1)
        await call.session.run(user_input="it's AC-48213")
        assert await call.flush(5.0)
        (row,) = client.get("/api/sessions").json()["sessions"]
        assert (row["state"], row["turns"]) == ("live", 2)
    finally:
        await call.aclose("caller dropped")
    (row,) = client.get("/api/sessions").json()["sessions"]
    assert row["state"] == "dropped"


async def test_the_inspector_is_read_only_without_allow_delete(
    workflow: Workflow, persistence: Persistence, inspector: Inspector
) -> None:
    session_id = await _demo_session(workflow, persistence)
    client = inspector()
    assert 'id="delete"' not in client.get(f"/sessions/{session_id}").text
    assert client.get(f"/sessions/{session_id}/delete").status_code == 403
    refused = client.post(f"/sessions/{session_id}/delete", data={"confirm": session_id})
    assert refused.status_code == 403
    assert (await persistence.store.load(session_id)).session_id == session_id


async def test_delete_needs_the_confirmation_form(
    workflow: Workflow, persistence: Persistence, inspector: Inspector
) -> None:
    session_id = await _demo_session(workflow, persistence)
    client = inspector(allow_delete=True)
    assert 'id="delete"' in client.get(f"/sessions/{session_id}").text
    confirm = client.get(f"/sessions/{session_id}/delete").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', confirm)
    assert csrf is not None
    # A forged post (no form token, as from another site) deletes nothing.
    forged = client.post(f"/sessions/{session_id}/delete", data={"confirm": session_id})
    assert forged.status_code == 400
    assert (await persistence.store.load(session_id)).session_id == session_id
    done = client.post(
        f"/sessions/{session_id}/delete", data={"confirm": session_id, "csrf": csrf.group(1)}
    )
    assert done.status_code == 303
    with pytest.raises(SessionNotFoundError):
        await persistence.store.load(session_id)
    assert client.get("/api/sessions").json()["sessions"] == []


async def test_a_token_guards_every_page(
    workflow: Workflow, persistence: Persistence, inspector: Inspector
) -> None:
    await _demo_session(workflow, persistence)
    token = "t0ken-" + "x" * 20
    client = inspector(token=token)
    for path in ("/", "/api/sessions", "/workflow", "/static/inspector.js"):
        assert client.get(path).status_code == 401, path
    assert (
        client.get("/", headers={"Authorization": "Bearer wrong-token-xxxxxxxx"}).status_code == 401
    )
    assert (
        client.get("/api/sessions", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    )
    entered = client.get("/", params={"token": token})
    assert entered.status_code == 303 and "token=" not in entered.headers["location"]
    assert "samesite=strict" in entered.headers["set-cookie"].lower()
    assert client.get("/").status_code == 200  # the cookie now carries it


def test_binding_beyond_loopback_needs_a_token() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.10")
    assert resolve_token("127.0.0.1", None) is None
    with pytest.raises(InspectorSetupError, match="a token is required"):
        resolve_token("0.0.0.0", None)
    with pytest.raises(InspectorSetupError, match="at least 16"):
        resolve_token("0.0.0.0", "short")
    assert resolve_token("0.0.0.0", "a-long-enough-token-123") == "a-long-enough-token-123"


def test_frontdesk_inspect_refuses_an_open_bind_without_a_token(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "frontdesk", "inspect", "--host", "0.0.0.0", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert done.returncode == 2, done.stderr
    assert "a token is required" in done.stderr
    assert "Traceback" not in done.stderr


async def test_a_quarantined_session_is_listed_and_shown(
    workflow: Workflow, persistence: Persistence, inspector: Inspector, redis_client: Any
) -> None:
    session_id = await _demo_session(workflow, persistence)
    store = persistence.store
    assert isinstance(store, RedisSessionStore)
    await redis_client.hset(store.session_keys(session_id)[0], "schema_version", "99")
    await store.quarantine(session_id, "test: damaged on purpose")
    client = inspector()
    (row,) = client.get("/api/sessions").json()["sessions"]
    assert (row["session_id"], row["state"], row["workflow"]) == (
        session_id,
        "quarantined",
        "acme-broadband",
    )
    page = client.get(f"/sessions/{session_id}")
    assert page.status_code == 200 and "moved aside" in page.text
    assert client.get("/sessions/no-such-session").status_code == 404


async def test_the_workflow_page_draws_every_agent_and_counts_routes(
    workflow: Workflow, persistence: Persistence, inspector: Inspector
) -> None:
    await _demo_session(workflow, persistence)
    client = inspector()
    page = client.get("/workflow").text
    svg = page[page.index("<svg") : page.index("</svg>")]
    drawn = re.findall(r'<g class="agent[^"]*" id="agent-(\w+)" data-agent="\w+">', svg)
    assert sorted(drawn) == sorted(workflow.config.agents)
    for name in workflow.config.agents:
        assert '<text class="agent-name" x="' in svg and f">{name}</text>" in svg
    counts = dict(
        ((a, b), int(c))
        for a, b, c in re.findall(r'data-from="(\w+)" data-to="(\w+)" data-count="(\d+)"', svg)
    )
    assert counts[("receptionist", "support")] == 1 and counts[("support", "sales")] == 1
    assert counts[("sales", "support")] == 0
    assert "The caller wants to change or upgrade their plan" in svg
    assert "3 agents, 6 routes, 2 caller-data fields" in page
    api = client.get("/api/workflow").json()
    assert api["sessions_counted"] == 1
    assert {(r["from"], r["to"]): r["taken"] for r in api["routes"]} == counts


async def test_validation_warnings_are_marked_on_the_graph(inspector: Inspector) -> None:
    text = (ROOT / "config.toml").read_text()
    # sales can no longer go back: a warning (calls that reach it stay there), not an error
    start = text.index("[[agents.sales.handoffs]]")
    terminal = parse_workflow(text[:start] + text[text.index("[providers]") :], source="t.toml")
    assert terminal.warnings
    page = inspector(workflow=terminal).get("/workflow").text
    assert re.search(r'<g class="agent[^"]* warning[^"]*" id="agent-sales"', page)
    assert '<li class="warning" data-agent="sales">' in page
    assert "has no way back" in page


def _summary(**changes: Any) -> SessionSummary:
    values: dict[str, Any] = {
        "session_id": "s1",
        "workflow": "w",
        "caller_hash": None,
        "agent": "a",
        "turns": 1,
        "created_at": 1000.0,
        "updated_at": 1000.0,
        "item_count": 3,
        "ended": False,
    }
    values.update(changes)
    return SessionSummary(**values)


def test_session_states_are_named_from_lease_records_and_the_resume_window() -> None:
    now, window = 1100.0, 900.0
    hung_up = {"reason": "caller hung up", "ended_at": 1000.0}
    dropped = {"reason": "caller dropped", "ended_at": 1000.0}
    state = session_state
    assert state(_summary(), live=True, last_call=None, now=now, resume_window=window) == "live"
    assert (
        state(_summary(ended=True), live=False, last_call=hung_up, now=now, resume_window=window)
        == "ended"
    )
    assert (
        state(_summary(), live=False, last_call=hung_up, now=3000.0, resume_window=window)
        == "ended"
    )
    assert (
        state(_summary(), live=False, last_call=hung_up, now=now, resume_window=window)
        == "resumable"
    )
    assert (
        state(_summary(), live=False, last_call=dropped, now=now, resume_window=window) == "dropped"
    )
    # no record for the last connection (its worker died) is a drop too
    assert state(_summary(), live=False, last_call=None, now=now, resume_window=window) == "dropped"
    stale = {"reason": "caller hung up", "ended_at": 900.0}
    assert (
        state(_summary(), live=False, last_call=stale, now=now, resume_window=window) == "dropped"
    )


def test_frontdesk_demo_then_inspect_shows_the_demo_call(
    tmp_path: Path, workflow: Workflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    from starlette.testclient import TestClient

    from frontdesk.workflows.inspector import InspectorSettings, create_app
    from frontdesk.workflows.inspector.source import open_source

    state_dir = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if k != "FRONTDESK_REDIS_URL"}
    env["FRONTDESK_STATE_DIR"] = str(state_dir)
    for _ in range(2):  # a second demo replaces the first demo's call
        demo = subprocess.run(
            [sys.executable, "-m", "frontdesk", "demo"],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
            env=env,
        )
        assert demo.returncode == 0, demo.stdout + demo.stderr
        assert "inspect` shows it" in demo.stdout
    monkeypatch.delenv("FRONTDESK_REDIS_URL", raising=False)
    monkeypatch.setenv("FRONTDESK_STATE_DIR", str(state_dir))
    settings = InspectorSettings(workflow=workflow, open_source=lambda: open_source(workflow))
    with TestClient(create_app(settings)) as client:
        (row,) = client.get("/api/sessions").json()["sessions"]
        assert (row["agent"], row["turns"]) == ("sales", 6)
        page = client.get(f"/sessions/{row['session_id']}").text
        assert _handoffs(page) == [("receptionist", "support"), ("support", "sales")]
        assert f"data in {state_dir}" in page


async def test_sensitive_caller_data_is_masked_on_the_session_page(
    persistence: Persistence, inspector: Inspector
) -> None:
    marked = parse_workflow((ROOT / "config.toml").read_text(), source="config.toml")
    assert marked.config.caller_data["account_number"].sensitive
    persistence = dataclasses.replace(persistence, settings=marked.config.state)
    await play_demo(marked, persistence)
    (summary,) = await persistence.store.list_sessions()
    page = inspector(workflow=marked).get(f"/sessions/{summary.session_id}").text
    assert "AC-48213" not in page
    assert "account_number = •••" in page
    assert "94103" in page  # not sensitive


@pytest.mark.parametrize("key_shown", [True, False], ids=["with the data key", "without it"])
async def test_sealed_values_are_opened_and_masked_never_shown_as_ciphertext(
    persistence: Persistence,
    inspector: Inspector,
    workflow: Workflow,
    monkeypatch: pytest.MonkeyPatch,
    key_shown: bool,
) -> None:
    """The caller's "sorry, it's AC-48213" is stored sealed: with FRONTDESK_DATA_KEY the page
    opens it and masks the value; without the key the whole line is masked. Neither shows the
    value or a ciphertext."""
    key = base64.b64encode(os.urandom(32)).decode()
    assert workflow.config.caller_data["account_number"].sensitive
    sealing = dataclasses.replace(persistence, data_keys=DataKeys.parse(key))
    await play_demo(workflow, sealing)
    monkeypatch.setenv(
        DATA_KEY_ENV, key if key_shown else base64.b64encode(os.urandom(32)).decode()
    )
    (summary,) = await persistence.store.list_sessions()
    page = inspector().get(f"/sessions/{summary.session_id}").text
    assert "AC-48213" not in page and "48213" not in page
    assert "fdenc:" not in page
    assert ("sorry, it" in page) is key_shown  # the caller's line, opened, value masked
    assert "•••" in page
