"""No raw caller identity in any log line, at any level (issue 13, finding 4).

The worker's own lines (a call starting, a drop, a rejoin, a hang-up, the summary) and every
line of a real persisted call and its resume (Frontdesk's, LiveKit's, redis-py's) are captured at
DEBUG and scanned for the phone number in every form; a hash prefix names the caller instead.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from livekit import rtc

from frontdesk.state import RedisSessionStore
from frontdesk.workflows.runtime import start_call
from tests.worker.test_decisions import remote_participant
from tests.worker.test_entrypoint import FakeCall, Harness, run_entrypoint

from .support import ROOT, SECRET, persistence, sensitive_workflow

NUMBER = "+15557000009"
FORMS = (NUMBER, NUMBER[1:], NUMBER[-10:], "555-700-0009", "5557000009")


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''} {r.args!r} {getattr(r, '__dict__', {})!r}"
        for r in caplog.records
    )


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    for name in ("livekit", "livekit.agents", "frontdesk", "redis", "asyncio"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


async def test_the_workers_log_lines_name_no_caller(
    monkeypatch: pytest.MonkeyPatch, debug_logs: pytest.LogCaptureFixture
) -> None:
    from frontdesk.workflows.definition import load_workflow
    from frontdesk.workflows.worker import JobSetup

    workflow = load_workflow(ROOT / "config.toml")
    setup = JobSetup(workflow=workflow, profile_name="offline")
    harness = Harness(monkeypatch, FakeCall())
    [participant] = harness.room.remote_participants.values()
    participant.identity = NUMBER
    ctx = await run_entrypoint(harness, setup)
    drop = remote_participant(NUMBER, disconnect_reason=rtc.DisconnectReason.SIGNAL_CLOSE)
    harness.room_handler("participant_disconnected")(drop)
    harness.room_handler("participant_connected")(remote_participant(NUMBER))
    hang_up = remote_participant(NUMBER, disconnect_reason=rtc.DisconnectReason.CLIENT_INITIATED)
    harness.room_handler("participant_disconnected")(hang_up)
    await ctx._shutdown_callbacks[0]("caller left (CLIENT_INITIATED)")
    logged = _logged(debug_logs)
    assert "call for caller#" in logged and "dropped" in logged and "rejoined" in logged
    assert not [form for form in FORMS if form in logged]


async def test_a_persisted_call_and_its_resume_log_no_caller(
    redis_client: Any, debug_logs: pytest.LogCaptureFixture
) -> None:
    workflow = sensitive_workflow()
    store = RedisSessionStore(
        redis_client, key_prefix="frontdesk", ttl=3600, lease_ttl=5, caller_secret=SECRET
    )
    p = persistence(store, redis_client, workflow)
    call = await start_call(workflow=workflow, caller_identity=NUMBER, persistence=p)
    await call.session.run(user_input="hi, my internet is down")
    await call.session.run(user_input="AC-48213")
    await call.aclose("caller dropped")
    again = await start_call(workflow=workflow, caller_identity=NUMBER, persistence=p)
    await again.session.run(user_input="AC-11111")
    await again.aclose("caller left", hung_up=True)
    logged = _logged(debug_logs)
    assert len(debug_logs.records) > 10
    assert not [form for form in FORMS if form in logged]
    messages = "\n".join(r.getMessage() for r in debug_logs.records)
    assert "AC-48213" not in messages  # nor the sensitive value, in any message
    # nor in any attribute of any record: LiveKit's DEBUG records carry the caller's words and
    # the tool arguments as `lk.pii.*` extras, which a JSON log handler would print
    assert "AC-48213" not in logged and "internet is down" not in logged
    marked = [r for r in debug_logs.records if "lk.pii.text" in r.__dict__]
    assert marked, "LiveKit logged the conversation (the filter has something to redact)"
    assert {r.__dict__["lk.pii.text"] for r in marked} == {"[redacted]"}
