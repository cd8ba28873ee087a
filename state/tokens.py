"""Signed resume tokens: how a web caller proves a saved session is theirs.

A token is issued when a call starts and handed to the caller's app (the agent's participant
attribute ``frontdesk.resume_token``); presenting it again is the only way a web caller
resumes under ``trust = "token"``. It is ``<session id>.<expiry>.<signature>``, the signature
an HMAC-SHA256 over the session id and the expiry (Unix seconds) under a key derived from
``FRONTDESK_STATE_SECRET``, so it cannot be forged or extended without the secret, and it
carries nothing about the caller. A token is bound to its session, and the session layer also
checks that the session belongs to the presenting caller (a token copied to another identity
is "foreign"). Earlier secrets (rotation) still verify tokens they signed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass

TOKEN_ATTRIBUTE = "frontdesk.resume_token"
"""Participant attribute carrying the token: set on the agent by Frontdesk, on the caller by the app."""

MAX_TOKEN_LENGTH = 256
_TOKEN_RE = re.compile(r"^([0-9a-f]{32})\.([0-9]{1,12})\.([A-Za-z0-9_-]{43})$")
_LABEL = b"frontdesk resume token v1"


def _key(secret: bytes) -> bytes:
    return hmac.new(secret, _LABEL, hashlib.sha256).digest()


def _sign(secret: bytes, session_id: str, expires: int) -> str:
    mac = hmac.new(_key(secret), f"{session_id}.{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def issue_token(session_id: str, *, secret: bytes, expires_at: float) -> str:
    """A token for ``session_id`` valid until ``expires_at`` (Unix time)."""
    expires = int(expires_at)
    return f"{session_id}.{expires}.{_sign(secret, session_id, expires)}"


@dataclass(frozen=True)
class TokenCheck:
    """The outcome of :func:`check_token`: the session it names, or why it is refused."""

    session_id: str | None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.session_id is not None


def check_token(token: str, *, secrets: Sequence[bytes], now: float) -> TokenCheck:
    """Verify ``token`` (constant-time) against the current and earlier secrets."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        return TokenCheck(None, "malformed resume token")
    match = _TOKEN_RE.match(token.strip())
    if match is None:
        return TokenCheck(None, "malformed resume token")
    session_id, expires_text, signature = match.groups()
    expires = int(expires_text)
    valid = False
    for secret in secrets:
        # every secret is tried, so the time taken does not tell which one matched
        valid |= hmac.compare_digest(_sign(secret, session_id, expires), signature)
    if not valid:
        return TokenCheck(
            None, "resume token signature is invalid (forged, or signed with an unknown secret)"
        )
    if expires < now:
        return TokenCheck(None, "resume token has expired")
    return TokenCheck(session_id)
