"""Per-agent latency and usage of one call, from LiveKit's ``metrics_collected`` events.

LiveKit already totals usage for the whole session (``session.usage``); what it does not say is
*which agent* spent it. In a handoff workflow that is the interesting part: a slow first answer
after a transfer, or one agent burning most of the tokens, only shows up per agent. The worker
feeds every metrics event here with the id of the agent that was active
(``session.current_agent.id``); the result goes into the call summary line and the transcript.

:meth:`CallMetrics.add` is pure (no clock, no I/O), so tests construct LiveKit's own metrics
objects and check the figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from livekit.agents.metrics import EOUMetrics, LLMMetrics, STTMetrics, TTSMetrics


@dataclass
class Latency:
    """Count, mean and maximum of one latency, in seconds."""

    count: int = 0
    total: float = 0.0
    max: float = 0.0

    def add(self, seconds: float) -> None:
        """Record one sample; negative values are LiveKit's "not measured" (e.g. ``ttft=-1``)."""
        if seconds < 0:
            return
        self.count += 1
        self.total += seconds
        self.max = max(self.max, seconds)

    def merge(self, other: Latency) -> None:
        self.count += other.count
        self.total += other.total
        self.max = max(self.max, other.max)

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    def as_dict(self) -> dict[str, Any]:
        mean = self.mean
        return {
            "count": self.count,
            "avg": round(mean, 4) if mean is not None else None,
            "max": round(self.max, 4) if self.count else None,
        }


@dataclass
class AgentUsage:
    """What one agent of the call used, and how fast its providers answered."""

    llm_requests: int = 0
    llm_cancelled: int = 0
    llm_ttft: Latency = field(default_factory=Latency)
    llm_duration: Latency = field(default_factory=Latency)
    prompt_tokens: int = 0
    prompt_cached_tokens: int = 0
    completion_tokens: int = 0
    stt_requests: int = 0
    stt_audio_seconds: float = 0.0
    stt_duration: Latency = field(default_factory=Latency)
    """Request time of non-streaming STT; streaming STT reports 0 and is not counted here."""
    tts_requests: int = 0
    tts_cancelled: int = 0
    tts_ttfb: Latency = field(default_factory=Latency)
    tts_characters: int = 0
    tts_audio_seconds: float = 0.0
    end_of_utterance_delay: Latency = field(default_factory=Latency)
    transcription_delay: Latency = field(default_factory=Latency)

    def merge(self, other: AgentUsage) -> None:
        for name, value in vars(other).items():
            mine = getattr(self, name)
            if isinstance(mine, Latency):
                mine.merge(value)
            else:
                setattr(self, name, mine + value)

    @property
    def response_latency(self) -> float | None:
        """Caller stops → agent's first audio, estimated as mean EOU delay + TTFT + TTFB.

        Only the parts that were measured are added, so a text-only call gives the LLM's TTFT.
        """
        parts = [self.end_of_utterance_delay.mean, self.llm_ttft.mean, self.tts_ttfb.mean]
        measured = [part for part in parts if part is not None]
        return sum(measured) if measured else None

    def as_dict(self) -> dict[str, Any]:
        latency = self.response_latency
        return {
            "llm": {
                "requests": self.llm_requests,
                "cancelled": self.llm_cancelled,
                "ttft": self.llm_ttft.as_dict(),
                "duration": self.llm_duration.as_dict(),
                "prompt_tokens": self.prompt_tokens,
                "prompt_cached_tokens": self.prompt_cached_tokens,
                "completion_tokens": self.completion_tokens,
            },
            "stt": {
                "requests": self.stt_requests,
                "audio_seconds": round(self.stt_audio_seconds, 3),
                "duration": self.stt_duration.as_dict(),
            },
            "tts": {
                "requests": self.tts_requests,
                "cancelled": self.tts_cancelled,
                "ttfb": self.tts_ttfb.as_dict(),
                "characters": self.tts_characters,
                "audio_seconds": round(self.tts_audio_seconds, 3),
            },
            "turn": {
                "end_of_utterance_delay": self.end_of_utterance_delay.as_dict(),
                "transcription_delay": self.transcription_delay.as_dict(),
                "response_latency_estimate": round(latency, 4) if latency is not None else None,
            },
        }


class CallMetrics:
    """LLM/STT/TTS latency and usage of one call, keyed by agent id."""

    def __init__(self) -> None:
        self.agents: dict[str, AgentUsage] = {}

    def add(self, metrics: object, agent_id: str) -> bool:
        """Count one LiveKit metrics object for ``agent_id``; ``False`` if it is not tracked.

        VAD, realtime-model and other metrics are ignored: they say nothing per agent that the
        session-wide ``session.usage`` does not.
        """
        if not isinstance(metrics, LLMMetrics | STTMetrics | TTSMetrics | EOUMetrics):
            return False
        usage = self.agents.setdefault(agent_id, AgentUsage())
        if isinstance(metrics, LLMMetrics):
            usage.llm_requests += 1
            usage.llm_cancelled += int(metrics.cancelled)
            usage.llm_ttft.add(metrics.ttft)
            usage.llm_duration.add(metrics.duration)
            usage.prompt_tokens += metrics.prompt_tokens
            usage.prompt_cached_tokens += metrics.prompt_cached_tokens
            usage.completion_tokens += metrics.completion_tokens
        elif isinstance(metrics, STTMetrics):
            usage.stt_requests += 1
            usage.stt_audio_seconds += metrics.audio_duration
            if not metrics.streamed:
                usage.stt_duration.add(metrics.duration)
        elif isinstance(metrics, TTSMetrics):
            usage.tts_requests += 1
            usage.tts_cancelled += int(metrics.cancelled)
            usage.tts_ttfb.add(metrics.ttfb)
            usage.tts_characters += metrics.characters_count
            usage.tts_audio_seconds += metrics.audio_duration
        else:
            usage.end_of_utterance_delay.add(metrics.end_of_utterance_delay)
            usage.transcription_delay.add(metrics.transcription_delay)
        return True

    def totals(self) -> AgentUsage:
        """All agents together."""
        total = AgentUsage()
        for usage in self.agents.values():
            total.merge(usage)
        return total

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"agents": {id: {...}}, "totals": {...}}``."""
        return {
            "agents": {agent_id: usage.as_dict() for agent_id, usage in self.agents.items()},
            "totals": self.totals().as_dict(),
        }

    def summary(self) -> str:
        """A few figures for the one-line call summary, e.g. ``llm ttft 0.41s, tts ttfb 0.20s``."""
        total = self.totals()
        parts: list[str] = []
        if (ttft := total.llm_ttft.mean) is not None:
            parts.append(f"llm ttft {ttft:.2f}s")
        if (ttfb := total.tts_ttfb.mean) is not None:
            parts.append(f"tts ttfb {ttfb:.2f}s")
        if (latency := total.response_latency) is not None and len(parts) > 1:
            parts.append(f"response ~{latency:.2f}s")
        if total.prompt_tokens or total.completion_tokens:
            parts.append(f"tokens {total.prompt_tokens}+{total.completion_tokens}")
        if total.tts_characters:
            parts.append(f"tts {total.tts_characters} chars")
        return ", ".join(parts) if parts else "no provider metrics"
