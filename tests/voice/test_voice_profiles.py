"""The ``budget`` and ``quality`` profiles' own plugins on audio: Deepgram's live STT and
Deepgram's or Cartesia's streaming TTS, each pointed by its ``base_url`` at the loopback server's
WebSocket stand-in (the LLM is the OpenAI plugin on loopback, as in those profiles).
"""

from __future__ import annotations

from typing import Any

import pytest

from frontdesk.workflows.definition import Workflow, parse_workflow
from frontdesk.workflows.voice_harness import start_voice_call
from frontdesk.workflows.voice_loopback import LoopbackProviders, profile_toml
from tests.voice.conftest import CONFIG_TEXT, SUPPORT_OVERRIDE, SUPPORT_VOICE
from tests.voice.test_voice_calls import SAY_LINE, TIMEOUT, Speech

PROFILE_VOICE = {
    "budget": "aura-2-andromeda-en",
    "quality": "f786b574-daa5-4673-aa0c-cbe3e8534c02",
}


def _workflow(loopback: LoopbackProviders, like: str) -> Workflow:
    table = profile_toml(loopback.base_url, name=f"{like}_loopback", like=like)
    return parse_workflow(CONFIG_TEXT + "\n" + table + SUPPORT_OVERRIDE, source=f"{like}.toml")


@pytest.mark.parametrize("like", ["budget", "quality"])
async def test_the_profile_plugins_carry_a_spoken_handoff(
    like: str, vad: Any, loopback: LoopbackProviders, speech: Speech
) -> None:
    workflow = _workflow(loopback, like)
    voice = await start_voice_call(
        workflow, profile=f"{like}_loopback", caller_identity="+15550009999", vad=vad
    )
    try:
        assert loopback.tts_requests[0].text == workflow.agent("receptionist").greeting
        assert loopback.tts_requests[0].voice == PROFILE_VOICE[like]

        loopback.expect("hi, my internet is down")
        played = await voice.caller.say(speech("hi, my internet is down"))
        await voice.speaker.wait_for_segment(3, TIMEOUT)  # greeting, say line, support
        await voice.wait_until_quiet(TIMEOUT)

        # Deepgram's stand-in heard one utterance, about as long as the caller spoke
        assert [r.transcript for r in loopback.stt_requests] == ["hi, my internet is down"]
        assert loopback.stt_requests[0].audio_seconds >= played.seconds * 0.8
        assert voice.session.current_agent.id == "support"
        after = [r for r in loopback.tts_requests if r.at >= played.ended_at]
        assert after[0].text == SAY_LINE and after[0].voice == PROFILE_VOICE[like]
        assert after[1:] and all(r.voice == SUPPORT_VOICE for r in after[1:])
        assert " ".join(r.text for r in after[1:]) == workflow.field("account_number").ask
        heard = [
            s for s in voice.speaker.segments if s.started_at and s.started_at >= played.ended_at
        ]
        assert len(heard) >= 2 and all(s.finished and not s.interrupted for s in heard)
    finally:
        await voice.aclose()
