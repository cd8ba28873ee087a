"""Which jobs this worker takes: dispatch by workflow name, and who is calling.

Several workflows can share one LiveKit project. A job's metadata (a JSON object) may name the
``workflow`` or ``agent_type`` it wants; this worker accepts only the names in ``[worker] serves``,
and rejects the others *without terminating them*, so a worker that does serve them gets the job.
Malformed metadata is rejected with a log line, never an exception (a request handler that raises
leaves LiveKit waiting for an answer). SIP callers are known by their phone number
(``sip.phoneNumber``), which is what lets a dropped phone call resume; web callers by their
participant identity.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from livekit import rtc
from livekit.agents import JobRequest

from frontdesk.state.identity import CallerKind
from frontdesk.state.tokens import MAX_TOKEN_LENGTH, TOKEN_ATTRIBUTE
from frontdesk.workflows.definition import Workflow

logger = logging.getLogger(__name__)

MAX_METADATA_BYTES = 64 * 1024
"""Job metadata longer than this is rejected unparsed: it is a routing hint, not a payload."""

SIP_PHONE_ATTRIBUTE = "sip.phoneNumber"
"""LiveKit SIP's participant attribute holding the caller's phone number."""

PARTICIPANT_KINDS: dict[str, rtc.ParticipantKind.ValueType] = {
    "standard": rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD,
    "sip": rtc.ParticipantKind.PARTICIPANT_KIND_SIP,
}
"""``[worker] participant_kinds`` names → LiveKit's participant kinds."""


@dataclass(frozen=True)
class JobDecision:
    """Whether to take a job, why (for the log), and which served name it asked for."""

    accept: bool
    reason: str
    workflow_name: str | None = None


def short_repr(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def served_names(workflow: Workflow) -> tuple[str, ...]:
    """``[worker] serves``, or the workflow's own name when that is empty."""
    return workflow.config.worker.serves or (workflow.name,)


def decide_job(metadata: str, workflow: Workflow) -> JobDecision:
    """Accept or reject a job by its metadata; never raises.

    No metadata, or a JSON object naming neither ``workflow`` nor ``agent_type``: accept with
    this worker's workflow (automatic dispatch sends jobs without metadata). A name given must
    be one this worker serves. Anything that is not a JSON object of strings is rejected.
    """
    if not isinstance(metadata, str):
        return JobDecision(False, f"metadata is not text ({type(metadata).__name__})")
    if (
        len(metadata) > MAX_METADATA_BYTES
        or len(metadata.encode("utf-8", "replace")) > MAX_METADATA_BYTES
    ):
        return JobDecision(False, f"metadata is too large (more than {MAX_METADATA_BYTES} bytes)")
    if not metadata.strip():
        return JobDecision(True, "no metadata: default workflow", workflow.name)
    try:
        data = json.loads(metadata)
    except (ValueError, RecursionError) as exc:
        return JobDecision(False, f"metadata is not valid JSON ({short_repr(str(exc))})")
    if not isinstance(data, dict):
        return JobDecision(False, f"metadata must be a JSON object, got {_json_type(data)}")
    serves = served_names(workflow)
    requested: list[tuple[str, str]] = []
    for key in ("workflow", "agent_type"):
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            return JobDecision(
                False, f"metadata '{key}' must be a non-empty string, got {_json_type(value)}"
            )
        requested.append((key, value))
    if not requested:
        return JobDecision(True, "metadata names no workflow: default workflow", workflow.name)
    for key, value in requested:
        if value not in serves:
            return JobDecision(
                False, f"{key} {short_repr(value)} is not served here (serves: {', '.join(serves)})"
            )
    key, value = requested[0]
    return JobDecision(True, f"{key} '{value}' is served here", value)


def _json_type(value: object) -> str:
    names = {
        dict: "object",
        list: "array",
        str: "string",
        bool: "boolean",
        int: "number",
        float: "number",
    }
    return "null" if value is None else names.get(type(value), type(value).__name__)


def caller_kind(participant: object) -> CallerKind:
    """``"sip"`` for a phone caller (LiveKit SIP participant), ``"web"`` for anyone else."""
    kind = getattr(participant, "kind", None)
    return "sip" if kind == rtc.ParticipantKind.PARTICIPANT_KIND_SIP else "web"


def presented_resume_token(participant: object) -> str | None:
    """The resume token a web caller's app presented: attribute ``frontdesk.resume_token``.

    Also read from the participant's metadata when it is a JSON object with that key. Only web
    callers present tokens; anything that is not a short string is ignored.
    """
    if caller_kind(participant) != "web":
        return None
    attributes = getattr(participant, "attributes", None)
    token: object = attributes.get(TOKEN_ATTRIBUTE) if isinstance(attributes, Mapping) else None
    metadata = getattr(participant, "metadata", "")
    if not token and isinstance(metadata, str) and 0 < len(metadata) <= MAX_METADATA_BYTES:
        with contextlib.suppress(ValueError, RecursionError):
            data = json.loads(metadata)
            if isinstance(data, dict):
                token = data.get(TOKEN_ATTRIBUTE)
    if isinstance(token, str) and 0 < len(token) <= MAX_TOKEN_LENGTH:
        return token.strip()
    return None


def caller_identity(participant: object) -> str:
    """Who is calling: a SIP caller's phone number, else the participant identity.

    The phone number is only trusted on SIP participants: it is an attribute, and a web
    participant allowed to set its own attributes could otherwise claim someone else's number
    (and resume their session).
    """
    kind = getattr(participant, "kind", None)
    attributes = getattr(participant, "attributes", None)
    if kind == rtc.ParticipantKind.PARTICIPANT_KIND_SIP and isinstance(attributes, Mapping):
        phone = attributes.get(SIP_PHONE_ATTRIBUTE)
        if isinstance(phone, str) and phone.strip():
            return phone.strip()
    identity = getattr(participant, "identity", "")
    return identity if isinstance(identity, str) else ""


def participant_kinds(
    names: Iterable[str], *, console: bool = False
) -> list[rtc.ParticipantKind.ValueType]:
    """LiveKit kinds for ``[worker] participant_kinds``; the console's caller is always accepted."""
    kinds = [PARTICIPANT_KINDS[name] for name in names]
    if console and rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD not in kinds:
        kinds.append(rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD)
    return kinds


async def request_job(request: JobRequest, *, workflow: Workflow) -> None:
    """``request_fnc``: answer every job request, by :func:`decide_job`."""
    try:
        decision = decide_job(request.job.metadata, workflow)
    except Exception as exc:  # decide_job does not raise; an unanswered request would hang
        decision = JobDecision(False, f"could not read the job request ({exc!r})")
    where = f"job {request.id} (room {request.room.name!r})"
    if decision.accept:
        logger.info("accepting %s: %s", where, decision.reason)
        await request.accept(attributes={"frontdesk.workflow": workflow.name})
    else:
        logger.info("rejecting %s: %s", where, decision.reason)
        # terminate=False: another worker that serves this workflow may take it
        await request.reject(terminate=False)
