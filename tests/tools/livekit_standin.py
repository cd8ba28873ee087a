"""A loopback stand-in for the LiveKit server API: the Twirp endpoints a transfer calls.

LiveKit's Python API client (``livekit-api``) POSTs protobuf bodies
(``Content-Type: application/protobuf``) to ``/twirp/livekit.<Service>/<Method>`` with a
``Bearer`` access token signed with the API secret. This server decodes each body with
LiveKit's own protobuf classes, verifies the token with LiveKit's own ``TokenVerifier``, records
both, and answers with a protobuf response (or a Twirp JSON error on demand). No SIP trunk, no
media: only the API requests are observed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from google.protobuf.message import Message
from livekit import api
from livekit.api.access_token import Claims

API_KEY = "standin-key"
API_SECRET = "standin-secret-that-is-long-enough-for-hs256"

_METHODS: dict[tuple[str, str], tuple[type[Message], type[Message]]] = {
    ("livekit.SIP", "TransferSIPParticipant"): (
        api.TransferSIPParticipantRequest,
        api.TransferSIPParticipantResponse,
    ),
    ("livekit.SIP", "CreateSIPParticipant"): (
        api.CreateSIPParticipantRequest,
        api.SIPParticipantInfo,
    ),
    ("livekit.RoomService", "MoveParticipant"): (
        api.MoveParticipantRequest,
        api.MoveParticipantResponse,
    ),
}


@dataclass
class Seen:
    service: str
    method: str
    request: Any
    """The decoded protobuf request."""
    content_type: str
    claims: Claims | None
    """The verified access token's claims (None: missing or not signed with the secret)."""


@dataclass
class LiveKitStandIn:
    fail: dict[str, tuple[int, str]] = field(default_factory=dict)
    """Method → (HTTP status, Twirp code) to answer with an error instead."""
    transfer_status: int = api.SIPTransferStatus.STS_TRANSFER_SUCCESSFUL
    hold: asyncio.Event | None = None
    """Set: every answer waits for it (a transfer still under way)."""
    seen: list[Seen] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None

    def calls(self, method: str) -> list[Seen]:
        return [seen for seen in self.seen if seen.method == method]

    async def _handle(self, request: web.Request) -> web.Response:
        service, method = request.match_info["service"], request.match_info["method"]
        classes = _METHODS.get((service, method))
        if classes is None:
            return web.json_response({"code": "bad_route", "msg": "no such method"}, status=404)
        request_class, response_class = classes
        body = await request.read()
        claims: Claims | None = None
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            try:
                claims = api.TokenVerifier(API_KEY, API_SECRET).verify(
                    header.removeprefix("Bearer ")
                )
            except Exception:
                claims = None
        self.seen.append(
            Seen(
                service,
                method,
                request_class.FromString(body),
                request.headers.get("Content-Type", ""),
                claims,
            )
        )
        if claims is None:
            return web.json_response({"code": "unauthenticated", "msg": "bad token"}, status=401)
        if self.hold is not None:
            await self.hold.wait()
        if method in self.fail:
            status, code = self.fail[method]
            return web.json_response(
                {"code": code, "msg": "stand-in failure", "meta": {"sip_status_code": "486"}},
                status=status,
            )
        response = response_class()
        if isinstance(response, api.TransferSIPParticipantResponse):
            response.status = self.transfer_status  # type: ignore[assignment]
            response.transfer_id = "TR_standin"
        if isinstance(response, api.SIPParticipantInfo):
            decoded = self.seen[-1].request
            response.participant_identity = decoded.participant_identity
            response.room_name = decoded.room_name
            response.participant_id = "PA_human"
        return web.Response(body=response.SerializeToString(), content_type="application/protobuf")

    async def __aenter__(self) -> LiveKitStandIn:
        app = web.Application()
        app.router.add_post("/twirp/{service}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
