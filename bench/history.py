"""Realistic call histories made of real LiveKit chat items, for the persist and resume benchmarks.

A *turn* is what one caller utterance adds to ``session.history`` in a voice call on the default
workflow, built from ``livekit.agents.llm`` objects (never hand-written dicts) so that the bytes
stored are what Frontdesk's recorder stores (:func:`frontdesk.workflows.runtime.serialize_items`):

* most turns: the caller's message and the agent's reply, both with the voice-pipeline
  ``metrics`` LiveKit attaches (speaking times, transcription and end-of-turn delays, TTFT/TTFB);
* every 10th turn: the agent records a caller-data field (``function_call``,
  ``function_call_output``, ``agent_config_update`` carrying the agent's new instructions);
* every 50th turn: a handoff (transfer ``function_call`` and output, the old agent's line,
  ``agent_handoff``, the new agent's ``agent_config_update`` and its reply), which also adds an
  entry to the handoff trail stored in the session meta.

That averages about 1.0 KB of JSON (2.3 items) per turn. Everything is deterministic (seeded).
"""

from __future__ import annotations

import inspect
import random
from dataclasses import dataclass, field
from typing import Any

from livekit.agents.llm import (
    AgentConfigUpdate,
    AgentHandoff,
    ChatItem,
    ChatMessage,
    FunctionCall,
    FunctionCallOutput,
)
from livekit.agents.llm.chat_context import MetricsReport

from frontdesk.agents.flow_agent import AgentFactory
from frontdesk.agents.userdata import CallerData
from frontdesk.state.models import HandoffEntry, SessionState
from frontdesk.workflows.definition import Workflow
from frontdesk.workflows.definition.field_types import FieldValue
from frontdesk.workflows.runtime import meta_of, serialize_items

RECORD_EVERY = 10
HANDOFF_EVERY = 50
TURN_SECONDS = 7.0

_CALLER_LINES = (
    "Hi, my internet has been dropping out every few minutes since this morning.",
    "It's the router in the living room, the light keeps blinking orange and then goes green.",
    "I already restarted it twice and it didn't help at all, it still drops.",
    "Yes, I'm on the Fast plan I think, the one with five hundred megabits.",
    "Can you tell me whether there's an outage in my area right now?",
    "Okay, and how long do you think it will take before it's fixed?",
    "I also got charged twice on my last bill, can you look into that as well?",
    "It says forty dollars and then another forty dollars on the same day.",
    "Sure, I can hold on for a moment while you check that for me.",
    "Great, thank you. Will I get a refund for the days it wasn't working?",
    "What would it cost to move up to the Gigabit plan instead?",
    "And is there any installation fee if I switch plans this month?",
)

_AGENT_LINES = (
    "I'm sorry to hear that. I can see your line on our system; let me run a quick check on the "
    "connection between your router and our exchange, it takes about ten seconds.",
    "Thanks for waiting. The line test shows intermittent drops, which matches what you describe. "
    "There is planned maintenance in your area that may be causing it.",
    "The engineers expect the work in your area to finish within about two hours. Your connection "
    "should be stable again after that, and I'll add a note to your account.",
    "I can see the two charges of forty dollars on the same day. That's a duplicate payment, so "
    "I've raised a refund for one of them; it usually shows within three to five working days.",
    "Yes, you're eligible for a service credit for the days with drops. I've applied it, and it "
    "will appear as a discount on your next bill.",
    "The Gigabit plan is eighty dollars a month. Switching from Fast has no installation fee, and "
    "the new speed is active within an hour of the change.",
    "No problem at all. Is there anything else about your connection or your bill that I can help "
    "you with today while I have your account open?",
    "I've noted all of that on your account, so if you call back, whoever picks up will see "
    "exactly where we are and you won't need to explain it again.",
)


@dataclass
class Turn:
    """One caller turn: the live LiveKit items it adds, and the handoff it made (if any)."""

    items: list[ChatItem]
    handoff: HandoffEntry | None = None
    recorded: tuple[str, str] | None = None


@dataclass
class CallHistory:
    """A generated call: turns in order plus the caller data at the end."""

    workflow: Workflow
    turns: list[Turn]
    start_agent: str
    session_id: str = "bench-session"
    caller_hash: str | None = None
    _serialized: list[list[dict[str, Any]]] = field(default_factory=list, repr=False)
    _data: dict[int, CallerData] = field(default_factory=dict, repr=False)
    _sent: dict[int, dict[str, Any]] = field(default_factory=dict, repr=False)

    def warm(self) -> CallHistory:
        """Fill every cache now, so that no benchmark's timed region builds them."""
        for turns in range(len(self.turns) + 1):
            self.caller_data(turns)
            self.sent_meta(turns)
        self.items_upto(len(self.turns))
        return self

    def serialized(self, turn: int) -> list[dict[str, Any]]:
        """The items of turn ``turn`` in stored form (cached)."""
        while len(self._serialized) <= turn:
            self._serialized.append(serialize_items(self.turns[len(self._serialized)].items))
        return self._serialized[turn]

    def items_upto(self, turns: int) -> list[dict[str, Any]]:
        """Stored-form items of the first ``turns`` turns."""
        out: list[dict[str, Any]] = []
        for index in range(turns):
            out.extend(self.serialized(index))
        return out

    def caller_data(self, turns: int) -> CallerData:
        """The shared caller data after the first ``turns`` turns (cached: treat as read-only)."""
        cached = self._data.get(turns)
        if cached is None:
            cached = self._data[turns] = self._build_caller_data(turns)
        return cached

    def _build_caller_data(self, turns: int) -> CallerData:
        data = CallerData(session_id=self.session_id, caller_identity=None)
        agent = self.start_agent
        trail: list[HandoffEntry] = []
        fields: dict[str, FieldValue] = {}
        for turn in self.turns[:turns]:
            if turn.handoff is not None:
                trail.append(turn.handoff)
                agent = turn.handoff.to_agent
            if turn.recorded is not None:
                fields[turn.recorded[0]] = turn.recorded[1]
        data.fields = fields
        data.handoff_trail = trail
        data.current_agent = agent
        data.greeted = {self.start_agent} | {entry.to_agent for entry in trail}
        return data

    def meta_update(self, turns: int) -> dict[str, Any]:
        """What the recorder sends with each write after ``turns`` turns (``meta_of``).

        The caller data is cached, so only ``meta_of`` itself runs here, as in a live call.
        """
        return recorder_meta(self.caller_data(turns), turns=turns)

    def sent_meta(self, turns: int) -> dict[str, Any]:
        """The meta the recorder last submitted after ``turns`` turns (cached)."""
        cached = self._sent.get(turns)
        if cached is None:
            cached = self._sent[turns] = self.meta_update(turns)
        return cached

    def recorder_update(self, turns: int) -> dict[str, Any]:
        """What the recorder's ``capture()`` submits at the end of turn ``turns``.

        ``meta_of`` for the live caller data, then only the fields that differ from what was
        sent after the previous turn (``updated_at`` always), as ``SessionRecorder.capture``
        does; both steps run inside the timed region.
        """
        meta = self.meta_update(turns)
        previous = self.sent_meta(turns - 1) if turns > 0 else {}
        return {k: v for k, v in meta.items() if k == "updated_at" or previous.get(k) != v}

    def state(self, turns: int, *, session_id: str | None = None) -> SessionState:
        """The whole stored session after ``turns`` turns."""
        data = self.caller_data(turns)
        first = self.turns[0].items[0].created_at if self.turns else 0.0
        last = self.turns[turns - 1].items[-1].created_at if turns else first
        return SessionState(
            session_id=session_id or self.session_id,
            workflow=self.workflow.name,
            workflow_hash=self.workflow.content_hash,
            caller_hash=self.caller_hash,
            current_agent=data.current_agent,
            caller_data=dict(data.fields),
            greeted=sorted(data.greeted),
            handoff_trail=list(data.handoff_trail),
            created_at=first,
            updated_at=last,
            turns=turns,
            items=self.items_upto(turns),
        )

    def mean_turn_bytes(self, turns: int) -> float:
        import orjson

        total = sum(len(orjson.dumps(item)) for item in self.items_upto(turns))
        return total / max(1, turns)


def recorder_meta(data: CallerData, *, turns: int) -> dict[str, Any]:
    """``meta_of`` as the recorder calls it, for a call on its first connection.

    Tolerates the ``calls`` parameter (one record per connection) being present or not.
    """
    kwargs: dict[str, Any] = {"turns": turns}
    if "calls" in _META_OF_PARAMS:
        kwargs["calls"] = []
    return meta_of(data, **kwargs)


_META_OF_PARAMS = frozenset(inspect.signature(meta_of).parameters)


def _metrics_user(rng: random.Random, start: float) -> MetricsReport:
    return MetricsReport(
        started_speaking_at=start,
        stopped_speaking_at=start + rng.uniform(1.5, 4.5),
        transcription_delay=rng.uniform(0.12, 0.35),
        end_of_turn_delay=rng.uniform(0.25, 0.7),
        on_user_turn_completed_delay=rng.uniform(0.0001, 0.002),
    )


def _metrics_agent(rng: random.Random, start: float) -> MetricsReport:
    return MetricsReport(
        started_speaking_at=start,
        stopped_speaking_at=start + rng.uniform(3.0, 9.0),
        llm_node_ttft=rng.uniform(0.25, 0.6),
        tts_node_ttfb=rng.uniform(0.15, 0.4),
        e2e_latency=rng.uniform(0.6, 1.3),
    )


def generate_history(workflow: Workflow, turns: int, *, seed: int = 7) -> CallHistory:
    """A deterministic call of ``turns`` turns on ``workflow`` (the default workflow's agents)."""
    rng = random.Random(seed)
    factory = AgentFactory(workflow=workflow)
    agents = list(workflow.config.agents)
    agent = workflow.start
    data = CallerData(session_id="bench-session", caller_identity=None)
    fields = list(workflow.config.caller_data)
    clock = 1_700_000_000.0
    out: list[Turn] = []
    call_ids = 0
    for index in range(turns):
        t = clock + index * TURN_SECONDS
        user = ChatMessage(
            role="user",
            content=[rng.choice(_CALLER_LINES)],
            created_at=t,
            metrics=_metrics_user(rng, t - 3.0),
        )
        items: list[ChatItem] = [user]
        turn = Turn(items=items)
        step = t + 0.4
        if index % HANDOFF_EVERY == HANDOFF_EVERY - 1 and len(agents) > 1:
            routes = workflow.agent(agent).handoffs
            route = routes[(index // HANDOFF_EVERY) % len(routes)]
            call_ids += 1
            call_id = f"call_{call_ids:06d}"
            items.append(
                FunctionCall(call_id=call_id, name=route.tool_name, arguments="{}", created_at=step)
            )
            items.append(
                FunctionCallOutput(
                    call_id=call_id,
                    name=route.tool_name,
                    output=route.say or "",
                    is_error=False,
                    created_at=step + 0.01,
                )
            )
            if route.say:
                items.append(
                    ChatMessage(
                        role="assistant",
                        content=[route.say],
                        created_at=step + 0.02,
                        metrics=_metrics_agent(rng, step + 0.5),
                    )
                )
            items.append(
                AgentHandoff(old_agent_id=agent, new_agent_id=route.to, created_at=step + 0.03)
            )
            turn.handoff = HandoffEntry(
                from_agent=agent, to_agent=route.to, reason=route.when, at=step
            )
            agent = route.to
            data.current_agent = agent
            items.append(
                AgentConfigUpdate(
                    instructions=factory.instructions_for(agent, data), created_at=step + 0.04
                )
            )
            step += 0.05
        elif index % RECORD_EVERY == RECORD_EVERY - 1 and fields:
            name = fields[(index // RECORD_EVERY) % len(fields)]
            spec = workflow.field(name)
            value = spec.example or "value"
            call_ids += 1
            call_id = f"call_{call_ids:06d}"
            items.append(
                FunctionCall(
                    call_id=call_id,
                    name=f"record_{name}",
                    arguments=f'{{"value": "{value}"}}',
                    created_at=step,
                )
            )
            data.fields = {**data.fields, name: value}
            items.append(
                AgentConfigUpdate(
                    instructions=factory.instructions_for(agent, data), created_at=step + 0.01
                )
            )
            items.append(
                FunctionCallOutput(
                    call_id=call_id,
                    name=f"record_{name}",
                    output=f"Recorded {name} = {value}.",
                    is_error=False,
                    created_at=step + 0.02,
                )
            )
            turn.recorded = (name, value)
            step += 0.03
        items.append(
            ChatMessage(
                role="assistant",
                content=[rng.choice(_AGENT_LINES)],
                created_at=step + 0.6,
                metrics=_metrics_agent(rng, step + 0.8),
            )
        )
        out.append(turn)
    return CallHistory(workflow=workflow, turns=out, start_agent=workflow.start)
