"""plan_resume: the rules that decide how a connecting caller continues."""

from __future__ import annotations

import pytest

from frontdesk.state import SessionState, plan_resume

AGENTS = {"receptionist", "support", "billing"}
NOW = 10_000.0


def saved(**fields: object) -> SessionState:
    values: dict[str, object] = {
        "session_id": "call-1",
        "workflow": "support_line",
        "workflow_hash": "hash-a",
        "current_agent": "support",
        "caller_data": {"account_number": "12345678"},
        "greeted": ["receptionist"],
        "created_at": NOW - 300,
        "updated_at": NOW - 60,
        "items": [{"id": "i1", "type": "message", "role": "user", "content": ["hi"]}],
    }
    values.update(fields)
    return SessionState.model_validate(values)


def plan(state: SessionState | None, **overrides: object):  # type: ignore[no-untyped-def]
    arguments: dict[str, object] = {
        "now": NOW,
        "resume_window": 900.0,
        "workflow_hash": "hash-a",
        "known_agents": AGENTS,
        "start_agent": "receptionist",
    }
    arguments.update(overrides)
    return plan_resume(state, **arguments)  # type: ignore[arg-type]


def test_no_saved_session_starts_fresh_on_the_start_agent() -> None:
    result = plan(None)
    assert (result.kind, result.agent, result.state) == ("fresh", "receptionist", None)
    assert "no saved session" in result.reason


def test_an_ended_call_never_resumes() -> None:
    result = plan(saved(ended=True))
    assert (result.kind, result.agent, result.state) == ("fresh", "receptionist", None)
    assert "ended" in result.reason


def test_a_call_older_than_the_resume_window_starts_fresh() -> None:
    result = plan(saved(updated_at=NOW - 901))
    assert result.kind == "fresh"
    assert "901 s ago" in result.reason and "900 s" in result.reason


def test_a_call_at_the_edge_of_the_window_still_resumes() -> None:
    assert plan(saved(updated_at=NOW - 900)).kind == "resume"


def test_a_recent_call_resumes_on_its_saved_agent_with_its_state() -> None:
    state = saved()
    result = plan(state)
    assert (result.kind, result.agent) == ("resume", "support")
    assert result.state == state
    assert "changed" not in result.reason


def test_a_changed_workflow_whose_agent_still_exists_resumes_and_says_so() -> None:
    result = plan(saved(), workflow_hash="hash-b")
    assert (result.kind, result.agent) == ("resume", "support")
    assert "workflow hash changed (hash-a -> hash-b)" in result.reason


def test_a_removed_agent_restarts_at_start_keeping_caller_data() -> None:
    result = plan(saved(current_agent="retired"), workflow_hash="hash-b")
    assert (result.kind, result.agent) == ("restart_at_start", "receptionist")
    assert result.state is not None
    assert result.state.current_agent == "receptionist"
    assert result.state.caller_data == {"account_number": "12345678"}
    # only the caller data carries over: the start agent greets anew, the old history stays behind
    assert (result.state.greeted, result.state.handoff_trail, result.state.items) == ([], [], [])
    assert "workflow hash changed" in result.reason
    assert "agent 'retired' no longer exists" in result.reason


def test_plan_resume_does_not_modify_the_loaded_state() -> None:
    state = saved(current_agent="retired")
    plan(state)
    assert state.current_agent == "retired"


def test_an_unknown_start_agent_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="start agent"):
        plan(None, start_agent="nobody")
