"""The ``full`` policy hands over the conversation, not the old agent's own configuration."""

from __future__ import annotations

from livekit.agents.llm import ChatContext
from livekit.agents.llm.chat_context import AgentConfigUpdate

from frontdesk.agents.handoff import context_for_handoff
from frontdesk.workflows.definition import ContextPolicy


async def test_the_full_policy_leaves_the_old_agents_instruction_and_tool_updates_behind() -> None:
    history = ChatContext.empty()
    history.add_message(role="assistant", content="Thanks for calling, how can I help?")
    history.items.append(
        AgentConfigUpdate(
            instructions="You are the receptionist.", tools_added=["transfer_to_support"]
        )
    )
    history.add_message(role="user", content="my internet is down")

    inherited = await context_for_handoff(ContextPolicy.parse("full"), history, summarizer=None)

    assert [item.type for item in inherited.items] == ["message", "message"]
    assert [item.text_content for item in inherited.items if item.type == "message"] == [
        "Thanks for calling, how can I help?",
        "my internet is down",
    ]
