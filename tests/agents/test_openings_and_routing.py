"""How an agent opens a call, and which route the offline brain picks (README's promises).

Real ``AgentSession``s in text mode; the offline brain is wrapped only to count how often the
session asks it for a reply, which is what tells a spoken (verbatim) line from a generated one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from livekit.agents import AgentSession

from frontdesk.agents.flow_agent import AgentFactory
from frontdesk.agents.offline_brain import OfflineBrain
from frontdesk.agents.userdata import CallerData
from frontdesk.workflows.definition import Workflow

from .conftest import ROOT, with_changes

GREETING = "Thanks for calling Acme Broadband, how can I help?"


class CountingBrain(OfflineBrain):
    """The offline brain, counting the replies the session asks it for."""

    def __init__(self, *, workflow: Workflow) -> None:
        super().__init__(workflow=workflow)
        self.requests = 0
        self.system_texts: list[str] = []

    def chat(self, **kwargs: Any) -> Any:
        self.requests += 1
        self.system_texts += [
            item.text_content or ""
            for item in kwargs["chat_ctx"].items
            if item.type == "message" and item.role == "system"
        ]
        return super().chat(**kwargs)


@asynccontextmanager
async def counted_call(workflow: Workflow) -> AsyncIterator[tuple[AgentSession[CallerData], Any]]:
    brain = CountingBrain(workflow=workflow)
    data = CallerData(session_id="test-session")
    async with AgentSession[CallerData](
        userdata=data, llm=brain, vad=None, turn_handling={"turn_detection": None}
    ) as session:
        agent = AgentFactory(workflow=workflow).build(workflow.start, caller_data=data)
        opening = await session.start(agent, capture_run=True)
        yield session, (opening, brain)


def _said(events: list[Any]) -> list[str]:
    return [
        e.item.text_content for e in events if e.type == "message" and e.item.role == "assistant"
    ]


async def test_a_configured_greeting_is_spoken_verbatim_without_asking_the_model(
    workflow: Workflow,
) -> None:
    async with counted_call(workflow) as (session, (opening, brain)):
        assert _said(opening.events) == [GREETING]
        assert brain.requests == 0
        assert session.userdata.greeted == {"receptionist"}


async def test_an_agent_without_a_greeting_opens_with_a_generated_line(workflow: Workflow) -> None:
    ungreeting = with_changes(ROOT / "config.toml", f'greeting = "{GREETING}"\n', "")
    assert ungreeting.agent("receptionist").greeting in (None, "")
    async with counted_call(ungreeting) as (session, (opening, brain)):
        said = _said(opening.events)
        assert brain.requests == 1  # the model was asked for the opening line …
        assert said == ["Hello, you're through to acme-broadband. How can I help?"]  # … and said it
        assert session.userdata.greeted == {"receptionist"}


async def test_the_agent_taking_a_call_over_is_told_which_agent_handed_it_over(
    workflow: Workflow,
) -> None:
    async with counted_call(workflow) as (session, (_, brain)):
        await session.run(user_input="how much is a faster plan?")
        await session.run(user_input="actually my internet is not working")
        assert session.current_agent.id == "support"
        notes = [
            text for text in brain.system_texts if "You have just taken this call over" in text
        ]
        assert any("from the receptionist agent" in note for note in notes)
        assert "from the sales agent" in notes[-1]  # the latest handoff, not the first


# ------------------------------------------------------------------ the offline brain's routing


async def _routed_to(workflow: Workflow, utterance: str) -> str:
    async with counted_call(workflow) as (session, _):
        await session.run(user_input=utterance)
        return session.current_agent.id


async def test_the_route_whose_example_comes_first_in_the_utterance_wins(
    workflow: Workflow,
) -> None:
    # support is listed before sales; the utterance's order decides, not the config's
    assert await _routed_to(workflow, "I'd like a new plan, my internet is down") == "sales"
    assert await _routed_to(workflow, "my internet is down, I'd like a new plan") == "support"


async def test_examples_at_the_same_place_go_to_the_route_listed_first() -> None:
    both = with_changes(
        ROOT / "config.toml",
        'sales = ["new plan", "upgrade",',
        'sales = ["slow", "new plan", "upgrade",',
    )
    examples = both.config.offline.agent("receptionist").examples
    routes = [route.to for route in both.agent("receptionist").handoffs]
    assert routes == ["support", "sales"]  # support is listed first
    assert "slow" in examples["sales"] and "slow" in examples["support"]
    assert await _routed_to(both, "slow internet all week") == "support"
