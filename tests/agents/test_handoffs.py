"""Handoffs between FlowAgents inside one real AgentSession (text mode, offline brain)."""

from __future__ import annotations

from typing import Any

import pytest
from livekit.agents.llm import ChatContext

from frontdesk.agents.flow_agent import FlowAgent
from frontdesk.agents.handoff import context_for_handoff
from frontdesk.agents.offline_brain import OfflineBrain
from frontdesk.agents.prompt import SUMMARY_PREFIX
from frontdesk.workflows.definition import ContextPolicy

from .conftest import ROOT, with_changes


def _said(events: list[Any]) -> list[str]:
    return [
        e.item.text_content for e in events if e.type == "message" and e.item.role == "assistant"
    ]


async def test_receptionist_greets_once_at_call_start(workflow, open_session) -> None:
    async with open_session(workflow) as (session, opening):
        opening.expect.next_event().is_agent_handoff(new_agent_type=FlowAgent)
        opening.expect.next_event().is_message(role="assistant")
        opening.expect.no_more_events()
        assert _said(opening.events) == ["Thanks for calling Acme Broadband, how can I help?"]
        assert session.userdata.greeted == {"receptionist"}


async def test_outage_is_handed_to_support_which_asks_for_the_account(
    workflow, open_session
) -> None:
    async with open_session(workflow) as (session, _):
        result = await session.run(user_input="hi, my internet is down")
        result.expect.next_event().is_function_call(name="transfer_to_support")
        result.expect.next_event().is_function_call_output()
        result.expect.next_event().is_message(role="assistant")  # the route's `say`
        result.expect.next_event().is_agent_handoff(new_agent_type=FlowAgent)
        result.expect.next_event().is_message(role="assistant")
        result.expect.no_more_events()
        assert session.current_agent.id == "support"
        said = _said(result.events)
        assert said[0] == "Let me get you to support."
        assert "account number" in said[1].lower()
        assert "thanks for calling" not in said[1].lower()


async def test_sales_request_goes_to_sales_and_back_to_support(workflow, open_session) -> None:
    async with open_session(workflow) as (session, _):
        await session.run(user_input="how much is a faster plan?")
        assert session.current_agent.id == "sales"
        result = await session.run(user_input="actually my internet is not working")
        result.expect.contains_agent_handoff(new_agent_type=FlowAgent)
        assert session.current_agent.id == "support"
        trail = [(h.from_agent, h.to_agent) for h in session.userdata.handoff_trail]
        assert trail == [("receptionist", "sales"), ("sales", "support")]


async def test_on_exit_of_old_agent_runs_before_on_enter_of_new(workflow, open_session) -> None:
    async with open_session(workflow) as (session, _):
        await session.run(user_input="my internet is down")
        trail = session.userdata.handoff_trail
        assert len(trail) == 1  # written by receptionist.on_exit …
        assert session.userdata.current_agent == "support"  # … then support.on_enter ran
        assert trail[0].reason.startswith("The caller has a problem")


async def test_agent_returned_to_does_not_greet_again(workflow, open_session) -> None:
    async with open_session(workflow) as (session, _):
        await session.run(user_input="my bill is wrong")
        result = await session.run(user_input="I need something else, the front desk please")
        assert session.current_agent.id == "receptionist"
        assert all("thanks for calling" not in line.lower() for line in _said(result.events))


async def test_triggering_utterance_reaches_the_next_agent_under_every_policy(
    workflow, open_session
) -> None:
    for policy in ("full", "last:1", "summary", "none"):
        variant = with_changes(
            ROOT / "config.toml",
            'context = "full"\nsay = "Let me get you to support."',
            f'context = "{policy}"\nsay = "Let me get you to support."',
        )
        async with open_session(variant) as (session, _):
            await session.run(user_input="hello there")
            await session.run(user_input="my internet is down since this morning")
            user_lines = [
                item.text_content
                for item in session.current_agent.chat_ctx.items
                if item.type == "message" and item.role == "user"
            ]
            assert user_lines[-1] == "my internet is down since this morning", policy


async def test_support_records_account_given_to_receptionist_without_asking(
    workflow, open_session
) -> None:
    async with open_session(workflow) as (session, _):
        result = await session.run(user_input="my internet is down, my account is AC-55555")
        result.expect.contains_function_call(
            name="record_account_number", arguments={"value": "AC-55555"}
        )
        assert session.userdata.fields == {"account_number": "AC-55555"}
        assert all("account number?" not in line.lower() for line in _said(result.events))


async def test_record_tool_refuses_a_value_that_fails_the_pattern(workflow, open_session) -> None:
    async with open_session(workflow) as (session, _):
        await session.run(user_input="my internet is down")
        result = await session.run(user_input="it's AC-12")
        result.expect.next_event().is_function_call(name="record_account_number")
        output = result.expect.next_event().is_function_call_output().event().item
        assert output.is_error
        assert "not a valid account number" in output.output
        assert "account_number" not in session.userdata.fields
        assert "AC-48213" in _said(result.events)[-1]  # tells the caller what it must look like


async def test_loop_guard_refuses_a_second_handoff_in_one_turn(open_session) -> None:
    guarded = with_changes(
        ROOT / "config.toml", "max_handoffs_per_turn = 3", "max_handoffs_per_turn = 1"
    )
    async with open_session(guarded) as (session, _):
        await session.run(user_input="my internet is down")
        assert session.current_agent.id == "support"
        handle = session.generate_reply(
            tool_choice={"type": "function", "function": {"name": "transfer_to_receptionist"}}
        )
        await handle
        assert session.current_agent.id == "support"
        said = [item.text_content for item in session.history.items if item.type == "message"]
        assert guarded.config.workflow.loop_fallback in said[-1]
        # the caller speaking again resets the guard
        await session.run(user_input="please put me through to the front desk")
        assert session.current_agent.id == "receptionist"


# ----------------------------------------------------------------- context policies, unit level


def _history(*lines: tuple[str, str]) -> ChatContext:
    ctx = ChatContext.empty()
    ctx.add_message(role="system", content="old instructions")
    for role, text in lines:
        ctx.add_message(role=role, content=text)  # type: ignore[arg-type]
    return ctx


CALL = (
    ("assistant", "Thanks for calling, how can I help?"),
    ("user", "hi, I'm moving house"),
    ("assistant", "Congratulations! What do you need?"),
    ("user", "my internet is down at the new place"),
)


def _messages(ctx: ChatContext) -> list[tuple[str, str]]:
    return [(i.role, i.text_content or "") for i in ctx.items if i.type == "message"]


async def test_full_policy_keeps_every_message_but_not_old_instructions() -> None:
    ctx = await context_for_handoff(ContextPolicy.parse("full"), _history(*CALL), summarizer=None)
    assert _messages(ctx) == list(CALL)


async def test_last_n_policy_keeps_the_last_n_messages() -> None:
    ctx = await context_for_handoff(ContextPolicy.parse("last:2"), _history(*CALL), summarizer=None)
    assert _messages(ctx) == list(CALL[-2:])


async def test_none_policy_keeps_only_the_triggering_utterance() -> None:
    ctx = await context_for_handoff(ContextPolicy.parse("none"), _history(*CALL), summarizer=None)
    assert _messages(ctx) == [CALL[-1]]


async def test_summary_policy_gives_a_summary_then_the_triggering_utterance(workflow) -> None:
    brain = OfflineBrain(workflow=workflow)
    ctx = await context_for_handoff(
        ContextPolicy.parse("summary"), _history(*CALL), summarizer=brain
    )
    messages = _messages(ctx)
    assert len(messages) == 2
    assert messages[0][1].startswith(SUMMARY_PREFIX)
    assert "moving house" in messages[0][1]
    assert messages[1] == CALL[-1]


@pytest.mark.parametrize("text", ["last:0", "recent", "last:x", ""])
def test_unknown_context_policy_is_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="context policy"):
        ContextPolicy.parse(text)
