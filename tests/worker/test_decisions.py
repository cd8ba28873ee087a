"""The worker's pure decisions: load, which jobs to take, who is calling, credentials."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from livekit import rtc
from livekit.agents import JobRequest
from livekit.agents.job import JobAcceptArguments
from livekit.protocol import agent as agent_proto
from livekit.protocol import models
from livekit.rtc._proto import handle_pb2, participant_pb2

from frontdesk.errors import WorkerSetupError
from frontdesk.workflows.definition import Workflow
from frontdesk.workflows.worker import (
    MAX_METADATA_BYTES,
    LiveSessions,
    SessionLoad,
    caller_identity,
    check_credentials,
    compute_load,
    decide_job,
    participant_kinds,
    request_job,
)

from .conftest import LIVEKIT_KEYS, variant

# --------------------------------------------------------------------------- load


@pytest.mark.parametrize(
    ("live", "max_sessions", "load"),
    [(0, 25, 0.0), (5, 25, 0.2), (10, 40, 0.25), (25, 25, 1.0), (1, 1, 1.0)],
)
def test_compute_load_is_live_over_max(live: int, max_sessions: int, load: float) -> None:
    assert compute_load(live, max_sessions) == pytest.approx(load)


@pytest.mark.parametrize(
    ("live", "max_sessions", "load"), [(30, 25, 1.0), (-3, 25, 0.0), (2, 0, 1.0), (0, -1, 1.0)]
)
def test_compute_load_is_clamped_to_zero_one(live: int, max_sessions: int, load: float) -> None:
    assert compute_load(live, max_sessions) == load


class FakeServer:
    """Only what SessionLoad reads of LiveKit's AgentServer: its running jobs."""

    def __init__(self, jobs: int) -> None:
        self.active_jobs: list[object] = [object()] * jobs


def test_load_fnc_counts_running_jobs_and_logs_only_changes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    load = SessionLoad(max_sessions=4)
    with caplog.at_level(logging.INFO, logger="frontdesk.workflows.worker"):
        assert load(FakeServer(1)) == 0.25  # type: ignore[arg-type]
        assert load(FakeServer(1)) == 0.25  # type: ignore[arg-type]
        assert load(FakeServer(6)) == 1.0  # type: ignore[arg-type]
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["worker load 0.25 (1/4 live calls)", "worker load 1.00 (6/4 live calls)"]


def test_live_sessions_counter_never_goes_negative() -> None:
    live = LiveSessions()
    assert live.started() == 1
    assert live.started() == 2
    assert live.ended() == 1
    assert live.ended() == 0
    assert live.ended() == 0
    assert live.count == 0


# --------------------------------------------------------------------------- decide_job


def test_no_metadata_accepts_with_the_default_workflow(workflow: Workflow) -> None:
    for metadata in ("", "   \n"):
        decision = decide_job(metadata, workflow)
        assert decision.accept, decision.reason
        assert decision.workflow_name == "acme-broadband"


def test_matching_workflow_is_accepted(workflow: Workflow) -> None:
    decision = decide_job(json.dumps({"workflow": "acme-broadband"}), workflow)
    assert decision.accept
    assert decision.workflow_name == "acme-broadband"
    assert "workflow 'acme-broadband'" in decision.reason


def test_matching_agent_type_is_accepted(workflow: Workflow) -> None:
    decision = decide_job(json.dumps({"agent_type": "acme-broadband", "caller": "x"}), workflow)
    assert decision.accept
    assert decision.workflow_name == "acme-broadband"


def test_object_naming_no_workflow_is_accepted_as_default(workflow: Workflow) -> None:
    for metadata in ('{"campaign": "spring"}', '{"workflow": null}', "{}"):
        decision = decide_job(metadata, workflow)
        assert decision.accept, (metadata, decision.reason)
        assert decision.workflow_name == "acme-broadband"


def test_unknown_workflow_is_rejected_naming_what_is_served(workflow: Workflow) -> None:
    decision = decide_job('{"workflow": "dental-clinic"}', workflow)
    assert not decision.accept
    assert "'dental-clinic' is not served here" in decision.reason
    assert "serves: acme-broadband" in decision.reason


def test_a_served_workflow_with_an_unserved_agent_type_is_rejected(workflow: Workflow) -> None:
    decision = decide_job('{"workflow": "acme-broadband", "agent_type": "other"}', workflow)
    assert not decision.accept
    assert "agent_type 'other'" in decision.reason


@pytest.mark.parametrize(
    ("metadata", "why"),
    [
        ("{not json", "not valid JSON"),
        ("{'workflow': 'acme-broadband'}", "not valid JSON"),
        ('"acme-broadband"', "must be a JSON object, got string"),
        ('["acme-broadband"]', "must be a JSON object, got array"),
        ("42", "must be a JSON object, got number"),
        ("null", "must be a JSON object, got null"),
        ('{"workflow": 5}', "'workflow' must be a non-empty string, got number"),
        ('{"workflow": ["acme-broadband"]}', "'workflow' must be a non-empty string, got array"),
        ('{"agent_type": {"name": "x"}}', "'agent_type' must be a non-empty string, got object"),
        ('{"workflow": true}', "got boolean"),
        ('{"workflow": ""}', "'workflow' must be a non-empty string, got string"),
        ('{"workflow": 1' + "0" * 5000 + "}", "not valid JSON"),  # over Python's int digit limit
        ("[" * 20_000 + "]" * 20_000, "not valid JSON"),  # nesting deeper than the recursion limit
    ],
)
def test_malformed_metadata_is_rejected_cleanly(
    workflow: Workflow, metadata: str, why: str
) -> None:
    decision = decide_job(metadata, workflow)
    assert not decision.accept
    assert why in decision.reason
    assert len(decision.reason) < 300


def test_a_one_megabyte_value_is_rejected_unparsed(workflow: Workflow) -> None:
    metadata = json.dumps({"workflow": "acme-broadband", "notes": "x" * 1_000_000})
    decision = decide_job(metadata, workflow)
    assert not decision.accept
    assert f"more than {MAX_METADATA_BYTES} bytes" in decision.reason


def test_multibyte_text_counts_in_bytes(workflow: Workflow) -> None:
    metadata = json.dumps({"notes": "é" * (MAX_METADATA_BYTES // 2 + 10)}, ensure_ascii=False)
    assert len(metadata) < MAX_METADATA_BYTES < len(metadata.encode())
    assert not decide_job(metadata, workflow).accept


def test_non_text_metadata_is_rejected_not_raised(workflow: Workflow) -> None:
    decision = decide_job(None, workflow)  # type: ignore[arg-type]
    assert not decision.accept
    assert "not text" in decision.reason


def test_empty_serves_means_the_workflows_own_name() -> None:
    own = variant('serves = ["acme-broadband"]', "serves = []")
    assert decide_job('{"workflow": "acme-broadband"}', own).accept
    assert not decide_job('{"workflow": "acme"}', own).accept


def test_serves_can_list_several_names() -> None:
    several = variant('serves = ["acme-broadband"]', 'serves = ["acme-broadband", "acme-v2"]')
    decision = decide_job('{"agent_type": "acme-v2"}', several)
    assert decision.accept
    assert decision.workflow_name == "acme-v2"


@settings(max_examples=300, deadline=None)
@given(
    st.text(max_size=200)
    | st.recursive(
        st.none() | st.booleans() | st.text(max_size=10) | st.integers(),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(st.sampled_from(["workflow", "agent_type", "x"]), inner, max_size=3)
        ),
    ).map(json.dumps)
)
def test_decide_job_never_raises(workflow: Workflow, metadata: str) -> None:
    decision = decide_job(metadata, workflow)
    assert isinstance(decision.accept, bool)
    assert decision.reason


# --------------------------------------------------------------------------- request_fnc


def job_request(metadata: str, answers: list[tuple[str, Any]]) -> JobRequest:
    """A real LiveKit JobRequest whose accept/reject callbacks record the answer."""

    async def on_accept(arguments: JobAcceptArguments) -> None:
        answers.append(("accept", arguments))

    async def on_reject(terminate: bool) -> None:
        answers.append(("reject", terminate))

    job = agent_proto.Job(id="AJ_test", room=models.Room(name="call-1"), metadata=metadata)
    return JobRequest(job=job, on_reject=on_reject, on_accept=on_accept)


async def test_request_fnc_accepts_a_served_job(
    workflow: Workflow, caplog: pytest.LogCaptureFixture
) -> None:
    answers: list[tuple[str, Any]] = []
    with caplog.at_level(logging.INFO, logger="frontdesk.workflows.worker"):
        await request_job(job_request('{"workflow": "acme-broadband"}', answers), workflow=workflow)
    [(answer, arguments)] = answers
    assert answer == "accept"
    assert arguments.attributes == {"frontdesk.workflow": "acme-broadband"}
    assert "accepting job AJ_test (room 'call-1')" in caplog.text


async def test_request_fnc_rejects_without_terminating_and_says_why(
    workflow: Workflow, caplog: pytest.LogCaptureFixture
) -> None:
    answers: list[tuple[str, Any]] = []
    with caplog.at_level(logging.INFO, logger="frontdesk.workflows.worker"):
        await request_job(job_request("[1, 2]", answers), workflow=workflow)
    # terminate=False: LiveKit may still give the job to a worker that serves it
    assert answers == [("reject", False)]
    assert "rejecting job AJ_test (room 'call-1'): metadata must be a JSON object" in caplog.text


# --------------------------------------------------------------------------- caller identity


def remote_participant(
    identity: str,
    *,
    kind: int = participant_pb2.ParticipantKind.PARTICIPANT_KIND_STANDARD,
    attributes: dict[str, str] | None = None,
    disconnect_reason: int = 0,
) -> rtc.RemoteParticipant:
    """A real ``livekit.rtc.RemoteParticipant`` built from its protobuf info.

    Handle id 0 is LiveKit's invalid handle, so no native resource is involved.
    """
    info = participant_pb2.ParticipantInfo(
        sid=f"PA_{identity}",
        identity=identity,
        kind=kind,  # type: ignore[arg-type]
        attributes=attributes or {},
        disconnect_reason=disconnect_reason,  # type: ignore[arg-type]
    )
    owned = participant_pb2.OwnedParticipant(handle=handle_pb2.FfiOwnedHandle(id=0), info=info)
    return rtc.RemoteParticipant(owned)


def test_sip_caller_is_known_by_phone_number() -> None:
    """Uses real livekit.rtc.RemoteParticipant objects (see remote_participant)."""
    caller = remote_participant(
        "sip_+15551234567",
        kind=participant_pb2.ParticipantKind.PARTICIPANT_KIND_SIP,
        attributes={"sip.phoneNumber": "+15551234567", "sip.trunkID": "ST_x"},
    )
    assert caller_identity(caller) == "+15551234567"


def test_standard_caller_is_known_by_identity() -> None:
    assert caller_identity(remote_participant("web-user-42")) == "web-user-42"


def test_a_web_caller_cannot_claim_a_phone_number() -> None:
    spoofer = remote_participant("web-user-42", attributes={"sip.phoneNumber": "+15551234567"})
    assert caller_identity(spoofer) == "web-user-42"


def test_sip_caller_without_number_falls_back_to_identity() -> None:
    hidden = remote_participant(
        "sip_anonymous", kind=participant_pb2.ParticipantKind.PARTICIPANT_KIND_SIP
    )
    assert caller_identity(hidden) == "sip_anonymous"


def test_console_mock_participant_is_known_by_identity() -> None:
    """LiveKit's console runs on a mock room whose participant has mock attributes."""
    from livekit.agents.ipc.mock_room import create_mock_room

    [participant] = create_mock_room().remote_participants.values()
    assert caller_identity(participant) == "mock_user"


def test_participant_kinds_map_config_names() -> None:
    assert participant_kinds(["sip"]) == [rtc.ParticipantKind.PARTICIPANT_KIND_SIP]
    assert participant_kinds(["standard", "sip"]) == [
        rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD,
        rtc.ParticipantKind.PARTICIPANT_KIND_SIP,
    ]
    # the console's caller is a standard participant: always accepted there
    assert rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD in participant_kinds(["sip"], console=True)


# --------------------------------------------------------------------------- credentials


def test_complete_credentials_pass() -> None:
    check_credentials(LIVEKIT_KEYS)
    check_credentials({**LIVEKIT_KEYS, "LIVEKIT_URL": "ws://localhost:7880"})


@pytest.mark.parametrize("missing", sorted(LIVEKIT_KEYS))
def test_each_missing_credential_is_named(missing: str) -> None:
    env = {name: value for name, value in LIVEKIT_KEYS.items() if name != missing}
    with pytest.raises(WorkerSetupError, match=missing):
        check_credentials(env)
    with pytest.raises(WorkerSetupError, match=missing):
        check_credentials({**env, missing: "  "})


def test_all_missing_credentials_are_named_at_once() -> None:
    with pytest.raises(WorkerSetupError) as raised:
        check_credentials({})
    assert "LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET" in str(raised.value)


@pytest.mark.parametrize("url", ["myproject.livekit.cloud", "ftp://host", "wss://"])
def test_a_url_that_is_not_a_livekit_url_is_refused(url: str) -> None:
    with pytest.raises(WorkerSetupError, match="LIVEKIT_URL must look like"):
        check_credentials({**LIVEKIT_KEYS, "LIVEKIT_URL": url})
