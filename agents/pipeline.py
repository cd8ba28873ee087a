"""The voice pipeline: the STT, LLM, TTS and VAD instances a call or one agent speaks with."""

from __future__ import annotations

from dataclasses import dataclass, field

from livekit.agents import llm, stt, tts, vad


@dataclass(frozen=True)
class Pipeline:
    """The plugin instances of one call, or one agent's overrides (``None``: not overridden).

    Each may be ``None``: the offline profile is text only (no STT, TTS or VAD).
    """

    stt: stt.STT | None = None
    llm: llm.LLM | None = None
    tts: tts.TTS | None = None
    vad: vad.VAD | None = None
    profile: str = field(default="", compare=False)
    """The provider profile these came from, for log lines."""

    @property
    def text_only(self) -> bool:
        return self.stt is None and self.tts is None

    async def aclose(self) -> None:
        """Close the plugins' HTTP clients; AgentSession does not close what it was given."""
        for component in (self.stt, self.llm, self.tts):
            if component is not None:
                await component.aclose()
