"""One LiveKit ``Agent`` class driven by an agent's config, and the factory that builds them.

Every agent of a workflow is a :class:`FlowAgent`: its instructions are the configured text plus
the call-context block (what is known, what is still needed), its tools are one
``transfer_to_<agent>`` per route and one ``record_<field>`` per collected field. How it enters
depends on how the caller reached it:

- ``call_start``: greet once per call (the greeted set lives in the shared caller data);
- ``handoff``: no greeting; the route's ``say`` line verbatim, then continue from the caller's
  request (the model's reply is generated while the line plays);
- ``resume``: the caller dropped and came back: the agent's ``resume`` line verbatim (or the
  model's own short "welcome back") and carry on.

Lines the config gives verbatim (``greeting``, ``say``, ``resume``) go through ``session.say``
with their ``{field}``s filled, never through the model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from livekit.agents import Agent, RunContext, llm
from livekit.agents.llm import ChatContext
from livekit.agents.types import NOT_GIVEN, NotGivenOr

from frontdesk.agents.fields import make_record_tool
from frontdesk.agents.handoff import TransferClaims, make_transfer_tool
from frontdesk.agents.pipeline import Pipeline
from frontdesk.agents.prompt import (
    fill_verbatim,
    handoff_note,
    opening_note,
    render_instructions,
    resume_continue_note,
    resume_note,
)
from frontdesk.agents.tools import agent_tools, due_auto_tools
from frontdesk.agents.transfer import make_human_transfer_tool
from frontdesk.agents.userdata import CallerData
from frontdesk.workflows.definition import Route, Workflow

logger = logging.getLogger(__name__)

Entry = Literal["call_start", "handoff", "resume"]


@dataclass
class AgentFactory:
    """Builds the :class:`FlowAgent` of any agent of one workflow.

    Handoffs go through it so that every agent of a call shares the same workflow and the same
    per-agent provider overrides.
    """

    workflow: Workflow
    components: Callable[[str], Pipeline] | None = None
    """Per-agent pipeline overrides by agent name; None: every agent uses the session's."""

    def build(
        self,
        name: str,
        *,
        caller_data: CallerData,
        chat_ctx: ChatContext | None = None,
        entry: Entry = "call_start",
        arrival_say: str | None = None,
    ) -> FlowAgent:
        return FlowAgent(
            factory=self,
            name=name,
            caller_data=caller_data,
            chat_ctx=chat_ctx,
            entry=entry,
            arrival_say=arrival_say,
        )

    def instructions_for(self, name: str, caller_data: CallerData) -> str:
        agent = self.workflow.agent(name)
        needed = [
            (
                field_name,
                self.workflow.field(field_name).ask or self.workflow.field(field_name).description,
            )
            for field_name in caller_data.missing(agent.collects)
        ]
        return render_instructions(
            base=agent.instructions,
            agent=name,
            workflow_name=self.workflow.name,
            known=caller_data.fields,
            needed=needed,
            style=self.workflow.config.workflow.style,
        )


def _given(value: Any) -> NotGivenOr[Any]:
    return value if value is not None else NOT_GIVEN


class FlowAgent(Agent):
    """An agent of the workflow, configured entirely by its ``[agents.<name>]`` table."""

    def __init__(
        self,
        *,
        factory: AgentFactory,
        name: str,
        caller_data: CallerData,
        chat_ctx: ChatContext | None = None,
        entry: Entry = "call_start",
        arrival_say: str | None = None,
    ) -> None:
        workflow = factory.workflow
        config = workflow.agent(name)
        claims = TransferClaims()
        tools: list[llm.Tool | llm.Toolset] = [
            make_transfer_tool(
                workflow=workflow,
                from_agent=name,
                route=route,
                build_next=self._build_next,
                claims=claims,
            )
            for route in config.handoffs
        ]
        tools += [
            make_record_tool(field_name, workflow.field(field_name), on_recorded=self._on_recorded)
            for field_name in config.collects
        ]
        tools += agent_tools(workflow, name, on_stored=self._on_recorded)
        if config.transfer is not None:
            tools.append(
                make_human_transfer_tool(
                    from_agent=name, spec=config.transfer, summarizer=self._summarizer
                )
            )
        components = factory.components(name) if factory.components else Pipeline()
        super().__init__(
            id=name,
            instructions=factory.instructions_for(name, caller_data),
            chat_ctx=chat_ctx if chat_ctx is not None else NOT_GIVEN,
            tools=tools,
            stt=_given(components.stt),
            llm=_given(components.llm),
            tts=_given(components.tts),
        )
        self.name = name
        self.entry: Entry = entry
        self.arrival_say = arrival_say
        """The route's ``say`` line, spoken verbatim when this agent takes a handoff."""
        self._factory = factory

    def _summarizer(self) -> llm.LLM | None:
        """The model that summarises the call (for a warm transfer): the agent's, else the
        session's, as the ``summary`` context policy uses."""
        model = self.llm if isinstance(self.llm, llm.LLM) else self.session.llm
        return model if isinstance(model, llm.LLM) else None

    def _build_next(self, route: Route, chat_ctx: ChatContext, caller_data: CallerData) -> Agent:
        return self._factory.build(
            route.to,
            caller_data=caller_data,
            chat_ctx=chat_ctx,
            entry="handoff",
            arrival_say=route.say,
        )

    async def _on_recorded(self, context: RunContext[CallerData]) -> None:
        await self._run_auto_tools(context.userdata)
        await self.update_instructions(self._factory.instructions_for(self.name, context.userdata))

    async def _run_auto_tools(self, data: CallerData) -> None:
        """``auto`` HTTP tools whose fields are now all known run here, before the next reply."""
        for runner in due_auto_tools(self._factory.workflow, self.name, data):
            if await runner.run(data) is None:
                self.session.say(runner.spec.failure_line)

    async def on_enter(self) -> None:
        data: CallerData = self.session.userdata
        data.current_agent = self.name
        config = self._factory.workflow.agent(self.name)
        await self._run_auto_tools(data)
        if self.entry == "resume":
            self._enter_resumed(data)
        elif self.entry == "handoff":
            await self._enter_handoff(data)
        elif self.name not in data.greeted:
            greeting = fill_verbatim(config.greeting, data.fields) if config.greeting else None
            if greeting:
                self.session.say(greeting)
            else:
                self.session.generate_reply(instructions=opening_note())
        # Entering by any door counts as having met the caller: no greeting on a later return.
        data.greeted = data.greeted | {self.name}

    def _enter_resumed(self, data: CallerData) -> None:
        """The ``resume`` line verbatim (when every field it names is known), then, if something
        is still needed, the model goes on; without a line the model welcomes the caller back."""
        config = self._factory.workflow.agent(self.name)
        line = fill_verbatim(config.resume, data.fields) if config.resume else None
        if line is None:
            self.session.generate_reply(instructions=resume_note())
            return
        self.session.say(line)
        if data.missing(config.collects):
            self.session.generate_reply(instructions=resume_continue_note(line))

    async def _enter_handoff(self, data: CallerData) -> None:
        """The route's ``say`` line, verbatim, while the first reply is being generated."""
        # caller data recorded in the same model response as the transfer arrived after this
        # agent was built: its instructions must list them as known
        await self.update_instructions(self._factory.instructions_for(self.name, data))
        say = fill_verbatim(self.arrival_say, data.fields) if self.arrival_say else None
        if say:
            self.session.say(say)
        data.arrival_reply = self.session.generate_reply(
            instructions=handoff_note(
                data.handoff_trail[-1].from_agent if data.handoff_trail else None
            )
        )

    async def on_exit(self) -> None:
        data: CallerData = self.session.userdata
        pending = data.pending_handoff
        if pending is not None and pending.from_agent == self.name:
            data.handoff_trail = [*data.handoff_trail, pending]
            data.pending_handoff = None
