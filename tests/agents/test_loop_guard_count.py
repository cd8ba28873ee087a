"""The loop guard's count: the handoffs made since the caller last spoke, each counted once."""

from __future__ import annotations

from livekit.agents.llm import ChatContext

from frontdesk.agents.handoff import handoffs_since_caller_spoke
from frontdesk.agents.userdata import CallerData
from frontdesk.state.models import HandoffEntry

SPOKE_AT = 1_700_000_100.0


def _handoff(at: float, to_agent: str) -> HandoffEntry:
    return HandoffEntry(from_agent="receptionist", to_agent=to_agent, reason="-", at=at)


def _history_with_caller_speaking_at(at: float) -> ChatContext:
    history = ChatContext.empty()
    history.add_message(role="assistant", content="How can I help?", created_at=at - 5)
    history.add_message(role="user", content="my internet is down", created_at=at)
    history.add_message(role="assistant", content="Let me get you to support.", created_at=at + 1)
    return history


def test_each_handoff_after_the_callers_latest_utterance_counts_once() -> None:
    data = CallerData(
        session_id="s-1",
        handoff_trail=[
            _handoff(SPOKE_AT - 60, "sales"),  # an earlier turn: not counted
            _handoff(SPOKE_AT + 2, "support"),
            _handoff(SPOKE_AT + 3, "sales"),
            _handoff(SPOKE_AT + 4, "support"),
        ],
    )

    assert handoffs_since_caller_spoke(data, _history_with_caller_speaking_at(SPOKE_AT)) == 3


def test_before_the_caller_has_spoken_every_handoff_counts() -> None:
    data = CallerData(
        session_id="s-1", handoff_trail=[_handoff(SPOKE_AT, "support"), _handoff(SPOKE_AT, "sales")]
    )
    history = ChatContext.empty()
    history.add_message(role="assistant", content="Thanks for calling.", created_at=SPOKE_AT - 1)

    assert handoffs_since_caller_spoke(data, history) == 2


def test_no_handoff_since_the_caller_spoke_counts_zero() -> None:
    data = CallerData(session_id="s-1", handoff_trail=[_handoff(SPOKE_AT - 1, "support")])

    assert handoffs_since_caller_spoke(data, _history_with_caller_speaking_at(SPOKE_AT)) == 0
