"""Transfer to a human, up to the LiveKit API: real calls (text-mode ``AgentSession``s on a real
redis-server, driven by the offline brain) whose transfers reach a loopback stand-in for the
LiveKit server API, which decodes the protobuf requests LiveKit's own API client sends.

What is not observed here (no SIP trunk, no LiveKit server): the caller's phone actually
ringing through to the human, the briefing's audio in the consult room, the move of the human
into the caller's room taking effect.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from frontdesk.agents.transfer import CallLine
from frontdesk.state import RedisSessionStore
from frontdesk.workflows.definition import Workflow
from frontdesk.workflows.runtime import Call, Persistence, start_call
from tests.conftest import TEST_CALLER_SECRET

from .livekit_standin import API_KEY, API_SECRET, LiveKitStandIn
from .support import FakeAcmeApi, tools_workflow

CALLER = "+15551230000"
ROOM = "call-room-1"
SAY = "I'm connecting you to a colleague now. Please stay on the line."
FAILURE = "I'm sorry, I couldn't reach a colleague just now. Let me keep helping you."
COLD = (('mode = "warm"', 'mode = "cold"'),)


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACME_TOKEN", "t")
    monkeypatch.delenv("LIVEKIT_SIP_OUTBOUND_TRUNK", raising=False)


def spoken(result: Any) -> list[str]:
    return [
        event.item.text_content
        for event in result.events
        if event.type == "message" and event.item.role == "assistant"
    ]


class Ended:
    """The line's ``end_call``: what the worker's ``JobContext.shutdown`` would be asked."""

    def __init__(self) -> None:
        self.reasons: list[str] = []
        self.event = asyncio.Event()

    def __call__(self, reason: str) -> None:
        self.reasons.append(reason)
        self.event.set()


@pytest.fixture
def persistence(
    redis_client: Any, make_store: Callable[..., RedisSessionStore]
) -> Callable[[Workflow], Persistence]:
    def build(workflow: Workflow) -> Persistence:
        return Persistence(
            store=make_store(redis_client, key_prefix="frontdesk"),
            settings=workflow.config.state,
            caller_secret=TEST_CALLER_SECRET,
        )

    return build


@asynccontextmanager
async def a_call(
    workflow: Workflow, persistence: Persistence, standin: LiveKitStandIn, *, sip: bool = True
) -> AsyncIterator[tuple[Call, CallLine, Ended]]:
    ended = Ended()
    line = CallLine(
        room_name=ROOM,
        caller_identity="sip_+15551230000",
        caller_is_sip=sip,
        url=standin.url,
        api_key=API_KEY,
        api_secret=API_SECRET,
        end_call=ended,
    )
    call = await start_call(
        workflow=workflow, caller_identity=CALLER, persistence=persistence, line=line
    )
    try:
        yield call, line, ended
    finally:
        await call.aclose("test over")


async def settle(line: CallLine) -> None:
    assert line.pending is not None, "no transfer was started"
    await asyncio.wait_for(line.pending, 20)


async def test_a_cold_transfer_says_the_line_then_transfers_the_sip_caller_and_ends_the_session(
    persistence: Callable[[Workflow], Persistence],
) -> None:
    async with FakeAcmeApi() as acme, LiveKitStandIn() as livekit:
        workflow = tools_workflow(acme.base_url, replace=COLD)
        store = persistence(workflow)
        async with a_call(workflow, store, livekit) as (call, line, ended):
            await call.session.run(user_input="Account AC-48213.")
            result = await call.session.run(user_input="Can I speak to someone, please?")
            result.expect.contains_function_call(name="transfer_to_human")
            assert spoken(result) == [SAY]  # verbatim, and nothing from the model after it
            await settle(line)
            assert ended.reasons == ["transferred to a human (cold)"]
            [seen] = livekit.seen
            assert (seen.service, seen.method) == ("livekit.SIP", "TransferSIPParticipant")
            assert seen.content_type == "application/protobuf"
            assert seen.request.room_name == ROOM
            assert seen.request.participant_identity == "sip_+15551230000"
            assert seen.request.transfer_to == "tel:+15550100200"
            # signed with the API secret, with the grants TransferSIPParticipant needs
            assert seen.claims is not None
            assert seen.claims.sip.call is True
            assert seen.claims.video.room_admin is True
            assert seen.claims.video.room == ROOM
            session_id = call.session_id
        stored = await store.store.load(session_id)
    assert stored.ended  # never resumed as an AI call
    assert stored.transfer is not None
    assert (stored.transfer.mode, stored.transfer.to, stored.transfer.from_agent) == (
        "cold",
        "tel:+15550100200",
        "support",
    )
    assert stored.calls[-1].reason == "transferred to a human (cold)"
    assert any(
        item.get("type") == "function_call" and item.get("name") == "transfer_to_human"
        for item in stored.items
    )


async def test_a_transferred_caller_who_calls_back_starts_a_fresh_ai_call(
    persistence: Callable[[Workflow], Persistence],
) -> None:
    async with FakeAcmeApi() as acme, LiveKitStandIn() as livekit:
        workflow = tools_workflow(acme.base_url, replace=COLD)
        store = persistence(workflow)
        async with a_call(workflow, store, livekit) as (call, line, _):
            await call.session.run(user_input="Account AC-48213.")
            await call.session.run(user_input="I want a person.")
            await settle(line)
            first = call.session_id
        again = await start_call(workflow=workflow, caller_identity=CALLER, persistence=store)
        try:
            assert not again.resumed
            assert again.session_id != first
        finally:
            await again.aclose("test over")


async def test_a_warm_transfer_dials_the_human_into_a_consult_room_briefs_them_then_joins_them(
    persistence: Callable[[Workflow], Persistence],
) -> None:
    async with FakeAcmeApi(outages={"AC-48213": "fibre cut"}) as acme, LiveKitStandIn() as livekit:
        workflow = tools_workflow(acme.base_url)
        store = persistence(workflow)
        async with a_call(workflow, store, livekit) as (call, line, ended):
            await call.session.run(user_input="My internet is down, account AC-48213.")
            result = await call.session.run(user_input="Let me talk to a human.")
            assert spoken(result) == [SAY]
            await settle(line)
            assert [seen.method for seen in livekit.seen] == [
                "CreateSIPParticipant",
                "MoveParticipant",
            ]
            dial, move = livekit.seen
            human = dial.request.participant_identity
            assert dial.request.sip_call_to == "+15550100200"
            assert dial.request.sip_trunk_id == "ST_acme_outbound"
            assert dial.request.room_name == f"{ROOM}-consult"
            assert dial.request.wait_until_answered is True
            assert dial.claims is not None and dial.claims.sip.call is True
            assert (move.request.room, move.request.identity, move.request.destination_room) == (
                f"{ROOM}-consult",
                human,
                ROOM,
            )
            assert move.claims is not None and move.claims.video.room_admin is True
            # the human heard the summary (the summary policy's machinery), verbatim
            [briefing] = line.briefings
            said = [
                item.text_content
                for item in briefing.items
                if item.type == "message" and item.role == "assistant"
            ]
            assert call.userdata.transfer is not None
            summary = call.userdata.transfer.summary
            assert summary is not None and said == [summary]
            assert "My internet is down, account AC-48213." in summary
            assert ended.reasons == ["transferred to a human (warm)"]
            session_id = call.session_id
        stored = await store.store.load(session_id)
    assert stored.ended
    assert stored.transfer is not None and stored.transfer.summary == summary


async def test_a_call_that_ends_while_the_sip_transfer_is_under_way_is_stored_as_transferred(
    persistence: Callable[[Workflow], Persistence],
) -> None:
    hold = asyncio.Event()
    async with FakeAcmeApi() as acme, LiveKitStandIn(hold=hold) as livekit:
        workflow = tools_workflow(acme.base_url, replace=COLD)
        store = persistence(workflow)
        async with a_call(workflow, store, livekit) as (call, line, _):
            await call.session.run(user_input="I want a person.")
            for _ in range(400):  # until LiveKit has the request
                if livekit.seen:
                    break
                await asyncio.sleep(0.025)
            assert livekit.calls("TransferSIPParticipant")
            # the caller's SIP leg leaves the room as it is transferred: the call is saved now
            report = await call.aclose("caller dropped")
            hold.set()
            await settle(line)
            session_id = call.session_id
        stored = await store.store.load(session_id)
    assert report.reason == "transferred to a human (cold)"
    assert stored.ended and stored.transfer is not None


async def test_a_failed_transfer_says_the_failure_line_and_the_ai_call_goes_on(
    persistence: Callable[[Workflow], Persistence], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with (
        FakeAcmeApi() as acme,
        LiveKitStandIn(fail={"TransferSIPParticipant": (412, "failed_precondition")}) as livekit,
    ):
        workflow = tools_workflow(acme.base_url, replace=COLD)
        store = persistence(workflow)
        async with a_call(workflow, store, livekit) as (call, line, ended):
            await call.session.run(user_input="Account AC-48213.")
            await call.session.run(user_input="I want a person.")
            await settle(line)
            assert len(livekit.calls("TransferSIPParticipant")) == 1  # the fault landed
            assert not ended.reasons
            assert call.userdata.transfer is None
            lines = [
                item.text_content
                for item in call.session.history.items
                if item.type == "message" and item.role == "assistant"
            ]
            assert lines[-2:] == [SAY, FAILURE]
            after = await call.session.run(user_input="OK, book an engineer visit on friday.")
            assert spoken(after)[-1].startswith("Booked an engineer visit for AC-48213")
            session_id = call.session_id
        stored = await store.store.load(session_id)
    assert not stored.ended and stored.transfer is None
    assert "transfer to a human failed at TransferSIPParticipant" in caplog.text


async def test_a_web_caller_cannot_be_cold_transferred_and_no_request_is_sent(
    persistence: Callable[[Workflow], Persistence],
) -> None:
    async with FakeAcmeApi() as acme, LiveKitStandIn() as livekit:
        workflow = tools_workflow(acme.base_url, replace=COLD)
        async with a_call(workflow, persistence(workflow), livekit, sip=False) as (call, line, _):
            await call.session.run(user_input="I want a person.")
            await settle(line)
            assert livekit.seen == []
            assert call.userdata.transfer is None


async def test_a_call_without_a_room_hears_only_the_failure_line_not_a_promise_of_a_transfer(
    persistence: Callable[[Workflow], Persistence],
) -> None:
    async with FakeAcmeApi() as acme:
        workflow = tools_workflow(acme.base_url)
        call = await start_call(
            workflow=workflow, caller_identity=CALLER, persistence=persistence(workflow)
        )
        try:
            assert call.userdata.line is None  # text mode: nothing to transfer the caller with
            result = await call.session.run(user_input="I want a person.")
            assert spoken(result) == [FAILURE]
            assert call.userdata.transfer is None
        finally:
            await call.aclose("test over")


async def test_a_warm_transfer_without_a_trunk_fails_before_dialling(
    persistence: Callable[[Workflow], Persistence], caplog: pytest.LogCaptureFixture
) -> None:
    async with FakeAcmeApi() as acme, LiveKitStandIn() as livekit:
        workflow = tools_workflow(
            acme.base_url, replace=(('sip_trunk_id = "ST_acme_outbound"\n', ""),)
        )
        async with a_call(workflow, persistence(workflow), livekit) as (call, line, ended):
            await call.session.run(user_input="I want a person.")
            await settle(line)
            assert livekit.seen == [] and not ended.reasons
    assert "no SIP outbound trunk: set sip_trunk_id or LIVEKIT_SIP_OUTBOUND_TRUNK" in caplog.text


def test_a_transfer_target_that_is_not_a_number_or_sip_uri_is_a_config_error() -> None:
    from frontdesk.errors import ConfigError

    with pytest.raises(ConfigError) as error:
        tools_workflow(
            "http://127.0.0.1:1", replace=(('to = "tel:+15550100200"', 'to = "555-0100"'),)
        )
    [problem] = error.value.problems
    assert "agents.support.transfer.to: '555-0100' is not a transfer target" in problem
    assert problem.startswith("tools.toml:")
