"""An agent's ``on_exit`` when no handoff is pending: the call ending, not a transfer."""

from __future__ import annotations

import logging

import pytest

from frontdesk.workflows.definition import Workflow


async def test_an_agent_leaving_without_a_pending_handoff_exits_cleanly(
    workflow: Workflow, open_session, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        async with open_session(workflow) as (session, _):
            await session.run(user_input="hello")  # no route matches: nobody is handed over
            assert session.userdata.pending_handoff is None
        # the session has closed: the receptionist's on_exit ran with nothing to move
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
    assert session.userdata.handoff_trail == []
