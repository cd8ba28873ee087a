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
