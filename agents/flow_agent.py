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

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from livekit.agents import Agent, RunContext, StopResponse, llm
from livekit.agents.llm import ChatContext
from livekit.agents.types import NOT_GIVEN, NotGivenOr
from livekit.agents.voice.events import AgentStateChangedEvent

from frontdesk.agents.fields import make_record_tool, needed_line
from frontdesk.agents.flow_control import (
    collects_done,
    make_end_call_tool,
    route_open,
    step_route,
    visible_fields,
    why_closed,
    withheld_fields,
)
from frontdesk.agents.handoff import TransferClaims, begin_handoff, make_transfer_tool
from frontdesk.agents.pipeline import Pipeline
from frontdesk.agents.prompt import (
    fill_template,
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
from frontdesk.workflows.definition import AgentConfig, Route, Workflow, templates

logger = logging.getLogger(__name__)

Entry = Literal["call_start", "handoff", "resume"]

NOT_KNOWN_YET = "(not known yet)"
"""What a ``{field}`` without a default reads as in instructions while the field is unknown."""


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
        values = visible_fields(caller_data)
        needed = [
            (field_name, needed_line(field_name, self.workflow.field(field_name), values))
            for field_name in caller_data.missing(agent.collects)
        ]
        return render_instructions(
            base=templates.fill(agent.instructions, values, fallback=NOT_KNOWN_YET) or "",
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
        self.name = name
        self._workflow = workflow
        claims = TransferClaims()
        self._transfers: dict[str, llm.Tool | llm.Toolset] = {
            route.to: make_transfer_tool(
                workflow=workflow,
                from_agent=name,
                route=route,
                build_next=self._build_next,
                claims=claims,
                is_open=partial(route_open, workflow, route),
                closed_message=partial(why_closed, workflow, route),
            )
            for route in config.handoffs
        }
        self._fixed_tools: list[llm.Tool | llm.Toolset] = [
            make_record_tool(field_name, workflow.field(field_name), on_recorded=self._on_recorded)
            for field_name in config.collects
        ]
        self._fixed_tools += agent_tools(workflow, name, on_stored=self._on_recorded)
        if config.transfer is not None:
            self._fixed_tools.append(
                make_human_transfer_tool(
                    from_agent=name, spec=config.transfer, summarizer=self._summarizer
                )
            )
        if config.end_call_when:
            self._fixed_tools.append(
                make_end_call_tool(name, config.end_call_when, self._end_call_tool)
            )
        self._offered: tuple[str, ...] = self._open_routes(caller_data)
        tools = self._tools_for(self._offered)
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
        self._stepped = False
        self._background: set[asyncio.Future[Any]] = set()
        self.entry: Entry = entry
        self.arrival_say = arrival_say
        """The route's ``say`` line, spoken verbatim when this agent takes a handoff."""
        self._factory = factory

    def _summarizer(self) -> llm.LLM | None:
        """The model that summarises the call (for a warm transfer): the agent's, else the
        session's, as the ``summary`` context policy uses."""
        model = self.llm if isinstance(self.llm, llm.LLM) else self.session.llm
        return model if isinstance(model, llm.LLM) else None

    # ------------------------------------------------------------------ guards

    def _open_routes(self, data: CallerData) -> tuple[str, ...]:
        """The targets of the routes open for these caller data, in config order."""
        config = self._workflow_config()
        return tuple(
            route.to for route in config.handoffs if route_open(self._workflow, route, data)
        )

    def _workflow_config(self) -> AgentConfig:
        return self._workflow.agent(self.name)

    def _tools_for(self, routes: tuple[str, ...]) -> list[llm.Tool | llm.Toolset]:
        return [*(self._transfers[to] for to in routes), *self._fixed_tools]

    async def _refresh_tools(self, data: CallerData) -> None:
        """Offer exactly the routes open now (a guarded route appears once its data are in)."""
        routes = self._open_routes(data)
        if routes != self._offered:
            self._offered = routes
            await self.update_tools(self._tools_for(routes))

    def _build_next(self, route: Route, chat_ctx: ChatContext, caller_data: CallerData) -> Agent:
        return self._factory.build(
            route.to,
            caller_data=caller_data,
            chat_ctx=chat_ctx,
            entry="handoff",
            arrival_say=route.say,
        )

    async def _on_recorded(self, context: RunContext[CallerData]) -> None:
        data = context.userdata
        await self._run_auto_tools(data)
        await self.update_instructions(self._factory.instructions_for(self.name, data))
        await self._refresh_tools(data)
        if collects_done(self._workflow, self.name, data):
            # inside the record tool: no tool reply (StopResponse); the closing line, or the
            # next agent, speaks instead of this agent's model
            if self._workflow_config().final:
                await self.end_call(data, f"final agent '{self.name}'")
                raise StopResponse()
            if await self._step(data):
                raise StopResponse()

    async def _step(self, data: CallerData) -> bool:
        """The automatic step (``next``) once this agent's collects are complete.

        True when the call is moving on (the next agent is being entered); False when there is
        no ``next``, it already ran, or the loop guard refused it (``loop_fallback`` said).
        """
        route = step_route(self._workflow, self.name)
        if route is None or self._stepped:
            return False
        self._stepped = True
        if self.session.agent_state == "initializing":
            # the call's first agent, still inside AgentSession.start: LiveKit switches agents
            # only once the session has started, so the step waits for that
            self._step_after_start(data, route)
            return True
        return await self._step_now(data, route)

    def _step_after_start(self, data: CallerData, route: Route) -> None:
        session = self.session

        def started(event: AgentStateChangedEvent) -> None:
            if event.new_state == "initializing":
                return
            session.off("agent_state_changed", started)
            task = asyncio.ensure_future(self._step_now(data, route))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

        session.on("agent_state_changed", started)

    async def _step_now(self, data: CallerData, route: Route) -> bool:
        """Hand off along ``route`` now; False when the loop guard refused it."""
        chat_ctx = await begin_handoff(
            workflow=self._workflow, from_agent=self.name, route=route, session=self.session
        )
        if chat_ctx is None:
            return False
        logger.info(
            "session %s: %s -> %s automatically (next)", data.session_id, self.name, route.to
        )
        self.session.update_agent(self._build_next(route, chat_ctx, data))
        return True

    async def end_call(self, data: CallerData, reason: str) -> None:
        """Say the closing line verbatim, then end the session (it is marked ended)."""
        config = self._workflow_config()
        template = config.closing_line or ""
        line = fill_verbatim(template, data.fields, withheld=withheld_fields(data))
        if line is None:
            line = fill_template(template, visible_fields(data))
        data.finished = reason
        logger.info("session %s: the call ends (%s)", data.session_id, reason)
        handle = self.session.say(line, allow_interruptions=False)
        session = self.session
        handle.add_done_callback(lambda _: session.shutdown(drain=True))

    async def _end_call_tool(self, data: CallerData, reason: str) -> None:
        await self.end_call(data, reason)

    async def _run_auto_tools(self, data: CallerData) -> None:
        """``auto`` HTTP tools whose fields are now all known run here, before the next reply."""
        for runner in due_auto_tools(self._factory.workflow, self.name, data):
            if await runner.run(data) is None:
                self.session.say(runner.spec.failure_line)

    async def on_enter(self) -> None:
        data: CallerData = self.session.userdata
        data.current_agent = self.name
        self.session.on("function_tools_executed", self._after_tools)
        config = self._factory.workflow.agent(self.name)
        await self._run_auto_tools(data)
        await self._refresh_tools(data)
        if self.entry == "resume":
            self._enter_resumed(data)
        elif self.entry == "handoff":
            await self._enter_handoff(data)
        elif self.name not in data.greeted:
            greeting = self._verbatim(config.greeting, data)
            if greeting:
                self.session.say(greeting)
            if not await self._finish_or_step(data) and not greeting:
                self.session.generate_reply(instructions=opening_note())
        # Entering by any door counts as having met the caller: no greeting on a later return.
        data.greeted = data.greeted | {self.name}

    async def _finish_or_step(self, data: CallerData) -> bool:
        """On entry: a final agent with nothing to collect ends the call; an agent with ``next``
        whose collects are already complete moves on. True when either happened."""
        if not collects_done(self._workflow, self.name, data):
            return False
        if self._workflow_config().final:
            await self.end_call(data, f"final agent '{self.name}'")
            return True
        return await self._step(data)

    def _verbatim(self, template: str | None, data: CallerData) -> str | None:
        """A configured line with its placeholders filled (withheld values get the default)."""
        if not template:
            return None
        return fill_verbatim(template, data.fields, withheld=withheld_fields(data))

    def _enter_resumed(self, data: CallerData) -> None:
        """The ``resume`` line verbatim (when every field it names is known), then, if something
        is still needed, the model goes on; without a line the model welcomes the caller back."""
        config = self._factory.workflow.agent(self.name)
        line = self._verbatim(config.resume, data)
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
        say = self._verbatim(self.arrival_say, data)
        if say:
            self.session.say(say)
        if await self._finish_or_step(data):
            return
        data.arrival_reply = self.session.generate_reply(
            instructions=handoff_note(
                data.handoff_trail[-1].from_agent if data.handoff_trail else None
            )
        )

    def _after_tools(self, _event: object) -> None:
        """A Python tool may write caller data itself (``context.userdata.fields``): once its
        results are in, the routes their guards open (or close) are offered from the next
        request on, as after a ``record_<field>``."""
        data: CallerData = self.session.userdata
        if data.current_agent != self.name or self._open_routes(data) == self._offered:
            return
        task = asyncio.ensure_future(self._follow_fields(data))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _follow_fields(self, data: CallerData) -> None:
        await self.update_instructions(self._factory.instructions_for(self.name, data))
        await self._refresh_tools(data)

    async def on_exit(self) -> None:
        self.session.off("function_tools_executed", self._after_tools)
        data: CallerData = self.session.userdata
        pending = data.pending_handoff
        if pending is not None and pending.from_agent == self.name:
            data.handoff_trail = [*data.handoff_trail, pending]
            data.pending_handoff = None
