"""Caller identities turned into keys that do not reveal who called.

A SIP caller's identity is usually a phone number. Frontdesk needs to find "this caller's last
session" but must not store the number: the caller index is keyed by an HMAC-SHA256 of the
identity under a secret, so someone reading Redis cannot recover or even test a number without
that secret (a plain hash of a phone number is brute-forced in seconds).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
from collections.abc import Mapping
from typing import Literal

logger = logging.getLogger(__name__)

SECRET_ENV = "FRONTDESK_STATE_SECRET"
"""Environment variable holding the caller-index secret."""

DEVELOPMENT_SECRET = b"frontdesk-development-secret-not-for-production"
"""Used when :data:`SECRET_ENV` is unset, so local runs work; it protects nothing."""

_MIN_SECRET_BYTES = 16


_warned_development = False
"""Whether this process already said it runs on the development secret (said once)."""


def caller_secret_from_env(*, warn: bool = True) -> bytes:
    """The caller-index secret from ``FRONTDESK_STATE_SECRET``, or the development secret.

    The development fallback keeps ``frontdesk demo`` working with no setup, and the warning is
    loud because with it anyone who knows this source can test phone numbers against the index.
    It is said once per process, and not at all with ``warn=False`` (a private embedded Redis
    that lives and dies with the command protects nothing a secret would).
    Changing the secret orphans the existing caller index (returning callers are not found).
    """
    global _warned_development
    value = os.environ.get(SECRET_ENV, "")
    if not value:
        if not warn or _warned_development:
            return DEVELOPMENT_SECRET
        _warned_development = True
        logger.warning(
            "%s is not set: using the built-in DEVELOPMENT secret for the caller index. "
            "Stored caller hashes are NOT protected; set %s to a long random value in production.",
            SECRET_ENV,
            SECRET_ENV,
        )
        return DEVELOPMENT_SECRET
    secret = value.encode("utf-8")
    if len(secret) < _MIN_SECRET_BYTES:
        logger.warning(
            "%s is only %d bytes long; use at least %d random bytes.",
            SECRET_ENV,
            len(secret),
            _MIN_SECRET_BYTES,
        )
    return secret


def caller_hash(identity: str, secret: bytes) -> str:
    """Hex HMAC-SHA256 of ``identity`` under ``secret``: the only form an identity is stored in.

    The identity is used exactly as given (no normalisation), so callers must pass the same
    form every time, e.g. the SIP participant identity.
    """
    if not identity:
        raise ValueError("a caller identity cannot be empty")
    if not secret:
        raise ValueError("the caller secret cannot be empty")
    return hmac.new(secret, identity.encode("utf-8"), hashlib.sha256).hexdigest()


# --------------------------------------------------------------------------- normalised identities

PREVIOUS_SECRETS_ENV = "FRONTDESK_STATE_SECRET_PREVIOUS"
"""Comma-separated earlier secrets: callers indexed under them are still found (rotation)."""

CallerKind = Literal["sip", "web"]
CALLER_KINDS: tuple[CallerKind, ...] = ("sip", "web")

_SIP_URI = re.compile(r"^(?:sips?|tel):([^@;]+)", re.IGNORECASE)
_PHONE_CHARS = re.compile(r"^\+?[0-9 ()./\-]{7,40}$")


def normalise_phone_number(text: str) -> str | None:
    """``text`` as an E.164 number (``+15551230000``), or ``None`` when it is not a number.

    Spaces, dots, dashes and parentheses are dropped; a SIP or tel URI's user part is used.
    Numbers without a ``+`` are taken as already international (``15551230000`` →
    ``+15551230000``): Frontdesk cannot know a caller's country, and LiveKit SIP gives E.164.
    """
    value = text.strip()
    uri = _SIP_URI.match(value)
    if uri:
        value = uri.group(1)
    if value.startswith("00"):
        value = "+" + value[2:]
    if not _PHONE_CHARS.match(value):
        return None
    digits = "".join(ch for ch in value if ch.isascii() and ch.isdigit())
    if not 7 <= len(digits) <= 15:
        return None
    return "+" + digits


def namespaced_identity(kind: CallerKind, identity: str) -> str:
    """The form of a caller identity that is hashed: ``sip:+15551230000`` or ``web:alice``.

    Phone callers are normalised to E.164, so ``+1 (555) 123-0000`` and ``+15551230000`` are the
    same caller; web identities are kept as given. The kind prefix keeps the namespaces apart: a
    web participant named ``+15551230000`` is never the SIP caller with that number.
    """
    value = identity.strip()
    if not value:
        raise ValueError("a caller identity cannot be empty")
    if kind == "sip":
        return "sip:" + (normalise_phone_number(value) or value)
    return "web:" + value


def split_namespaced(text: str) -> tuple[CallerKind | None, str]:
    """``("sip", "+1555…")`` for ``sip:+1555…``; ``(None, text)`` when there is no kind prefix."""
    for kind in CALLER_KINDS:
        if text.startswith(kind + ":") and not _SIP_URI.match(text[len(kind) + 1 :]):
            rest = text[len(kind) + 1 :]
            if kind == "sip" and "@" in rest:  # a SIP URI, not a namespaced identity
                return None, text
            return kind, rest
    return None, text


def identity_hint(identity: str | None, secret: bytes) -> str:
    """What logs show instead of a caller: ``caller#3f2a9c1b`` (an HMAC prefix), or ``anonymous``."""
    if not identity:
        return "anonymous"
    return "caller#" + caller_hash(identity, secret)[:8]


def previous_secrets_from_env() -> tuple[bytes, ...]:
    """The earlier caller-index secrets from ``FRONTDESK_STATE_SECRET_PREVIOUS`` (may be empty)."""
    raw = os.environ.get(PREVIOUS_SECRETS_ENV, "")
    return tuple(part.strip().encode() for part in raw.split(",") if part.strip())


def state_secret_is_configured(env: Mapping[str, str] | None = None) -> bool:
    """True when ``FRONTDESK_STATE_SECRET`` is set to something long enough for production."""
    value = (os.environ if env is None else env).get(SECRET_ENV, "").strip()
    return len(value.encode()) >= _MIN_SECRET_BYTES
