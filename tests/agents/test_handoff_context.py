"""What the next agent inherits: the summary route summarises with the call's model; other
policies never ask a model, even when one is at hand."""

from __future__ import annotations

from livekit.agents.llm import ChatContext

from frontdesk.agents.handoff import context_for_handoff
from frontdesk.agents.offline_brain import OfflineBrain
from frontdesk.agents.prompt import SUMMARY_NOTE_HEADER, SUMMARY_PREFIX
from frontdesk.workflows.definition import ContextPolicy, Workflow


def _call() -> ChatContext:
    ctx = ChatContext.empty()
    ctx.add_message(role="assistant", content="Thanks for calling, how can I help?")
    ctx.add_message(role="user", content="hi, I'm moving house")
    ctx.add_message(role="user", content="my internet is down at the new place")
    return ctx


def _texts(ctx: ChatContext) -> list[str]:
    return [item.text_content or "" for item in ctx.items if item.type == "message"]


async def test_policies_other_than_summary_never_summarise_even_with_a_model_at_hand(
    workflow: Workflow,
) -> None:
    brain = OfflineBrain(workflow=workflow)
    none = await context_for_handoff(ContextPolicy.parse("none"), _call(), summarizer=brain)
    assert _texts(none) == ["my internet is down at the new place"]
    last = await context_for_handoff(ContextPolicy.parse("last:1"), _call(), summarizer=brain)
    assert _texts(last) == ["my internet is down at the new place"]


async def test_a_summary_route_without_a_model_hands_off_with_the_request_only() -> None:
    ctx = await context_for_handoff(ContextPolicy.parse("summary"), _call(), summarizer=None)
    assert _texts(ctx) == ["my internet is down at the new place"]


async def test_a_summary_route_in_a_call_gives_the_next_agent_a_summary_by_the_sessions_model(
    workflow: Workflow, open_session
) -> None:
    async with open_session(workflow) as (session, _):
        await session.run(user_input="my internet is down")
        await session.run(user_input="I need something else, the front desk please")
        assert session.current_agent.id == "receptionist"  # support → receptionist is `summary`
        inherited = _texts(session.current_agent.chat_ctx)
        # the summary is a system note, never a line the new agent said
        notes = [
            item.text_content or ""
            for item in session.current_agent.chat_ctx.items
            if item.type == "message" and item.role == "system"
        ]
        summaries = [text for text in notes if text.startswith(SUMMARY_NOTE_HEADER)]
        assert len(summaries) == 1 and SUMMARY_PREFIX in summaries[0]
        assert not any(text.startswith(SUMMARY_PREFIX) for text in inherited)
        assert "internet is down" in summaries[0]
