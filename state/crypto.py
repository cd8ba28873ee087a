"""Sensitive caller data encrypted at rest: AES-256-GCM with keys from the environment.

A field marked ``sensitive = true`` must not be readable by someone who reads Redis, wherever a
copy of its value ends up: the caller data, the caller's utterance that contained it, tool-call
arguments and outputs, stored instructions (``agent_config_update`` items), call records. The
recorder therefore seals, before anything leaves the process, **every string** of a session's
items and meta that contains a sensitive value (or a match of a sensitive field's pattern): the
string is replaced by ``fdenc:v1:<key id>:<base64url(nonce | ciphertext+tag)>``, authenticated
with the session id (a sealed string moved to another session does not open). Loading a session
opens them again with whichever configured key has that id, so keys can be rotated: the first key
of ``FRONTDESK_DATA_KEY`` encrypts, every key listed decrypts.

``FRONTDESK_DATA_KEY`` holds one or more comma-separated keys, each 32 bytes in base64
(``openssl rand -base64 32``), optionally written ``<id>=<base64>``; without an id the key's id
is the first 8 hex digits of its SHA-256. Unset, a key is derived from the caller-index secret
with a warning (development only: ``worker start`` refuses to run that way when a workflow has
sensitive fields).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

logger = logging.getLogger(__name__)

DATA_KEY_ENV = "FRONTDESK_DATA_KEY"
"""Environment variable holding the data key(s)."""
SEALED_PREFIX = "fdenc:v1:"
_SEALED_RE = re.compile(r"^fdenc:v1:([A-Za-z0-9_-]{1,32}):([A-Za-z0-9_-]+)$")
_SEALED_IN_TEXT = re.compile(r"fdenc:v1:[A-Za-z0-9_-]+:[A-Za-z0-9_-]+")


def replace_sealed(text: str, replacement: str) -> str:
    """``text`` with every sealed string in it (one no key opened) replaced by ``replacement``."""
    return _SEALED_IN_TEXT.sub(replacement, text) if SEALED_PREFIX in text else text


_NAMED_KEY_RE = re.compile(r"^([A-Za-z0-9_-]{1,32})=([A-Za-z0-9+/=_-]{40,})$")


class DataKeyError(ValueError):
    """``FRONTDESK_DATA_KEY`` is malformed (the message says how)."""


def _decode_key(text: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip() + "=" * (-len(text.strip()) % 4), validate=False)
    except (binascii.Error, ValueError):
        raise DataKeyError(f"{DATA_KEY_ENV}: a key is not valid base64") from None
    if len(raw) != 32:
        raise DataKeyError(
            f"{DATA_KEY_ENV}: a key must be 32 bytes of base64 (`openssl rand -base64 32`), "
            f"got {len(raw)} bytes"
        )
    return raw


def _key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


@dataclass(frozen=True)
class DataKeys:
    """The data keys in force: the first encrypts, all decrypt (by key id)."""

    keys: tuple[tuple[str, bytes], ...]
    development: bool = False

    @classmethod
    def parse(cls, value: str) -> DataKeys:
        keys: list[tuple[str, bytes]] = []
        for part in (p.strip() for p in value.split(",")):
            if not part:
                continue
            named = _NAMED_KEY_RE.match(part)
            key = _decode_key(named.group(2) if named else part)
            keys.append((named.group(1) if named else _key_id(key), key))
        if not keys:
            raise DataKeyError(f"{DATA_KEY_ENV} holds no key")
        return cls(tuple(keys))

    @classmethod
    def from_env(cls, fallback_secret: bytes, env: Mapping[str, str] | None = None) -> DataKeys:
        """The keys of ``FRONTDESK_DATA_KEY``, or one derived from ``fallback_secret`` (warned)."""
        value = (os.environ if env is None else env).get(DATA_KEY_ENV, "").strip()
        if value:
            return cls.parse(value)
        derived = hmac.new(fallback_secret, b"frontdesk data key v1", hashlib.sha256).digest()
        return cls((("dev-" + _key_id(derived)[:6], derived),), development=True)

    def seal(self, text: str, *, context: str) -> str:
        kid, key = self.keys[0]
        nonce = os.urandom(12)
        sealed = AESGCM(key).encrypt(nonce, text.encode("utf-8"), context.encode("utf-8"))
        body = base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode()
        return f"{SEALED_PREFIX}{kid}:{body}"

    def open(self, text: str, *, context: str) -> str | None:
        """The plaintext of a sealed string; None when no configured key opens it."""
        match = _SEALED_RE.match(text)
        if match is None:
            return None
        kid, body = match.groups()
        key = dict(self.keys).get(kid)
        if key is None:
            return None
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            return AESGCM(key).decrypt(raw[:12], raw[12:], context.encode("utf-8")).decode()
        except (InvalidTag, ValueError, binascii.Error):
            return None


def is_sealed(text: object) -> bool:
    return isinstance(text, str) and text.startswith(SEALED_PREFIX)


def data_key_is_configured(env: Mapping[str, str] | None = None) -> bool:
    """True when ``FRONTDESK_DATA_KEY`` is set and parses."""
    value = (os.environ if env is None else env).get(DATA_KEY_ENV, "").strip()
    if not value:
        return False
    try:
        DataKeys.parse(value)
    except DataKeyError:
        return False
    return True


Finder = Callable[[str], Iterable[tuple[int, int]]]


class Sealer:
    """Seals every string of a JSON value that holds a sensitive value; opens them on load."""

    def __init__(
        self,
        keys: DataKeys,
        *,
        values: Callable[[], Iterable[str]],
        finders: Iterable[Finder] = (),
    ) -> None:
        self.keys = keys
        self._values = values
        self._finders = list(finders)

    def _sensitive(self, text: str, values: list[str]) -> bool:
        if text.startswith(SEALED_PREFIX):
            return False
        if any(value in text for value in values):
            return True
        return any(any(True for _ in finder(text)) for finder in self._finders)

    def seal(self, value: Any, *, context: str) -> Any:
        """``value`` (JSON: dicts, lists, strings…) with every sensitive string sealed."""
        values = [v for v in self._values() if v and len(v) >= 2]

        def change(text: str) -> str:
            if self._sensitive(text, values):
                return self.keys.seal(text, context=context)
            return text

        return _walk(value, change, skip=IDENTIFIER_KEYS)

    def open(self, value: Any, *, context: str) -> Any:
        """``value`` with every sealed string opened (left sealed when no key opens it)."""
        return open_sealed(value, self.keys, context=context)


IDENTIFIER_KEYS: frozenset[str] = frozenset(
    {
        "id", "type", "role", "call_id", "name", "session_id", "schema_version",
        "new_agent_id", "old_agent_id", "from_agent", "to_agent", "current_agent", "agents",
        "greeted", "workflow", "workflow_hash", "caller_hash", "owner",
    }
)  # fmt: skip
r"""Keys whose values are identifiers (item and call ids, agent and tool names, the session id):
never sealed, so a sensitive field with a short pattern (a CVV's ``\d{3}``) cannot turn the
digits of an id into a ciphertext and break the session's keys."""


def _walk(value: Any, change: Callable[[str], str], skip: frozenset[str] = frozenset()) -> Any:
    if isinstance(value, str):
        return change(value)
    if isinstance(value, list):
        return [_walk(v, change, skip) for v in value]
    if isinstance(value, dict):
        # caller data is keyed by field names, which may be anything ("name", "type"): no skip
        return {
            k: v if k in skip else _walk(v, change, frozenset() if k == "caller_data" else skip)
            for k, v in value.items()
        }
    return value


def open_sealed(value: Any, keys: DataKeys, *, context: str) -> Any:
    """Every sealed string of ``value`` opened with ``keys`` (unopenable ones stay sealed)."""

    def change(text: str) -> str:
        if not text.startswith(SEALED_PREFIX):
            return text
        opened = keys.open(text, context=context)
        return text if opened is None else opened

    return _walk(value, change)


def mask(value: str) -> str:
    """``****8213``: what screens and logs show of a sensitive value."""
    tail = value[-4:] if len(value) > 6 else ""
    return "****" + tail
