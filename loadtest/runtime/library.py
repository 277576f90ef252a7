"""Caller audio ready to stream: one per process, shared by every caller (edge: loads files).

Every utterance is split into ``CHUNK_MS`` frames and pre-encoded once into wire messages
(base64 and JSON done here, only the timestamp is inserted per send), so memory does not grow
with the number of callers and no per-frame encoding happens on the hot path. The silence a
caller streams after speaking is a small ring of distinct comfort-noise frames (or zeros, or
frames flagged ``silent``), also pre-encoded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from loadtest.audio.cache import AudioCache, CacheIdentity, load_cache
from loadtest.audio.pcm import comfort_noise_frames, duration_ms, frame_size, resample
from loadtest.audio.vad import speech_bounds
from loadtest.conversation import ConversationConfig, GreetingMode, Scenario, TurnAudio
from loadtest.errors import AudioFormatError, ConfigError
from loadtest.protocols import caller_protocol
from loadtest.protocols.caller_api import CallerFrame, CallerProtocol
from loadtest.settings import CallerSettings

__all__ = ["AudioLibrary", "conversation_config"]

_TAIL_FRAMES = 50  # one second of distinct noise frames at 20 ms, reused in a ring


def conversation_config(settings: CallerSettings, agent_sample_rate: int) -> ConversationConfig:
    """The conversation core's settings from the caller settings."""
    if settings.barge_quiet_ms <= settings.chunk_ms:
        raise ConfigError(
            f"BARGE_QUIET_MS={settings.barge_quiet_ms} must be longer than one frame "
            f"(CHUNK_MS={settings.chunk_ms})"
        )
    return ConversationConfig(
        chunk_ms=settings.chunk_ms,
        first_byte_timeout_ms=settings.first_byte_timeout_ms,
        barge_quiet_ms=settings.barge_quiet_ms,
        barge_in_rate=settings.barge_in_rate,
        barge_after_ms=settings.barge_after_ms,
        chunks_per_turn=settings.chunks_per_turn,
        turns_per_user=settings.turns_per_user,
        greeting=GreetingMode(settings.greeting),
        greeting_timeout_ms=settings.greeting_timeout_ms,
        max_tail_ms=settings.turn_timeout_ms or max(30_000, settings.first_byte_timeout_ms),
        pause_between_turns_ms=settings.pause_between_turns_ms,
        agent_sample_rate=agent_sample_rate,
    )


@dataclass(frozen=True, slots=True)
class AudioLibrary:
    """Scenarios for the conversation core plus the pre-encoded frames they refer to."""

    sample_rate: int
    chunk_ms: int
    protocol: CallerProtocol
    scenarios: tuple[Scenario, ...]
    frames: Mapping[str, Sequence[CallerFrame]]
    tail: Sequence[CallerFrame]
    warnings: tuple[str, ...] = ()
    cache: CacheIdentity | None = None  # which cache the audio came from

    @property
    def agent_sample_rate(self) -> int:
        return self.protocol.agent_sample_rate(self.sample_rate)

    @classmethod
    def load(cls, settings: CallerSettings) -> AudioLibrary:
        """Load ``settings.pcm_dir`` (raises AudioError/ConfigError with one clear line)."""
        return cls.from_cache(
            load_cache(settings.pcm_dir, sample_rate=settings.sample_rate), settings
        )

    @classmethod
    def from_cache(cls, cache: AudioCache, settings: CallerSettings) -> AudioLibrary:
        rate, chunk = cache.sample_rate, settings.chunk_ms
        frame_size(rate, chunk)  # raises if the chunk is not whole samples at this rate
        weights = dict(settings.scenario_weights)
        unknown = sorted(set(weights) - set(cache.scenarios))
        if unknown:
            raise ConfigError(
                f"SCENARIO_WEIGHTS names {', '.join(unknown)}, not in the audio cache "
                f"{cache.directory} (has: {', '.join(cache.scenarios)})"
            )
        protocol = caller_protocol(settings.ws_protocol, settings)
        wire_rate = protocol.agent_sample_rate(rate)
        frames: dict[str, Sequence[CallerFrame]] = {}
        scenarios = []
        for name, clips in cache.scenarios.items():
            turns = []
            for clip in clips:
                key = clip.entry.filename
                frames[key] = protocol.encode_clip(clip.pcm, rate, chunk)
                start_ms, end_ms = clip.speech_start_ms, clip.speech_end_ms
                if wire_rate != rate:  # the agent hears band-limited audio: find speech in it
                    try:
                        heard = speech_bounds(resample(clip.pcm, rate, wire_rate), wire_rate)
                        start_ms, end_ms = heard.start_ms, heard.end_ms
                    except AudioFormatError:
                        pass  # nothing loud enough at the wire rate: keep the manifest's

                turns.append(
                    TurnAudio.from_manifest(
                        key,
                        duration_ms=duration_ms(clip.pcm, rate),
                        speech_start_ms=start_ms,
                        speech_end_ms=end_ms,
                        chunk_ms=chunk,
                    )
                )
            if not weights or name in weights:
                scenarios.append(Scenario(name, tuple(turns), weights.get(name, 1.0)))
        return cls(
            sample_rate=rate,
            chunk_ms=chunk,
            protocol=protocol,
            scenarios=tuple(scenarios),
            frames=frames,
            tail=_tail_frames(protocol, settings.silence_mode, rate, chunk),
            warnings=cache.warnings,
            cache=cache.identity,
        )


def _tail_frames(
    protocol: CallerProtocol, mode: str, rate: int, chunk_ms: int
) -> Sequence[CallerFrame]:
    if mode == "noise":
        noise = comfort_noise_frames(rate, chunk_ms, _TAIL_FRAMES, level_dbfs=-65.0, seed=1)
        return protocol.encode_silence(noise, rate, flagged=False)
    zeros = bytes(frame_size(rate, chunk_ms))
    return protocol.encode_silence([zeros], rate, flagged=mode == "flagged")
