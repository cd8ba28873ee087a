"""Handoffs between FlowAgents inside one real AgentSession (text mode, offline brain)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from livekit.agents.llm import ChatContext

from frontdesk.agents.flow_agent import FlowAgent
from frontdesk.agents.handoff import context_for_handoff
from frontdesk.agents.offline_brain import OfflineBrain
from frontdesk.agents.prompt import SUMMARY_NOTE_HEADER, SUMMARY_PREFIX
from frontdesk.agents.userdata import CallerData
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
        result.expect.next_event().is_agent_handoff(new_agent_type=FlowAgent)
        result.expect.next_event().is_message(role="assistant")  # the route's `say`, verbatim
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


async def test_on_exit_of_old_agent_runs_before_on_enter_of_new(
    workflow, open_session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old agent's ``on_exit`` writes the handoff to the trail; the new agent enters after."""
    hooks: list[tuple[str, str, list[tuple[str, str]], bool]] = []
    enter, leave = FlowAgent.on_enter, FlowAgent.on_exit

    def note(hook: str, agent: FlowAgent) -> None:
        data = agent.session.userdata
        trail = [(h.from_agent, h.to_agent) for h in data.handoff_trail]
        hooks.append((hook, agent.name, trail, data.pending_handoff is not None))

    async def on_enter(self: FlowAgent) -> None:
        note("enter", self)  # what the new agent finds, before its own hook runs
        await enter(self)

    async def on_exit(self: FlowAgent) -> None:
        note("exit (before)", self)
        await leave(self)
        note("exit (after)", self)

    monkeypatch.setattr(FlowAgent, "on_enter", on_enter)
    monkeypatch.setattr(FlowAgent, "on_exit", on_exit)
    async with open_session(workflow) as (session, _):
        await session.run(user_input="my internet is down")
        handoff = [("receptionist", "support")]
        assert hooks == [
            ("enter", "receptionist", [], False),
            ("exit (before)", "receptionist", [], True),  # the transfer tool only set it pending
            ("exit (after)", "receptionist", handoff, False),  # on_exit wrote the trail …
            ("enter", "support", handoff, False),  # … before support entered
        ]
        assert session.userdata.current_agent == "support"
        assert session.userdata.handoff_trail[0].reason.startswith("The caller has a problem")


async def test_agent_returned_to_by_a_handoff_does_not_greet_again(workflow, open_session) -> None:
    async with open_session(workflow) as (session, _):
        await session.run(user_input="my bill is wrong")
        result = await session.run(user_input="I need something else, the front desk please")
        assert session.current_agent.id == "receptionist"
        said = _said(result.events)
        assert said, "the receptionist says something on the way back"
        assert all("thanks for calling" not in line.lower() for line in said)


async def test_an_agent_that_already_greeted_this_call_does_not_greet_at_call_start(
    workflow, open_session
) -> None:
    """The greeted set of the caller data, not the way in, stops a second greeting."""
    greeted = CallerData(session_id="test-session", greeted={"receptionist"})
    async with open_session(workflow, data=greeted) as (session, opening):
        assert session.current_agent.id == "receptionist"
        assert _said(opening.events) == []
    async with open_session(workflow) as (_, fresh):  # the same door, not greeted yet
        assert _said(fresh.events) == ["Thanks for calling Acme Broadband, how can I help?"]


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
            name="record_account_number", arguments={"account_number": "AC-55555"}
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
        assert "AC-12345" in _said(result.events)[-1]  # tells the caller what it must look like


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
        fallback = guarded.config.workflow.loop_fallback
        for _ in range(200):  # the fallback is its own verbatim speech, queued after the tool's
            said = [item.text_content for item in session.history.items if item.type == "message"]
            if said[-1] == fallback:
                break
            await asyncio.sleep(0.01)
        assert said[-1] == fallback  # verbatim, and no model line after it
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
    role, note = messages[0]
    # a system note the next agent cannot mistake for something it said to the caller
    assert role == "system"
    assert note.startswith(SUMMARY_NOTE_HEADER)
    assert SUMMARY_PREFIX in note
    assert "moving house" in note
    assert messages[1] == CALL[-1]


async def test_a_route_may_ask_for_the_summary_in_its_own_words(workflow) -> None:
    seen: list[str] = []

    class Recording(OfflineBrain):
        def chat(self, *, chat_ctx: ChatContext, **kwargs: Any) -> Any:
            first = chat_ctx.items[0]
            seen.append(first.text_content or "" if first.type == "message" else "")
            return super().chat(chat_ctx=chat_ctx, **kwargs)

    await context_for_handoff(
        ContextPolicy.parse("summary"),
        _history(*CALL),
        summarizer=Recording(workflow=workflow),
        summary_prompt="List the caller's new address and the fault, nothing else.",
    )
    assert len(seen) == 1
    assert "List the caller's new address and the fault, nothing else." in seen[0]


@pytest.mark.parametrize("text", ["last:0", "recent", "last:x", ""])
def test_unknown_context_policy_is_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="context policy"):
        ContextPolicy.parse(text)
