"""An audio harness: a Frontdesk call driven by caller audio, its answer recorded as audio.

LiveKit's ``AgentSession`` takes any :class:`livekit.agents.voice.io.AudioInput` as the caller's
microphone and any :class:`~livekit.agents.voice.io.AudioOutput` as the agent's speaker. This
module provides one of each, so the whole voice path runs for real without a room:

caller clips → :class:`CallerAudio` (24 kHz frames, paced in real time) → Silero VAD → the STT
(through LiveKit's ``StreamAdapter``) → LiveKit's turn handling → the agents and their LLM →
the TTS → LiveKit's ``TranscriptSynchronizer`` (as ``RoomIO`` uses it) → :class:`AgentAudio`
(plays in real time, honours ``pause``/``resume``/``clear_buffer``, reports
``playback_started``/``playback_finished``) and :class:`AgentTranscript`.

Everything is timestamped with ``time.perf_counter()``, so a test or benchmark can ask when the
caller stopped talking and when the agent's first audio frame came out.

Clips: :func:`silence`, :func:`tone`, :func:`noise` (none of which Silero's VAD should take for
speech) and :func:`spoken` (the words as a WAV made by Debian's ``espeak-ng``, which it does).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import shutil
import subprocess
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from livekit import rtc
from livekit.agents.utils import http_context
from livekit.agents.voice import io
from livekit.agents.voice.transcription.synchronizer import TranscriptSynchronizer

logger = logging.getLogger(__name__)

SAMPLE_RATE = 24000
"""RoomIO's default input rate (``RoomInputOptions.audio_sample_rate``)."""
FRAME_MS = 50
"""RoomIO's default input frame size (``audio_frame_size_ms``)."""


class EspeakMissingError(RuntimeError):
    """``espeak-ng`` is not installed (Debian: ``apt-get install espeak-ng``)."""


# --------------------------------------------------------------------------- clips


@dataclass(frozen=True)
class Clip:
    """Mono 16-bit PCM at :data:`SAMPLE_RATE`, with what it is for the logs."""

    samples: np.ndarray
    label: str

    @property
    def seconds(self) -> float:
        return len(self.samples) / SAMPLE_RATE

    def __add__(self, other: Clip) -> Clip:
        return Clip(np.concatenate([self.samples, other.samples]), f"{self.label}+{other.label}")

    def head(self, seconds: float) -> Clip:
        """The first ``seconds`` of the clip (a caller cut off mid-sentence)."""
        return Clip(self.samples[: int(seconds * SAMPLE_RATE)], f"{self.label}[:{seconds:g}s]")


def silence(seconds: float) -> Clip:
    return Clip(np.zeros(int(seconds * SAMPLE_RATE), dtype=np.int16), f"silence {seconds:g}s")


def tone(seconds: float, *, hz: float = 440.0, level: float = 0.3) -> Clip:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    samples = (level * 32767 * np.sin(2 * math.pi * hz * t)).astype(np.int16)
    return Clip(samples, f"tone {hz:g}Hz {seconds:g}s")


def noise(seconds: float, *, level: float = 0.05, hum_hz: float = 50.0, seed: int = 7) -> Clip:
    """Background noise: white noise plus mains hum, ``level`` of full scale."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    mix = rng.normal(0.0, 1.0, n) * 0.7 + np.sin(2 * math.pi * hum_hz * t) * 0.3
    samples = np.clip(level * 32767 * mix, -32768, 32767).astype(np.int16)
    return Clip(samples, f"noise {level:g} {seconds:g}s")


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def spoken(text: str, *, voice: str = "en-us", words_per_minute: int = 170) -> Clip:
    """``text`` spoken by ``espeak-ng``, resampled to :data:`SAMPLE_RATE` with LiveKit's resampler."""
    binary = shutil.which("espeak-ng")
    if binary is None:
        raise EspeakMissingError("espeak-ng is not installed (apt-get install espeak-ng)")
    wav_bytes = subprocess.run(
        [binary, "-v", voice, "-s", str(words_per_minute), "--stdout", text],
        check=True,
        capture_output=True,
    ).stdout
    return Clip(trim_silence(read_wav(wav_bytes)), f"speech {text!r}")


def trim_silence(samples: np.ndarray, *, threshold: int = 300) -> np.ndarray:
    """``samples`` without leading and trailing near-silence: the clip ends when the words do."""
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > threshold)
    if len(loud) == 0:
        return samples[:0]
    return samples[loud[0] : loud[-1] + 1]


def read_wav(data: bytes) -> np.ndarray:
    """A mono 16-bit WAV's samples at :data:`SAMPLE_RATE`."""
    import io as _io

    with wave.open(_io.BytesIO(data)) as wav:
        rate, channels = wav.getframerate(), wav.getnchannels()
        frames = wav.readframes(wav.getnframes())
    # espeak-ng's header can claim 0x7fffffff frames when writing to a pipe: trust the bytes
    samples = np.frombuffer(frames, dtype=np.int16)
    if channels > 1:
        samples = samples.reshape(-1, channels)[:, 0].copy()
    if rate == SAMPLE_RATE:
        return samples.copy()
    resampler = rtc.AudioResampler(rate, SAMPLE_RATE, num_channels=1)
    out = [
        np.frombuffer(f.data, dtype=np.int16) for f in resampler.push(bytearray(samples.tobytes()))
    ]
    out += [np.frombuffer(f.data, dtype=np.int16) for f in resampler.flush()]
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int16)


# --------------------------------------------------------------------------- caller side


@dataclass
class PlayedClip:
    """A clip the caller played: when its first and last frame went to the session."""

    label: str
    seconds: float
    started_at: float = 0.0
    ended_at: float = 0.0
    done: asyncio.Future[PlayedClip] | None = field(default=None, repr=False)


class CallerAudio(io.AudioInput):
    """The caller's microphone: clips queued with :meth:`play`, silence in between, real time.

    Frames of :data:`FRAME_MS` at :data:`SAMPLE_RATE` are handed out on a fixed clock (frame *n*
    at ``start + n × frame``), so a loaded machine catches up rather than drifts. :meth:`hang_up`
    ends the stream, as a caller's track does when they drop.
    """

    def __init__(
        self,
        *,
        sample_rate: int = SAMPLE_RATE,
        frame_ms: int = FRAME_MS,
        label: str = "CallerAudio",
    ) -> None:
        super().__init__(label=label)
        self.sample_rate = sample_rate
        self.frame_samples = sample_rate * frame_ms // 1000
        self.frame_seconds = self.frame_samples / sample_rate
        self._queue: list[tuple[Clip, PlayedClip]] = []
        self._current: tuple[Clip, PlayedClip, int] | None = None
        self._started: float | None = None
        self._frames = 0
        self._hung_up = False
        self.played: list[PlayedClip] = []
        self.frames_sent = 0

    def play(self, clip: Clip) -> PlayedClip:
        """Queue ``clip``; ``await played.done`` waits until its last frame has been sent."""
        played = PlayedClip(
            label=clip.label,
            seconds=clip.seconds,
            done=asyncio.get_running_loop().create_future(),
        )
        self._queue.append((clip, played))
        return played

    async def say(self, clip: Clip) -> PlayedClip:
        """Play ``clip`` and wait until it has been sent."""
        played = self.play(clip)
        assert played.done is not None
        return await played.done

    def hang_up(self) -> None:
        """Stop the microphone now, even in the middle of a clip."""
        self._hung_up = True

    @property
    def speaking(self) -> bool:
        return self._current is not None or bool(self._queue)

    async def __anext__(self) -> rtc.AudioFrame:
        if self._hung_up:
            raise StopAsyncIteration
        now = time.perf_counter()
        if self._started is None:
            self._started = now
        due = self._started + self._frames * self.frame_seconds
        if due > now:
            await asyncio.sleep(due - now)
        if self._hung_up:
            raise StopAsyncIteration
        self._frames += 1
        self.frames_sent += 1
        return self._next_frame()

    def _next_frame(self) -> rtc.AudioFrame:
        n = self.frame_samples
        if self._current is None and self._queue:
            clip, played = self._queue.pop(0)
            played.started_at = time.perf_counter()
            self._current = (clip, played, 0)
        if self._current is None:
            data = np.zeros(n, dtype=np.int16)
        else:
            clip, played, offset = self._current
            data = clip.samples[offset : offset + n]
            if len(data) < n:
                data = np.concatenate([data, np.zeros(n - len(data), dtype=np.int16)])
            offset += n
            if offset >= len(clip.samples):
                played.ended_at = time.perf_counter()
                self.played.append(played)
                if played.done is not None and not played.done.done():
                    played.done.set_result(played)
                self._current = None
            else:
                self._current = (clip, played, offset)
        return rtc.AudioFrame(
            data=data.tobytes(),
            sample_rate=self.sample_rate,
            num_channels=1,
            samples_per_channel=n,
        )


# --------------------------------------------------------------------------- agent side


@dataclass
class Segment:
    """One stretch of agent speech (from the first captured frame to ``flush``/``clear_buffer``)."""

    index: int
    captured_at: float
    """When LiveKit handed over the first frame (``perf_counter``)."""
    started_at: float | None = None
    """When its first frame started playing."""
    ended_at: float | None = None
    """When it stopped: played out, or cut by ``clear_buffer``."""
    captured: float = 0.0
    """Seconds of audio LiveKit handed over."""
    played: float = 0.0
    """Seconds of it that played."""
    interrupted: bool = False
    flushed: bool = False
    cleared: bool = False
    finished: bool = False
    frames: list[rtc.AudioFrame] = field(default_factory=list, repr=False)
    sample_rate: int = 0
    _next_frame: int = field(default=0, repr=False)

    @property
    def samples(self) -> np.ndarray:
        """What was captured, as one array."""
        if not self.frames:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate([np.frombuffer(f.data, dtype=np.int16) for f in self.frames])


class AgentAudio(io.AudioOutput):
    """The agent's speaker: plays what LiveKit sends in real time and records it.

    A segment plays frame after frame on the wall clock; ``pause`` holds the playhead,
    ``clear_buffer`` stops it at once and reports the segment finished, interrupted, at the
    position reached (what the caller actually heard). Segments are kept in :attr:`segments`.
    """

    def __init__(self, *, label: str = "AgentAudio", sample_rate: int | None = None) -> None:
        super().__init__(
            label=label,
            capabilities=io.AudioOutputCapabilities(pause=True),
            sample_rate=sample_rate,
        )
        self.segments: list[Segment] = []
        self._current: Segment | None = None
        self._wake = asyncio.Event()
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._player: asyncio.Task[None] | None = None
        self.listeners: list[Callable[[Segment], None]] = []
        """Called with a segment when its first frame starts playing."""

    # ---- LiveKit's side

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if self._current is None:
            self._current = Segment(
                index=len(self.segments),
                captured_at=time.perf_counter(),
                sample_rate=frame.sample_rate,
            )
            self.segments.append(self._current)
        segment = self._current
        if segment.cleared:
            return
        segment.frames.append(frame)
        segment.captured += frame.duration
        self._ensure_player()
        self._wake.set()

    def flush(self) -> None:
        super().flush()
        segment, self._current = self._current, None
        if segment is None:
            return
        segment.flushed = True
        if segment.cleared:
            self._finish(segment, interrupted=True)
        self._wake.set()

    def clear_buffer(self) -> None:
        for segment in self.segments:
            if segment.finished or segment.cleared:
                continue
            segment.cleared = True
            segment.ended_at = time.perf_counter()
            if segment.flushed:
                self._finish(segment, interrupted=True)
        self._wake.set()

    def pause(self) -> None:
        super().pause()
        self._resumed.clear()

    def resume(self) -> None:
        super().resume()
        self._resumed.set()

    # ---- playback

    def _ensure_player(self) -> None:
        if self._player is None or self._player.done():
            self._player = asyncio.create_task(self._play(), name="AgentAudio.play")

    async def _play(self) -> None:
        while True:
            segment = next((s for s in self.segments if not s.finished and not s.cleared), None)
            if segment is None:
                self._wake.clear()
                if not any(not s.finished and not s.cleared for s in self.segments):
                    await self._wake.wait()
                continue
            if segment._next_frame >= len(segment.frames):
                if segment.flushed:
                    self._finish(segment, interrupted=False)
                    continue
                self._wake.clear()
                await self._wake.wait()
                continue
            await self._resumed.wait()
            if segment.cleared:
                continue
            frame = segment.frames[segment._next_frame]
            if segment.started_at is None:
                segment.started_at = time.perf_counter()
                self.on_playback_started(created_at=time.time())
                for listener in self.listeners:
                    listener(segment)
            began = time.perf_counter()
            await self._sleep_unless_cleared(segment, frame.duration)
            if segment.cleared:
                segment.played += min(frame.duration, time.perf_counter() - began)
                continue
            segment.played += frame.duration
            segment._next_frame += 1

    async def _sleep_unless_cleared(self, segment: Segment, seconds: float) -> None:
        deadline = time.perf_counter() + seconds
        while not segment.cleared:
            left = deadline - time.perf_counter()
            if left <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), left)
            except TimeoutError:
                return

    def _finish(self, segment: Segment, *, interrupted: bool) -> None:
        if segment.finished:
            return
        segment.finished = True
        segment.interrupted = interrupted
        if segment.ended_at is None:
            segment.ended_at = time.perf_counter()
        self.on_playback_finished(playback_position=segment.played, interrupted=interrupted)

    async def aclose(self) -> None:
        if self._player is not None:
            self._player.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._player

    # ---- what the caller heard

    def first_audio_after(self, moment: float) -> Segment | None:
        """The first segment that started playing after ``moment`` (``perf_counter``)."""
        return next(
            (s for s in self.segments if s.started_at is not None and s.started_at >= moment),
            None,
        )

    async def wait_for_segment(self, count: int, timeout: float) -> Segment:
        """Wait until at least ``count`` segments have started playing; return the last of them."""
        deadline = time.perf_counter() + timeout
        while True:
            started = [s for s in self.segments if s.started_at is not None]
            if len(started) >= count:
                return started[count - 1]
            if time.perf_counter() > deadline:
                raise TimeoutError(f"agent audio: {len(started)} of {count} segments in {timeout}s")
            await asyncio.sleep(0.01)

    @property
    def heard_seconds(self) -> float:
        return sum(s.played for s in self.segments)


@dataclass
class Line:
    """A transcript line the caller's screen would show, with when it was complete."""

    text: str
    at: float


class AgentTranscript(io.TextOutput):
    """The transcript side of LiveKit's synchronizer: the text in step with the audio."""

    def __init__(self) -> None:
        super().__init__(label="AgentTranscript", next_in_chain=None)
        self._buffer = ""
        self.lines: list[Line] = []

    async def capture_text(self, text: str) -> None:
        self._buffer += text

    def flush(self) -> None:
        if self._buffer:
            self.lines.append(Line(self._buffer, time.perf_counter()))
        self._buffer = ""


@dataclass
class AudioIO:
    """The harness's caller microphone and agent speaker, wired the way ``RoomIO`` wires a room."""

    caller: CallerAudio
    speaker: AgentAudio
    transcript: AgentTranscript
    synchronizer: TranscriptSynchronizer

    @classmethod
    def create(cls, *, frame_ms: int = FRAME_MS) -> AudioIO:
        speaker = AgentAudio()
        transcript = AgentTranscript()
        synchronizer = TranscriptSynchronizer(
            next_in_chain_audio=speaker, next_in_chain_text=transcript
        )
        return cls(CallerAudio(frame_ms=frame_ms), speaker, transcript, synchronizer)

    def attach(self, session: Any) -> None:
        """Set the session's audio input and outputs (before ``session.start``)."""
        session.input.audio = self.caller
        session.output.audio = self.synchronizer.audio_output
        session.output.transcription = self.synchronizer.text_output

    async def aclose(self) -> None:
        self.caller.hang_up()
        await self.synchronizer.aclose()
        await self.speaker.aclose()


VOICE_TURN_HANDLING: dict[str, Any] = {
    "turn_detection": "vad",
    "endpointing": {"min_delay": 0.3, "max_delay": 3.0},
    "interruption": {"mode": "vad", "min_duration": 0.3, "false_interruption_timeout": None},
    "preemptive_generation": {"enabled": False},
}
"""LiveKit's own VAD-based turn handling, as the harness runs it (no turn-detector model)."""

VOICE_SESSION_OPTIONS: dict[str, Any] = {
    "turn_handling": VOICE_TURN_HANDLING,
    "aec_warmup_duration": None,
    "user_away_timeout": None,
}
"""Extra ``AgentSession`` arguments of a harness call (no echo warm-up: there is no echo)."""


# --------------------------------------------------------------------------- a whole call


async def wait_until_quiet(
    session: Any, media: AudioIO, timeout: float, *, settle: float = 0.5
) -> None:
    """Wait until ``session``'s agent has listened, with nobody speaking and nothing playing on
    ``media``, for ``settle`` seconds (a Frontdesk call or a bare LiveKit session alike)."""
    deadline = time.perf_counter() + timeout
    quiet_since: float | None = None
    while True:
        now = time.perf_counter()
        busy = (
            session.agent_state != "listening"
            or session.user_state == "speaking"
            or media.caller.speaking
            or any(not s.finished for s in media.speaker.segments)
        )
        if busy:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = now
        elif now - quiet_since >= settle:
            return
        if now > deadline:
            raise TimeoutError(f"the agent did not go quiet within {timeout}s")
        await asyncio.sleep(0.02)


@dataclass
class VoiceCall:
    """A Frontdesk call on the harness's audio: ``call`` is the ordinary :class:`Call`."""

    call: Any
    """:class:`frontdesk.workflows.runtime.Call`."""
    media: AudioIO
    components: Any
    per_agent: Any
    http: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)
    """LiveKit's shared HTTP session (the worker's job context opens it; here the call does)."""
    closed: bool = False

    @property
    def caller(self) -> CallerAudio:
        return self.media.caller

    @property
    def speaker(self) -> AgentAudio:
        return self.media.speaker

    @property
    def session(self) -> Any:
        return self.call.session

    async def wait_for_state(self, state: str, timeout: float) -> None:
        """Wait until the agent is in ``state`` (``listening``, ``thinking``, ``speaking``)."""
        deadline = time.perf_counter() + timeout
        while self.session.agent_state != state:
            if time.perf_counter() > deadline:
                raise TimeoutError(
                    f"agent still {self.session.agent_state!r}, not {state!r}, after {timeout}s"
                )
            await asyncio.sleep(0.01)

    async def wait_until_quiet(self, timeout: float, *, settle: float = 0.5) -> None:
        """Wait until the agent has been listening, with nothing playing, for ``settle`` seconds."""
        await wait_until_quiet(self.session, self.media, timeout, settle=settle)

    async def hang_up(self, reason: str = "caller left") -> Any:
        """The caller drops (their microphone stops) and the call ends; returns its report."""
        self.caller.hang_up()
        return await self.aclose(reason)

    async def aclose(self, reason: str = "caller left") -> Any:
        if self.closed:
            return self.call.report
        self.closed = True
        try:
            report = await self.call.aclose(reason)
        finally:
            await self.media.aclose()
            await self.per_agent.aclose()
            await self.components.aclose()
            await self.http.aclose()
        return report


async def start_voice_call(
    workflow: Any,
    *,
    profile: str,
    caller_identity: str | None = None,
    persistence: Any = None,
    vad: Any = None,
    frame_ms: int = FRAME_MS,
    session_options: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> VoiceCall:
    """Start (or resume) a call of ``workflow`` on audio, with provider profile ``profile``.

    The components are built exactly as the worker builds them (the profile's plugins, each
    agent's overrides); ``vad`` is a Silero VAD already loaded (as the worker's prewarm does).
    Returns once the opening line has played.
    """
    from frontdesk.workflows.providers import build_components
    from frontdesk.workflows.runtime import start_call
    from frontdesk.workflows.worker import AgentPipelines

    # plugins that speak WebSockets (Deepgram, Cartesia) use LiveKit's shared HTTP session
    http = contextlib.AsyncExitStack()
    await http.enter_async_context(http_context.open())
    media = AudioIO.create(frame_ms=frame_ms)
    closers: list[Any] = [media, http]
    try:
        components = build_components(
            workflow.config.providers.profiles[profile],
            workflow=workflow,
            profile_name=profile,
            prewarmed_vad=vad,
            env=env,
        )
        closers.insert(1, components)
        per_agent = AgentPipelines(workflow=workflow, components=components)
        closers.insert(1, per_agent)
        call = await start_call(
            workflow=workflow,
            caller_identity=caller_identity,
            components=components,
            agent_components=per_agent,
            persistence=persistence,
            media=media,
            session_options={**VOICE_SESSION_OPTIONS, **(session_options or {})},
        )
    except BaseException:
        for closer in closers:
            await closer.aclose()
        raise
    return VoiceCall(call=call, media=media, components=components, per_agent=per_agent, http=http)
