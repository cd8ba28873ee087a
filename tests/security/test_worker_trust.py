"""The worker's side of who may resume: caller kinds, presented and published tokens, hang-ups."""

from __future__ import annotations

import json
from typing import Any
from unittest.mock import MagicMock

from livekit import rtc
from livekit.rtc._proto import participant_pb2

from frontdesk.workflows.worker import (
    ReconnectWatch,
    caller_kind,
    presented_resume_token,
    publish_resume_token,
)
from tests.worker.test_decisions import remote_participant

TOKEN = "0123456789abcdef0123456789abcdef.1999999999." + "A" * 43
SIP = participant_pb2.ParticipantKind.PARTICIPANT_KIND_SIP


def test_phone_callers_are_sip_and_everyone_else_is_web() -> None:
    assert caller_kind(remote_participant("sip_x", kind=SIP)) == "sip"
    assert caller_kind(remote_participant("alice")) == "web"


def test_a_web_caller_presents_its_token_as_an_attribute() -> None:
    web = remote_participant("alice", attributes={"frontdesk.resume_token": TOKEN})
    assert presented_resume_token(web) == TOKEN


def test_tokens_from_phone_callers_and_oversized_ones_are_ignored() -> None:
    sip = remote_participant("sip_x", kind=SIP, attributes={"frontdesk.resume_token": TOKEN})
    assert presented_resume_token(sip) is None
    huge = remote_participant("alice", attributes={"frontdesk.resume_token": "x" * 10_000})
    assert presented_resume_token(huge) is None
    assert presented_resume_token(remote_participant("alice")) is None


def test_a_token_in_the_metadata_json_is_read_too() -> None:
    web = MagicMock(kind=rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD, attributes={})
    web.metadata = json.dumps({"frontdesk.resume_token": TOKEN})
    assert presented_resume_token(web) == TOKEN
    web.metadata = "[" * 10_000  # malformed: ignored, never raised
    assert presented_resume_token(web) is None


async def test_the_token_is_published_as_the_agents_attribute() -> None:
    published: list[dict[str, str]] = []

    async def set_attributes(attributes: dict[str, str]) -> None:
        published.append(attributes)

    room: Any = MagicMock()
    room.local_participant.set_attributes = set_attributes
    await publish_resume_token(room, TOKEN)
    await publish_resume_token(room, None)
    assert published == [{"frontdesk.resume_token": TOKEN}]

    async def failing(attributes: dict[str, str]) -> None:
        raise RuntimeError("room gone")

    room.local_participant.set_attributes = failing
    await publish_resume_token(room, TOKEN)  # logged, not raised


def test_a_hang_up_is_told_apart_from_a_drop() -> None:
    ended: list[str] = []
    watch = ReconnectWatch(identity="alice", grace=0, end_call=ended.append, label="caller#1")
    watch.participant_disconnected(
        remote_participant("alice", disconnect_reason=rtc.DisconnectReason.CLIENT_INITIATED)
    )
    assert watch.hung_up and ended == ["caller left (CLIENT_INITIATED)"]
    dropped = ReconnectWatch(identity="alice", grace=0, end_call=ended.append)
    dropped.participant_disconnected(
        remote_participant("alice", disconnect_reason=rtc.DisconnectReason.SIGNAL_CLOSE)
    )
    assert not dropped.hung_up


async def test_finish_call_passes_the_hang_up_on() -> None:
    import time
    from types import SimpleNamespace

    from frontdesk.workflows.runtime import CallMetrics
    from frontdesk.workflows.worker import finish_call

    seen: list[bool] = []

    class Call:
        session_id = "s-1"
        resumed = False

        async def aclose(
            self, reason: str = "", *, metrics: Any = None, hung_up: bool = False
        ) -> Any:
            seen.append(hung_up)
            return SimpleNamespace(caller_turns=1, agents=["support"], saved=True)

    await finish_call(
        Call(), reason="caller left", metrics=CallMetrics(), started=time.monotonic(), hung_up=True
    )
    await finish_call(Call(), reason="dropped", metrics=CallMetrics(), started=time.monotonic())
    assert seen == [True, False]
