"""What to do when a caller connects and a saved session may exist: pure decision logic.

Kept free of I/O and of LiveKit so every rule can be tested in microseconds and read in one
place. The worker loads the caller's latest session (if any), calls :func:`plan_resume` and
acts on the plan: start fresh, resume on the saved agent, or restart at the workflow's start
agent keeping only what the caller already told us (their caller data).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .models import SessionState

ResumeKind = Literal["fresh", "resume", "restart_at_start"]


class ResumePlan(BaseModel):
    """The decision for a connecting caller, with the reason spelled out for logs."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=False)

    kind: ResumeKind = Field(
        description="'fresh': new session; 'resume': continue the saved session on its agent; "
        "'restart_at_start': a new session at the start agent, seeded with the saved caller data."
    )
    state: SessionState | None = Field(
        description="What the call continues from (None for 'fresh'). For 'restart_at_start' it "
        "keeps only the caller data: current_agent is the start agent, and greetings, handoff "
        "trail and history are empty (the caller is greeted anew)."
    )
    agent: str = Field(description="The agent the call starts on.")
    reason: str = Field(description="Why, in words, for logs and the CLI.")


def plan_resume(
    state: SessionState | None,
    *,
    now: float,
    resume_window: float,
    workflow_hash: str,
    known_agents: set[str],
    start_agent: str,
) -> ResumePlan:
    """Decide how a connecting caller continues.

    * no saved state, an ended call, or last activity more than ``resume_window`` seconds
      ago → ``fresh`` on ``start_agent``;
    * the saved agent still exists → ``resume`` on it (a changed workflow hash is noted in the
      reason: the agent is there, so the conversation can go on);
    * the saved agent no longer exists (the workflow changed) → ``restart_at_start``: a new
      session at ``start_agent`` that keeps the caller data, so the caller is not asked again,
      and nothing else: the start agent greets them anew (a greeted set without that greeting
      would leave the caller in silence), and the old history, whose tool calls name an agent
      that is gone, is not carried over.
    """
    if start_agent not in known_agents:
        raise ValueError(f"start agent {start_agent!r} is not one of the known agents")
    if state is None:
        return ResumePlan(kind="fresh", state=None, agent=start_agent, reason="no saved session")
    if state.ended:
        return ResumePlan(
            kind="fresh",
            state=None,
            agent=start_agent,
            reason=f"session {state.session_id} ended normally; starting a new one",
        )
    age = now - state.updated_at
    if age > resume_window:
        return ResumePlan(
            kind="fresh",
            state=None,
            agent=start_agent,
            reason=f"session {state.session_id} was last active {age:.0f} s ago, beyond the "
            f"resume window of {resume_window:.0f} s",
        )
    hash_changed = state.workflow_hash != workflow_hash
    change = (
        f"workflow hash changed ({state.workflow_hash} -> {workflow_hash})" if hash_changed else ""
    )
    if state.current_agent in known_agents:
        reason = f"resuming session {state.session_id} on {state.current_agent!r}"
        if hash_changed:
            reason += f" ({change}; the agent still exists)"
        return ResumePlan(kind="resume", state=state, agent=state.current_agent, reason=reason)
    why = f"agent {state.current_agent!r} no longer exists"
    if hash_changed:
        why = f"{change}: {why}"
    return ResumePlan(
        kind="restart_at_start",
        state=state.model_copy(
            update={"current_agent": start_agent, "greeted": [], "handoff_trail": [], "items": []}
        ),
        agent=start_agent,
        reason=f"{why}; restarting session {state.session_id} at {start_agent!r} "
        "with its caller data kept",
    )
