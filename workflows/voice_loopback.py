r"""A loopback stand-in for OpenAI's speech and chat APIs, so the voice pipeline runs offline.

:class:`LoopbackProviders` is a small aiohttp server on 127.0.0.1 that speaks the three endpoints
the real ``livekit-plugins-openai`` STT, TTS and LLM call:

- ``POST /v1/audio/transcriptions`` answers the next line of a *script* (one transcript per
  utterance the STT sends, in order; an empty transcript once the script is used up);
- ``POST /v1/audio/speech`` answers raw 24 kHz PCM whose length follows the text
  (:attr:`LoopbackProviders.seconds_per_char`), so a longer line plays longer;
- ``POST /v1/chat/completions`` streams SSE chunks (text in pieces, or a tool call) decided by
  the offline brain from the request itself: the system prompt Frontdesk wrote, the messages and
  tool results LiveKit sent, the tools offered. So handoffs run through the OpenAI plugin's real
  tool-calling path.

And WebSocket stand-ins for the other plugins of the ``budget`` and ``quality`` profiles, each
pointed here by its ``base_url``: Deepgram's live STT (``/v1/listen``: audio in, a scripted
``Results`` at each end of speech, found by energy), Deepgram's streaming TTS (``/v1/speak``:
``Speak``/``Flush`` → PCM and ``Flushed``) and Cartesia's TTS (``/tts/websocket``: transcript
pieces per ``context_id`` → base64 ``chunk`` messages and ``done``).

Each endpoint waits a fixed latency before its first byte (``stt_latency``, ``llm_latency``,
``tts_latency``), which is what the voice benchmark sets, and every request is logged with a
``time.perf_counter()`` timestamp (:attr:`stt_requests`, :attr:`tts_requests`,
:attr:`llm_requests`) so tests can assert what was asked: the text sent to the TTS, the voice it
was asked for, the audio sent to the STT.

Run it by hand for ``frontdesk worker console`` (see README, "The voice path")::

    python -m frontdesk.workflows.voice_loopback --port 8765 --say "my internet is down"
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import io
import json
import logging
import math
import time
import uuid
import wave
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import numpy as np
from aiohttp import web
from livekit.agents import llm
from livekit.agents.llm import ChatContext

from frontdesk.agents.offline_brain import Decision, OfflineBrain
from frontdesk.workflows.definition import ComponentConfig, ProviderProfile, Workflow

logger = logging.getLogger(__name__)

TTS_SAMPLE_RATE = 24000
"""What the OpenAI TTS plugin decodes raw PCM at (its ``SAMPLE_RATE``)."""
LOOPBACK_KEY_ENV = "LOOPBACK_API_KEY"
"""The variable the loopback profile names for its (ignored) key."""


@dataclass(frozen=True)
class SttRequest:
    at: float
    """``time.perf_counter()`` when the request arrived."""
    audio_seconds: float
    model: str
    transcript: str


@dataclass(frozen=True)
class TtsRequest:
    at: float
    text: str
    voice: str
    model: str
    audio_seconds: float


@dataclass(frozen=True)
class LlmRequest:
    at: float
    body: dict[str, Any]
    answer: str
    """The text streamed back, or ``tool:<name>`` for a tool call."""

    @property
    def last_message(self) -> dict[str, Any]:
        messages: list[dict[str, Any]] = self.body.get("messages", [])
        return messages[-1] if messages else {}


@dataclass
class LoopbackProviders:
    """The loopback OpenAI-compatible server. ``async with`` starts and stops it."""

    workflow: Workflow
    stt_latency: float = 0.0
    llm_latency: float = 0.0
    tts_latency: float = 0.0
    seconds_per_char: float = 0.06
    """Length of the synthesised audio per character of text (~16 characters a second)."""
    speech_rms: float = 1000.0
    """Deepgram stand-in: RMS (of 32767) above which received audio counts as speech."""
    endpoint_silence: float = 0.3
    """Deepgram stand-in: quiet after speech that ends an utterance (its ``endpointing``)."""
    host: str = "127.0.0.1"
    port: int = 0
    decide: Callable[[ChatContext, set[str]], Decision] | None = None
    """The model's policy; default the offline brain of ``workflow``."""
    script: deque[str] = field(default_factory=deque)
    """Transcripts the STT answers, one per request, in order."""
    stt_requests: list[SttRequest] = field(default_factory=list)
    tts_requests: list[TtsRequest] = field(default_factory=list)
    llm_requests: list[LlmRequest] = field(default_factory=list)
    _runner: web.AppRunner | None = field(default=None, init=False, repr=False)
    _brain: OfflineBrain | None = field(default=None, init=False, repr=False)

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    async def start(self) -> LoopbackProviders:
        self._brain = OfflineBrain(workflow=self.workflow)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/v1/", self._models)
        app.router.add_post("/v1/audio/transcriptions", self._transcriptions)
        app.router.add_post("/v1/audio/speech", self._speech)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/listen", self._deepgram_listen)
        app.router.add_get("/v1/speak", self._deepgram_speak)
        app.router.add_get("/tts/websocket", self._cartesia_tts)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1]
        logger.debug("loopback providers on %s", self.base_url)
        return self

    async def aclose(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> LoopbackProviders:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def expect(self, *transcripts: str) -> None:
        """Queue what the STT answers for the next utterances."""
        self.script.extend(transcripts)

    def reset_logs(self) -> None:
        self.stt_requests.clear()
        self.tts_requests.clear()
        self.llm_requests.clear()

    def profile(self, *, voice: str = "alloy", vad: bool = True) -> ProviderProfile:
        """A provider profile whose STT, LLM and TTS are the OpenAI plugins pointed here."""
        return loopback_profile(self.base_url, voice=voice, vad=vad)

    # ------------------------------------------------------------------ endpoints

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": []})

    async def _transcriptions(self, request: web.Request) -> web.Response:
        arrived = time.perf_counter()
        fields: dict[str, str] = {}
        audio = b""
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, aiohttp.BodyPartReader):
                continue
            if part.name == "file":
                audio = await part.read()
            elif part.name:
                fields[part.name] = (await part.read()).decode("utf-8", "replace")
        transcript = self.script.popleft() if self.script else ""
        self.stt_requests.append(
            SttRequest(
                at=arrived,
                audio_seconds=_wav_seconds(audio),
                model=fields.get("model", ""),
                transcript=transcript,
            )
        )
        await _sleep(self.stt_latency)
        body: dict[str, Any] = {"text": transcript}
        if fields.get("response_format") == "verbose_json":
            body.update(language="english", duration=_wav_seconds(audio), segments=[])
        return web.json_response(body)

    async def _speech(self, request: web.Request) -> web.StreamResponse:
        arrived = time.perf_counter()
        body = await request.json()
        text = str(body.get("input", ""))
        voice = str(body.get("voice", ""))
        pcm = speech_pcm(text, voice=voice, seconds_per_char=self.seconds_per_char)
        self.tts_requests.append(
            TtsRequest(
                at=arrived,
                text=text,
                voice=voice,
                model=str(body.get("model", "")),
                audio_seconds=len(pcm) / 2 / TTS_SAMPLE_RATE,
            )
        )
        await _sleep(self.tts_latency)
        response = web.StreamResponse(headers={"Content-Type": "audio/pcm"})
        await response.prepare(request)
        chunk = TTS_SAMPLE_RATE // 10 * 2  # 100 ms of 16-bit mono
        for start in range(0, len(pcm), chunk):
            await response.write(pcm[start : start + chunk])
        await response.write_eof()
        return response

    # ------------------------------------------------------------------ WebSocket stand-ins

    async def _deepgram_listen(self, request: web.Request) -> web.WebSocketResponse:
        """Deepgram's live transcription: audio in, ``Results`` out at each end of speech.

        Endpointing is by energy (as Deepgram's own is by its model): an utterance is loud
        audio followed by :attr:`endpoint_silence` of quiet; its transcript is the next line of
        the script, sent ``is_final`` and ``speech_final`` after ``stt_latency``.
        """
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        rate = int(request.query.get("sample_rate", "16000"))
        loud, quiet, heard = 0.0, 0.0, 0.0
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                kind = json.loads(message.data).get("type")
                if kind == "CloseStream":
                    break
                continue
            if message.type != aiohttp.WSMsgType.BINARY:
                continue
            samples = np.frombuffer(message.data, dtype=np.int16)
            seconds = len(samples) / rate
            rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if len(samples) else 0
            if rms > self.speech_rms:
                if loud == 0.0:
                    await ws.send_str(json.dumps({"type": "SpeechStarted", "timestamp": 0.0}))
                loud += seconds
                heard += seconds
                quiet = 0.0
            elif loud > 0.0:
                quiet += seconds
                heard += seconds
                if quiet >= self.endpoint_silence:
                    arrived = time.perf_counter()
                    transcript = self.script.popleft() if self.script else ""
                    self.stt_requests.append(
                        SttRequest(
                            at=arrived,
                            audio_seconds=heard,
                            model=request.query.get("model", ""),
                            transcript=transcript,
                        )
                    )
                    await _sleep(self.stt_latency)
                    await ws.send_str(json.dumps(_deepgram_results(transcript, heard)))
                    loud, quiet, heard = 0.0, 0.0, 0.0
        await ws.close()
        return ws

    async def _deepgram_speak(self, request: web.Request) -> web.WebSocketResponse:
        """Deepgram's streaming TTS: ``Speak`` texts, then ``Flush`` → PCM and ``Flushed``."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        rate = int(request.query.get("sample_rate", str(TTS_SAMPLE_RATE)))
        voice = request.query.get("model", "")
        text = ""
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            packet = json.loads(message.data)
            kind = packet.get("type")
            if kind == "Speak":
                text += str(packet.get("text", ""))
            elif kind == "Flush":
                spoken = text.strip()
                text = ""
                pcm = self._synthesise(spoken, voice=voice, model=voice, rate=rate)
                await _sleep(self.tts_latency)
                await ws.send_bytes(pcm)
                await ws.send_str(json.dumps({"type": "Flushed", "sequence_id": 0}))
            elif kind == "Close":
                break
        await ws.close()
        return ws

    async def _cartesia_tts(self, request: web.Request) -> web.WebSocketResponse:
        """Cartesia's TTS WebSocket: transcript pieces per ``context_id`` → ``chunk``s, ``done``."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        texts: dict[str, str] = {}
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            packet = json.loads(message.data)
            context = str(packet.get("context_id", ""))
            texts[context] = texts.get(context, "") + str(packet.get("transcript", ""))
            if packet.get("continue", False):
                continue
            spoken = " ".join(texts.pop(context, "").split())
            voice = packet.get("voice", {})
            pcm = self._synthesise(
                spoken,
                voice=str(voice.get("id", "")) if isinstance(voice, dict) else "",
                model=str(packet.get("model_id", "")),
                rate=int(packet.get("output_format", {}).get("sample_rate", TTS_SAMPLE_RATE)),
            )
            await _sleep(self.tts_latency)
            chunk = TTS_SAMPLE_RATE // 10 * 2
            for start in range(0, len(pcm), chunk):
                data = base64.b64encode(pcm[start : start + chunk]).decode()
                await ws.send_str(
                    json.dumps({"type": "chunk", "context_id": context, "data": data})
                )
            await ws.send_str(json.dumps({"type": "done", "context_id": context, "done": True}))
        await ws.close()
        return ws

    def _synthesise(self, text: str, *, voice: str, model: str, rate: int) -> bytes:
        pcm = speech_pcm(text, voice=voice, seconds_per_char=self.seconds_per_char, rate=rate)
        self.tts_requests.append(
            TtsRequest(
                at=time.perf_counter(),
                text=text,
                voice=voice,
                model=model,
                audio_seconds=len(pcm) / 2 / rate,
            )
        )
        return pcm

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        arrived = time.perf_counter()
        body = await request.json()
        assert self._brain is not None
        chat_ctx, tool_names = chat_request_to_context(body)
        decide = self.decide or self._brain.decide
        decision = decide(chat_ctx, tool_names)
        answer = f"tool:{decision.tool}" if decision.tool else decision.text
        self.llm_requests.append(LlmRequest(at=arrived, body=body, answer=answer))
        await _sleep(self.llm_latency)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        completion = f"chatcmpl-{uuid.uuid4().hex[:12]}"
        model = str(body.get("model", "loopback"))

        async def send(delta: dict[str, Any], finish: str | None = None) -> None:
            chunk = {
                "id": completion,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())

        if decision.tool is not None:
            await send(
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": f"call_{uuid.uuid4().hex[:12]}",
                            "type": "function",
                            "function": {
                                "name": decision.tool,
                                "arguments": json.dumps(decision.arguments or {}),
                            },
                        }
                    ],
                }
            )
            await send({}, "tool_calls")
        else:
            for index, piece in enumerate(_pieces(decision.text)):
                await send(
                    {"role": "assistant", "content": piece} if index == 0 else {"content": piece}
                )
            await send({}, "stop")
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


def loopback_profile(base_url: str, *, voice: str = "alloy", vad: bool = True) -> ProviderProfile:
    """The ``loopback`` profile: OpenAI STT, LLM and TTS plugins at ``base_url``, Silero's VAD.

    The TTS asks for raw PCM (``response_format = "pcm"``) with ``tts-1``, which streams audio
    bytes; the key variable is :data:`LOOPBACK_KEY_ENV` (any value: the server ignores it).
    """
    return ProviderProfile(
        description="OpenAI plugins against the loopback server (offline voice pipeline)",
        stt=ComponentConfig(
            provider="openai", model="whisper-1", base_url=base_url, api_key_env=LOOPBACK_KEY_ENV
        ),
        llm=(
            ComponentConfig(
                provider="openai",
                model="gpt-4o-mini",
                base_url=base_url,
                api_key_env=LOOPBACK_KEY_ENV,
            ),
        ),
        tts=ComponentConfig(
            provider="openai",
            model="tts-1",
            voice=voice,
            base_url=base_url,
            api_key_env=LOOPBACK_KEY_ENV,
            options={"response_format": "pcm"},
        ),
        vad=ComponentConfig(provider="silero") if vad else None,
    )


def profile_toml(base_url: str, *, name: str = "loopback", like: str = "openai") -> str:
    """A loopback profile as a config.toml table (``base_url`` is ``http://host:port/v1``).

    ``like="openai"``: the ``loopback`` profile (OpenAI STT, LLM and TTS), for ``frontdesk worker
    console``; ``like="budget"`` / ``"quality"``: those profiles' exact plugins (Deepgram STT,
    Deepgram or Cartesia TTS), each pointed at this server's stand-in.
    """
    root = base_url.removesuffix("/v1")
    key = f'api_key_env = "{LOOPBACK_KEY_ENV}"'
    llm = f'llm = {{ provider = "openai", model = "gpt-4o-mini", base_url = "{base_url}", {key} }}'
    if like == "openai":
        stt = (
            f'stt = {{ provider = "openai", model = "whisper-1", base_url = "{base_url}", {key} }}'
        )
        tts = (
            f'tts = {{ provider = "openai", model = "tts-1", voice = "alloy", '
            f'base_url = "{base_url}", {key}, options = {{ response_format = "pcm" }} }}'
        )
        description = "OpenAI plugins against the loopback server (offline voice pipeline)"
    else:
        stt = (
            f'stt = {{ provider = "deepgram", model = "nova-3", language = "en", '
            f'base_url = "{root}/v1/listen", {key} }}'
        )
        if like == "budget":
            tts = (
                f'tts = {{ provider = "deepgram", model = "aura-2-andromeda-en", '
                f'base_url = "{root}/v1/speak", {key} }}'
            )
        else:
            tts = (
                f'tts = {{ provider = "cartesia", model = "sonic-2", '
                f'voice = "f786b574-daa5-4673-aa0c-cbe3e8534c02", language = "en", '
                f'base_url = "{root}", {key} }}'
            )
        description = f"The {like} profile's plugins against the loopback stand-ins"
    return "\n".join(
        [
            f"[providers.{name}]",
            f'description = "{description}"',
            stt,
            llm,
            tts,
            'vad = { provider = "silero" }',
            "",
        ]
    )


# --------------------------------------------------------------------------- pieces


async def _sleep(seconds: float) -> None:
    if seconds > 0:
        await asyncio.sleep(seconds)


def _pieces(text: str) -> Iterable[str]:
    """``text`` as a model streams it: a word (with its leading space) per chunk."""
    words = text.split(" ")
    for index, word in enumerate(words):
        yield word if index == 0 else f" {word}"


def _wav_seconds(data: bytes) -> float:
    try:
        with wave.open(io.BytesIO(data)) as wav:
            return wav.getnframes() / float(wav.getframerate())
    except (wave.Error, EOFError):
        return 0.0


def _deepgram_results(transcript: str, seconds: float) -> dict[str, Any]:
    words = transcript.split()
    step = seconds / max(len(words), 1)
    return {
        "type": "Results",
        "is_final": True,
        "speech_final": True,
        "start": 0.0,
        "duration": seconds,
        "metadata": {"request_id": uuid.uuid4().hex},
        "channel": {
            "alternatives": [
                {
                    "transcript": transcript,
                    "confidence": 0.99,
                    "words": [
                        {
                            "word": word,
                            "punctuated_word": word,
                            "start": i * step,
                            "end": (i + 1) * step,
                            "confidence": 0.99,
                        }
                        for i, word in enumerate(words)
                    ],
                }
            ]
        },
    }


def speech_pcm(
    text: str, *, voice: str, seconds_per_char: float, rate: int = TTS_SAMPLE_RATE
) -> bytes:
    """16-bit mono PCM at 24 kHz, ``seconds_per_char`` per character: a voiced, syllabic buzz.

    The pitch depends on the voice, so two voices sound (and compare) different.
    """
    seconds = max(len(text), 1) * seconds_per_char
    n = int(seconds * rate)
    t = np.arange(n, dtype=np.float64) / rate
    pitch = 110.0 + (sum(voice.encode()) % 120)
    syllables = 0.55 + 0.45 * np.sin(2 * math.pi * 4.0 * t) ** 2
    wave_ = np.sin(2 * math.pi * pitch * t) + 0.3 * np.sin(2 * math.pi * 2 * pitch * t)
    samples = (0.25 * 32767 * syllables * wave_ / 1.3).astype(np.int16)
    return samples.tobytes()


def chat_request_to_context(body: dict[str, Any]) -> tuple[ChatContext, set[str]]:
    """An OpenAI chat-completions request as the LiveKit chat context and tool names it encodes."""
    ctx = ChatContext.empty()
    names: dict[str, str] = {}
    for message in body.get("messages", []):
        role = message.get("role")
        content = _content_text(message.get("content"))
        if role in ("system", "developer"):
            ctx.add_message(role="system", content=content)
        elif role == "user":
            ctx.add_message(role="user", content=content)
        elif role == "assistant":
            if content:
                ctx.add_message(role="assistant", content=content)
            for call in message.get("tool_calls") or []:
                function = call.get("function", {})
                names[call.get("id", "")] = function.get("name", "")
                ctx.insert(
                    llm.FunctionCall(
                        call_id=call.get("id", ""),
                        name=function.get("name", ""),
                        arguments=function.get("arguments", "{}"),
                    )
                )
        elif role == "tool":
            call_id = message.get("tool_call_id", "")
            ctx.insert(
                llm.FunctionCallOutput(
                    call_id=call_id,
                    name=names.get(call_id, ""),
                    output=content,
                    is_error=False,
                )
            )
    tool_choice = body.get("tool_choice")
    tools = {
        tool.get("function", {}).get("name", "")
        for tool in body.get("tools") or []
        if tool.get("type") == "function"
    }
    if tool_choice == "none":
        tools = set()
    elif isinstance(tool_choice, dict) and tool_choice.get("type") == "function":
        forced = tool_choice.get("function", {}).get("name")
        tools = {forced} & tools if forced else tools
    return ctx, tools


def _content_text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


# --------------------------------------------------------------------------- command


def main(argv: list[str] | None = None) -> int:
    """Serve the loopback providers until interrupted (for ``frontdesk worker console``)."""
    from frontdesk.workflows.definition import load_workflow

    parser = argparse.ArgumentParser(
        prog="python -m frontdesk.workflows.voice_loopback",
        description="Loopback OpenAI-compatible STT/TTS/LLM for running the voice pipeline offline.",
    )
    parser.add_argument("--config", default=None, help="workflow config (default: ./config.toml)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--say",
        action="append",
        default=[],
        help="what the STT hears for each of your utterances, in order (repeatable)",
    )
    args = parser.parse_args(argv)
    workflow = load_workflow(args.config)

    async def serve() -> None:
        async with LoopbackProviders(workflow=workflow, port=args.port) as server:
            server.expect(*args.say)
            print(f"loopback providers on {server.base_url}; add this profile to your config:\n")
            print(profile_toml(server.base_url))
            print(f"then: FRONTDESK_PROFILE=loopback {LOOPBACK_KEY_ENV}=x frontdesk worker console")
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
