"""Caller audio ready to stream: one per process, shared by every caller (edge: loads files).

Speech boundaries come from the cache (decided once on the recording at its own rate) and are
mapped onto the caller's frame grid by :meth:`TurnAudio.from_manifest
<loadtest.conversation.plan.TurnAudio.from_manifest>`: the end-of-speech frame is the last one
any part of which lies before ``speech_end_ms``, the same frame on every wire format.

Every utterance is split into ``CHUNK_MS`` frames and pre-encoded once into wire messages
(base64 and JSON done here, only the timestamp is inserted per send), so memory does not grow
with the number of callers and no per-frame encoding happens on the hot path. The silence a
caller streams after speaking is a small ring of distinct comfort-noise frames (or zeros, or
frames flagged ``silent``), also pre-encoded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from loadtest.audio.cache import AudioCache, CacheIdentity, load_cache
from loadtest.audio.pcm import comfort_noise_frames, duration_ms, frame_size
from loadtest.audio.scenarios import parse_scenarios, played_weights
from loadtest.conversation import ConversationConfig, GreetingMode, Scenario, TurnAudio
from loadtest.errors import ConfigError
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
        if settings.scenarios_file:
            weights = _file_weights(settings.scenarios_file, cache, weights)
        unknown = sorted(set(weights) - set(cache.scenarios))
        if unknown:
            raise ConfigError(
                f"SCENARIO_WEIGHTS names {', '.join(unknown)}, not in the audio cache "
                f"{cache.directory} (has: {', '.join(cache.scenarios)})"
            )
        protocol = caller_protocol(settings.ws_protocol, settings)
        frames: dict[str, Sequence[CallerFrame]] = {}
        scenarios = []
        for name, clips in cache.scenarios.items():
            turns = []
            for clip in clips:
                key = clip.entry.filename
                # Every protocol sends as many frames as the clip has at the cache's rate, frame
                # k carrying the same [k, k+1) × chunk of the recording whatever the wire's rate
                # or codec; so the recording's own boundaries map onto every wire grid as they
                # are. Detecting speech again in the resampled audio would move them: at 8 kHz
                # two built-in utterances end 80-160 ms early, while an independent VAD on the
                # same µ-law bytes still hears speech there.
                frames[key] = protocol.encode_clip(clip.pcm, rate, chunk)
                turns.append(
                    TurnAudio.from_manifest(
                        key,
                        duration_ms=duration_ms(clip.pcm, rate),
                        speech_start_ms=clip.speech_start_ms,
                        speech_end_ms=clip.speech_end_ms,
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


def _file_weights(path: str, cache: AudioCache, overrides: dict[str, float]) -> dict[str, float]:
    """The scenarios of ``SCENARIOS_FILE`` and their weights (``SCENARIO_WEIGHTS`` wins)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"SCENARIOS_FILE={path}: cannot read it ({exc.strerror})") from exc
    cached = {name: [clip.entry.text for clip in clips] for name, clips in cache.scenarios.items()}
    chosen = played_weights(parse_scenarios(text, source=path), cached, source=path)
    outside = sorted(set(overrides) - set(chosen))
    if outside:
        raise ConfigError(
            f"SCENARIO_WEIGHTS names {', '.join(outside)}, not in SCENARIOS_FILE {path}"
        )
    return {**chosen, **overrides}


def _tail_frames(
    protocol: CallerProtocol, mode: str, rate: int, chunk_ms: int
) -> Sequence[CallerFrame]:
    if mode == "noise":
        noise = comfort_noise_frames(rate, chunk_ms, _TAIL_FRAMES, level_dbfs=-65.0, seed=1)
        return protocol.encode_silence(noise, rate, flagged=False)
    zeros = bytes(frame_size(rate, chunk_ms))
    return protocol.encode_silence([zeros], rate, flagged=mode == "flagged")
