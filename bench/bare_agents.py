"""The bare-LiveKit baseline of the handoff benchmark: the same two agents, no Frontdesk.

Written the way LiveKit's documentation shows handoffs: ``Agent`` subclasses whose
``@function_tool`` returns the next agent (built with ``chat_ctx=self.chat_ctx``, the whole
conversation) and the line to speak; ``on_enter`` greets at call start and replies after a
handoff. Same instructions, lines and model (:class:`bench.scripted_llm.ScriptedLLM`) as the
Frontdesk side; a plain dataclass as userdata.
"""

from __future__ import annotations

from dataclasses import dataclass

from livekit.agents import Agent, RunContext, function_tool
from livekit.agents.llm import ChatContext

from frontdesk.workflows.definition import Workflow


@dataclass
class BareData:
    handoffs: int = 0


class _BareAgent(Agent):
    greeting: str | None = None

    def __init__(
        self, *, workflow: Workflow, name: str, chat_ctx: ChatContext | None, handoff: bool
    ) -> None:
        super().__init__(instructions=workflow.agent(name).instructions, chat_ctx=chat_ctx)
        self.workflow = workflow
        self.handoff = handoff
        self.greeting = workflow.agent(name).greeting

    async def on_enter(self) -> None:
        if self.handoff:
            self.session.generate_reply(
                instructions="The caller was just transferred to you: continue from their request."
            )
        elif self.greeting:
            self.session.say(self.greeting)


class BareReceptionist(_BareAgent):
    def __init__(
        self, *, workflow: Workflow, chat_ctx: ChatContext | None = None, handoff: bool = False
    ) -> None:
        super().__init__(workflow=workflow, name="receptionist", chat_ctx=chat_ctx, handoff=handoff)

    @function_tool
    async def transfer_to_support(self, context: RunContext[BareData]) -> tuple[Agent, str]:
        """Transfer the caller to the support agent. Use when: the caller has a problem: an
        outage, slow or no internet, or a billing question."""
        context.userdata.handoffs += 1
        support = BareSupport(workflow=self.workflow, chat_ctx=self.chat_ctx, handoff=True)
        return support, "Let me get you to support."


class BareSupport(_BareAgent):
    def __init__(
        self, *, workflow: Workflow, chat_ctx: ChatContext | None = None, handoff: bool = False
    ) -> None:
        super().__init__(workflow=workflow, name="support", chat_ctx=chat_ctx, handoff=handoff)

    @function_tool
    async def transfer_to_receptionist(self, context: RunContext[BareData]) -> tuple[Agent, str]:
        """Transfer the caller to the receptionist. Use when: the caller needs something support
        does not handle."""
        context.userdata.handoffs += 1
        receptionist = BareReceptionist(
            workflow=self.workflow, chat_ctx=self.chat_ctx, handoff=True
        )
        return receptionist, "I'll take you back to the front desk."
