"""Which plugin fills which component: one row per (component, provider) pair.

Adding a provider is one row here: the plugin constructor and the config keys it accepts, each
mapped to the constructor's keyword. A key a row does not list is a config error, since a key
that would be silently ignored is a mistake waiting to be found on a live call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from livekit.plugins import cartesia, deepgram, openai, silero

from frontdesk.agents.offline_brain import make_offline_llm

Slot = Literal["stt", "llm", "tts", "vad"]

SETTING_KEYS = ("model", "voice", "language", "base_url", "api_key_env")
"""The settings a component table may hold besides ``provider`` and ``options``."""


@dataclass(frozen=True)
class Plugin:
    """One (component, provider) pair: how to construct it and which settings it takes."""

    label: str
    """How messages name it, e.g. ``deepgram tts``."""
    constructor: Callable[[], Callable[..., object]]
    """Returns the constructor; looked up at build time, so the plugin module is the one used."""
    settings: tuple[tuple[str, str], ...] = ()
    """(config key, constructor keyword) in order; a later set key overrides an earlier one."""
    keyed: bool = True
    """Takes an API key (read from ``api_key_env`` or the plugin's own variable)."""
    options: bool = True
    """Accepts ``options`` (passed to the constructor as they are)."""
    needs_workflow: bool = False
    """The constructor takes ``workflow=`` (the offline brain)."""

    @property
    def accepts(self) -> frozenset[str]:
        keys = {key for key, _ in self.settings}
        return frozenset(keys | {"api_key_env"} if self.keyed else keys)


_MODEL = ("model", "model")
_LANGUAGE = ("language", "language")
_BASE_URL = ("base_url", "base_url")
_VOICE = ("voice", "voice")

PLUGINS: dict[tuple[Slot, str], Plugin] = {
    ("stt", "deepgram"): Plugin(
        "deepgram stt", lambda: deepgram.STT, (_MODEL, _LANGUAGE, _BASE_URL)
    ),
    ("stt", "openai"): Plugin("openai stt", lambda: openai.STT, (_MODEL, _LANGUAGE, _BASE_URL)),
    ("llm", "openai"): Plugin("openai llm", lambda: openai.LLM, (_MODEL, _BASE_URL)),
    ("llm", "offline"): Plugin(
        "offline brain", lambda: make_offline_llm, keyed=False, options=False, needs_workflow=True
    ),
    # an Aura model *is* a voice: voice, when set, wins over model
    ("tts", "deepgram"): Plugin(
        "deepgram tts", lambda: deepgram.TTS, (_MODEL, ("voice", "model"), _BASE_URL)
    ),
    ("tts", "openai"): Plugin("openai tts", lambda: openai.TTS, (_MODEL, _VOICE, _BASE_URL)),
    ("tts", "cartesia"): Plugin(
        "cartesia tts", lambda: cartesia.TTS, (_MODEL, _VOICE, _LANGUAGE, _BASE_URL)
    ),
    ("vad", "silero"): Plugin("silero vad", lambda: silero.VAD.load, keyed=False),
}
"""Every supported (component, provider) pair."""
