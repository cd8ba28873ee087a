"""Transfer to a human: the ``transfer_to_human`` tool of an agent with ``[agents.<a>.transfer]``.

The model calls the tool; the tool asks for no tool reply (LiveKit's ``ToolResult(...,
reply_required=False)``) and the transfer goes on in the background, in this order:

1. the caller hears the ``say`` line, verbatim (``session.say``), to the end;
2. **cold**: LiveKit's ``SipService.transfer_sip_participant`` (``TransferSIPParticipant``) hands
   the caller's SIP leg to ``to``;
   **warm**: a summary of the call is made by the session's model with the ``summary`` context
   policy's machinery (:func:`frontdesk.agents.handoff.summarize`); a briefing
   ``AgentSession`` joins a consult room, the human is dialled into it with
   ``CreateSIPParticipant`` (``wait_until_answered``), hears the summary verbatim, and is moved
   into the caller's room (``RoomService.move_participant``);
3. the session records the transfer (``CallerData.transfer``, stored in the session's meta) and
   the AI call ends (:attr:`CallLine.end_call`); the stored session is marked ended, so it never
   resumes as an AI call.

A failure at any step is logged with the session id and step, the caller hears
``failure_line`` verbatim and the AI call goes on.

LiveKit's own ``WarmTransferTask`` (``livekit.agents.beta.workflows``, shipped in 1.8.9) is
not used: it needs a job context and a live room connection for its consult session, and its
consult agent is a model briefing the human in its own words (and deciding when to connect)
rather than the configured summary; the steps above are the same LiveKit API calls it makes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from livekit import api, rtc
from livekit.agents import Agent, AgentSession, RunContext, ToolError, function_tool, llm, tts
from livekit.agents.llm import ChatContext, RawFunctionTool, ToolResult
from livekit.agents.voice.room_io import RoomOptions

from frontdesk.agents.handoff import summarize
from frontdesk.agents.prompt import fill_verbatim
from frontdesk.agents.userdata import CallerData
from frontdesk.state.models import TransferEntry
from frontdesk.workflows.definition.transfer import TRANSFER_TOOL, HumanTransfer

logger = logging.getLogger(__name__)

TRUNK_ENV = "LIVEKIT_SIP_OUTBOUND_TRUNK"
"""Where a warm transfer finds its SIP outbound trunk when the config names none (as LiveKit's
``WarmTransferTask`` does)."""
BRIEFING_INSTRUCTIONS = (
    "You brief a colleague who is taking over a phone call. You only read out the summary "
    "you are given."
)


class TransferFailure(Exception):
    """A step of a transfer failed; the message names it (never a secret)."""


class ConsultRooms(Protocol):
    """Joins the consult room of a warm transfer, where the human is briefed."""

    async def join(self, room_name: str) -> rtc.Room: ...


@dataclass
class LiveKitConsultRooms:
    """Joins consult rooms on the LiveKit server the worker is registered with."""

    url: str
    api_key: str
    api_secret: str
    identity: str = "frontdesk-briefing"

    async def join(self, room_name: str) -> rtc.Room:
        token = (
            api.AccessToken(self.api_key, self.api_secret)
            .with_identity(self.identity)
            .with_kind("agent")
            .with_grants(
                api.VideoGrants(
                    room_join=True, room=room_name, can_publish=True, can_subscribe=True
                )
            )
            .to_jwt()
        )
        room = rtc.Room()
        await room.connect(self.url, token)
        return room


@dataclass
class CallLine:
    """Where the caller is on LiveKit: what a transfer to a human needs (None in text mode)."""

    room_name: str
    caller_identity: str
    """The caller's participant identity in the room (a SIP participant for a cold transfer)."""
    caller_is_sip: bool
    url: str
    api_key: str
    api_secret: str
    end_call: Callable[[str], None]
    """Ends the AI side of the call (the worker's ``JobContext.shutdown``)."""
    consult: ConsultRooms | None = None
    """Joins warm transfers' consult rooms; None: the briefing session runs without a room."""
    briefing_tts: tts.TTS | None = None
    """The voice that briefs the human (the call's TTS)."""
    pending: asyncio.Task[None] | None = None
    """The transfer under way, if any."""
    briefings: list[ChatContext] = field(default_factory=list)
    """What each briefing session said (its history), newest last."""

    def client(self) -> api.LiveKitAPI:
        return api.LiveKitAPI(self.url, self.api_key, self.api_secret)


def call_line_from_env(
    *,
    room_name: str,
    caller_identity: str,
    caller_is_sip: bool,
    end_call: Callable[[str], None],
    briefing_tts: tts.TTS | None = None,
    env: dict[str, str] | None = None,
) -> CallLine | None:
    """The worker's line: LiveKit's URL and API key from ``LIVEKIT_URL`` / ``_API_KEY`` /
    ``_API_SECRET``; None when they are not set (console mode: no transfer possible)."""
    source = dict(os.environ) if env is None else env
    url, key, secret = (
        source.get("LIVEKIT_URL", ""),
        source.get("LIVEKIT_API_KEY", ""),
        source.get("LIVEKIT_API_SECRET", ""),
    )
    if not (url and key and secret):
        return None
    return CallLine(
        room_name=room_name,
        caller_identity=caller_identity,
        caller_is_sip=caller_is_sip,
        url=url,
        api_key=key,
        api_secret=secret,
        end_call=end_call,
        consult=LiveKitConsultRooms(url, key, secret),
        briefing_tts=briefing_tts,
    )


def make_human_transfer_tool(
    *, from_agent: str, spec: HumanTransfer, summarizer: Callable[[], llm.LLM | None]
) -> RawFunctionTool[Any, Any]:
    """The ``transfer_to_human`` tool of ``from_agent``; ``summarizer`` gives the model that
    writes a warm transfer's summary (the agent's or the session's)."""
    schema = {
        "name": TRANSFER_TOOL,
        "description": f"Transfer the caller to a human colleague. Use when: {spec.when}",
        "parameters": {"type": "object", "properties": {}, "additionalProperties": False},
    }

    async def transfer(raw_arguments: dict[str, object], context: RunContext[CallerData]) -> Any:
        data = context.userdata
        line: CallLine | None = data.line
        busy = line is not None and line.pending is not None and not line.pending.done()
        if data.transfer is not None or busy:
            raise ToolError("The transfer to a colleague is already under way: say nothing.")
        session = context.session
        if line is None:
            # no promise of a transfer that cannot happen: the caller hears only why not
            logger.warning(
                "session %s: transfer to a human not possible: this call has no LiveKit room "
                "(text mode)",
                data.session_id,
            )
            session.say(spec.failure_line)
            return ToolResult("The transfer is not possible on this call.", reply_required=False)
        handle = session.say(fill_verbatim(spec.say, data.fields) or spec.say)
        model = summarizer() if spec.mode == "warm" else None
        history = session.history.copy()
        line.pending = asyncio.create_task(
            _carry_out(spec, from_agent, data, session, handle, line, model, history),
            name=f"transfer {data.session_id}",
        )
        logger.info(
            "session %s: %s transfer to a human requested by %s",
            data.session_id,
            spec.mode,
            from_agent,
        )
        return ToolResult(
            f"The caller is being transferred to a colleague ({spec.mode}). Say nothing more.",
            reply_required=False,
        )

    return function_tool(transfer, raw_schema=schema)


async def _carry_out(
    spec: HumanTransfer,
    from_agent: str,
    data: CallerData,
    session: AgentSession[Any],
    handle: Any,
    line: CallLine,
    model: llm.LLM | None,
    history: ChatContext,
) -> None:
    steps = ["playing the transfer line"]
    summary: str | None = None

    def commit() -> None:
        """Recorded just before the handover request: if the caller's leg leaves the room (and
        the call is saved) while it is under way, the session is already stored as
        transferred; a failure takes it back."""
        data.transfer = TransferEntry(
            from_agent=from_agent, to=spec.to, mode=spec.mode, at=time.time(), summary=summary
        )

    try:
        summary_task = (
            asyncio.create_task(summarize(model, history, spec.summary_prompt))
            if model is not None
            else None
        )
        await handle.wait_for_playout()  # the caller hears the whole line first
        client = line.client()
        try:
            if spec.mode == "cold":
                steps.append("TransferSIPParticipant")
                await _cold(spec, line, client, commit)
            else:
                steps.append("summarising the call")
                if summary_task is None:
                    raise TransferFailure("no model to summarise the call with")
                summary = await summary_task
                await _warm(spec, data, line, client, summary, steps, commit)
        finally:
            await client.aclose()
    except Exception as exc:
        logger.warning(
            "session %s: %s transfer to a human failed at %s: %s",
            data.session_id,
            spec.mode,
            steps[-1],
            _short(exc),
        )
        data.transfer = None
        try:
            await session.say(spec.failure_line).wait_for_playout()
        except RuntimeError as closed:  # the call ended meanwhile: nobody to tell
            logger.info("session %s: failure line not spoken: %s", data.session_id, closed)
        return
    logger.info(
        "session %s: transferred to a human (%s, %s); the AI call ends",
        data.session_id,
        spec.mode,
        spec.to,
    )
    line.end_call(f"transferred to a human ({spec.mode})")


async def _cold(
    spec: HumanTransfer, line: CallLine, client: api.LiveKitAPI, commit: Callable[[], None]
) -> None:
    if not line.caller_is_sip:
        raise TransferFailure("the caller is not on a phone line (SIP), so cannot be transferred")
    commit()
    response = await client.sip.transfer_sip_participant(
        api.TransferSIPParticipantRequest(
            room_name=line.room_name,
            participant_identity=line.caller_identity,
            transfer_to=spec.to,
            play_dialtone=spec.play_dialtone,
        )
    )
    if response.status == api.SIPTransferStatus.STS_TRANSFER_FAILED:
        raise TransferFailure(f"LiveKit reports the transfer failed: {response.reason}")


async def _warm(
    spec: HumanTransfer,
    data: CallerData,
    line: CallLine,
    client: api.LiveKitAPI,
    summary: str,
    steps: list[str],
    commit: Callable[[], None],
) -> None:
    """Dial, brief and join the human; ``steps`` says how far it got (for a failure's log)."""
    trunk = spec.sip_trunk_id or os.environ.get(TRUNK_ENV, "")
    if not trunk:
        raise TransferFailure(f"no SIP outbound trunk: set sip_trunk_id or {TRUNK_ENV}")
    consult_room = f"{line.room_name}-consult"
    human = f"human-{data.session_id[:12]}"
    steps.append("joining the consult room")
    room = await line.consult.join(consult_room) if line.consult is not None else None
    # None (not NOT_GIVEN): no such component, rather than a LiveKit default
    components: dict[str, Any] = {"llm": None, "stt": None, "vad": None, "tts": line.briefing_tts}
    briefing: AgentSession[None] = AgentSession(
        turn_handling={"turn_detection": None}, **components
    )
    try:
        agent = Agent(instructions=BRIEFING_INSTRUCTIONS)
        if room is not None:
            await briefing.start(
                agent,
                room=room,
                room_options=RoomOptions(participant_identity=human, close_on_disconnect=False),
            )
        else:
            await briefing.start(agent)
        steps.append("CreateSIPParticipant (dialling the human)")
        await client.sip.create_sip_participant(
            api.CreateSIPParticipantRequest(
                sip_trunk_id=trunk,
                sip_call_to=spec.dial_target,
                room_name=consult_room,
                participant_identity=human,
                participant_name="Frontdesk transfer",
                wait_until_answered=True,
            )
        )
        steps.append("briefing the human")
        await briefing.say(summary, allow_interruptions=False).wait_for_playout()
        line.briefings.append(briefing.history.copy())
        steps.append("MoveParticipant (joining the human to the caller)")
        commit()
        await client.room.move_participant(
            api.MoveParticipantRequest(
                room=consult_room, identity=human, destination_room=line.room_name
            )
        )
    finally:
        await briefing.aclose()
        if room is not None:
            await room.disconnect()


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text[:300]}"
