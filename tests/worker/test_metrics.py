"""The per-agent metrics aggregator, fed with LiveKit's own metrics objects."""

from __future__ import annotations

import json

import pytest
from livekit.agents.metrics import EOUMetrics, LLMMetrics, STTMetrics, TTSMetrics, VADMetrics

from frontdesk.workflows.runtime import CallMetrics


def llm(
    ttft: float, *, prompt: int = 100, completion: int = 20, cancelled: bool = False
) -> LLMMetrics:
    return LLMMetrics(
        label="openai.LLM",
        request_id="req",
        timestamp=0.0,
        duration=ttft + 0.5,
        ttft=ttft,
        cancelled=cancelled,
        completion_tokens=completion,
        prompt_tokens=prompt,
        prompt_cached_tokens=10,
        total_tokens=prompt + completion,
        tokens_per_second=40.0,
    )


def tts(ttfb: float, characters: int) -> TTSMetrics:
    return TTSMetrics(
        label="cartesia.TTS",
        request_id="req",
        timestamp=0.0,
        ttfb=ttfb,
        duration=1.0,
        audio_duration=2.5,
        cancelled=False,
        characters_count=characters,
        streamed=True,
    )


def stt(audio: float, *, streamed: bool, duration: float = 0.0) -> STTMetrics:
    return STTMetrics(
        label="deepgram.STT",
        request_id="req",
        timestamp=0.0,
        duration=duration,
        audio_duration=audio,
        streamed=streamed,
    )


def eou(delay: float, transcription: float) -> EOUMetrics:
    return EOUMetrics(
        timestamp=0.0,
        end_of_utterance_delay=delay,
        transcription_delay=transcription,
        on_user_turn_completed_delay=0.0,
    )


def test_llm_latency_and_tokens_per_agent() -> None:
    metrics = CallMetrics()
    assert metrics.add(llm(0.4), "receptionist")
    assert metrics.add(llm(0.6, prompt=300, completion=40), "receptionist")
    assert metrics.add(llm(1.0), "support")
    receptionist = metrics.as_dict()["agents"]["receptionist"]["llm"]
    assert receptionist["requests"] == 2
    assert receptionist["ttft"] == {"count": 2, "avg": 0.5, "max": 0.6}
    assert receptionist["prompt_tokens"] == 400
    assert receptionist["completion_tokens"] == 60
    assert receptionist["prompt_cached_tokens"] == 20
    assert metrics.as_dict()["agents"]["support"]["llm"]["ttft"]["avg"] == 1.0


def test_an_llm_reply_without_tokens_does_not_skew_ttft() -> None:
    metrics = CallMetrics()
    metrics.add(llm(-1, cancelled=True), "sales")  # LiveKit's "no token was generated"
    metrics.add(llm(0.3), "sales")
    usage = metrics.agents["sales"]
    assert usage.llm_requests == 2
    assert usage.llm_cancelled == 1
    assert usage.llm_ttft.as_dict() == {"count": 1, "avg": 0.3, "max": 0.3}


def test_tts_stt_and_turn_figures() -> None:
    metrics = CallMetrics()
    metrics.add(tts(0.2, 40), "support")
    metrics.add(tts(0.4, 60), "support")
    metrics.add(stt(3.0, streamed=True), "support")
    metrics.add(stt(1.5, streamed=False, duration=0.8), "support")
    metrics.add(eou(0.5, 0.1), "support")
    metrics.add(llm(0.6), "support")
    figures = metrics.as_dict()["agents"]["support"]
    assert figures["tts"]["ttfb"] == {"count": 2, "avg": 0.3, "max": 0.4}
    assert figures["tts"]["characters"] == 100
    assert figures["tts"]["audio_seconds"] == 5.0
    assert figures["stt"]["requests"] == 2
    assert figures["stt"]["audio_seconds"] == 4.5
    # a streaming STT reports no request duration: only the batch one counts
    assert figures["stt"]["duration"] == {"count": 1, "avg": 0.8, "max": 0.8}
    assert figures["turn"]["end_of_utterance_delay"]["avg"] == 0.5
    assert figures["turn"]["response_latency_estimate"] == pytest.approx(0.5 + 0.6 + 0.3)


def test_untracked_metrics_are_ignored() -> None:
    metrics = CallMetrics()
    vad = VADMetrics(
        label="silero.VAD",
        timestamp=0.0,
        idle_time=0.0,
        inference_duration_total=0.1,
        inference_count=10,
    )
    assert not metrics.add(vad, "receptionist")
    assert not metrics.add(object(), "receptionist")
    assert metrics.agents == {}
    assert metrics.summary() == "no provider metrics"


def test_totals_merge_agents_and_everything_is_json() -> None:
    metrics = CallMetrics()
    metrics.add(llm(0.2), "receptionist")
    metrics.add(llm(0.8), "support")
    metrics.add(tts(0.25, 30), "support")
    report = metrics.as_dict()
    assert report["totals"]["llm"]["ttft"] == {"count": 2, "avg": 0.5, "max": 0.8}
    assert report["totals"]["tts"]["characters"] == 30
    assert json.loads(json.dumps(report)) == report
    assert metrics.summary() == (
        "llm ttft 0.50s, tts ttfb 0.25s, response ~0.75s, tokens 200+40, tts 30 chars"
    )
