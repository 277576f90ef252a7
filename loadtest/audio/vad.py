"""Speech detection shared by the audio generator and the agent simulator.

One VAD (webrtcvad) on one frame grid (``VadParams.frame_ms``, 20 ms like the callers'
frames), with one set of smoothing parameters, so the speech boundaries written to the
manifest when audio is generated are the boundaries the agent simulator detects when the same
frames arrive over the wire.

Two entry points:

* :func:`speech_bounds` — offline, for a whole PCM file: where speech starts and ends.
* :class:`SpeechSegmenter` — streaming, sans-I/O: feed one frame at a time (``push``) and get
  :class:`VadEvent` values back; the caller (an edge) maps frame indexes to receive times.

A frame counts as speech when webrtcvad says so *and* its level is above
``VadParams.min_level_dbfs`` (so comfort noise and line hiss never count). Speech starts at the
first frame of a run of ``onset_frames`` speech frames.
"""

from __future__ import annotations

import enum
import warnings
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import webrtcvad

from loadtest.audio.pcm import SAMPLE_WIDTH, check_pcm, check_rate, frame_size, rms_dbfs
from loadtest.errors import AudioFormatError, ConfigError

__all__ = [
    "DEFAULT_VAD",
    "SpeechBounds",
    "SpeechSegmenter",
    "VadEvent",
    "VadEventKind",
    "VadParams",
    "speech_bounds",
]

_WEBRTC_RATES = (8000, 16000, 32000, 48000)  # what webrtcvad accepts, Hz

_audioop: ModuleType | None
try:  # in the standard library up to Python 3.12 (deprecated there), gone in 3.13
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop as _audioop
except ImportError:  # pragma: no cover - Python 3.13+: numpy computes every level
    _audioop = None


@dataclass(frozen=True, slots=True)
class VadParams:
    """Smoothing parameters of the speech detector.

    Attributes:
        frame_ms: analysis frame, the same grid callers stream on (10, 20 or 30 ms).
        aggressiveness: webrtcvad mode 0 (permissive) .. 3 (strict).
        min_level_dbfs: frames quieter than this (RMS, dBFS) are never speech.
        onset_frames: consecutive speech frames needed before speech is declared.
    """

    frame_ms: int = 20
    aggressiveness: int = 2
    min_level_dbfs: float = -45.0
    onset_frames: int = 3

    def __post_init__(self) -> None:
        if self.frame_ms not in (10, 20, 30):
            raise ConfigError(f"VAD frame_ms={self.frame_ms} is not allowed (10, 20 or 30)")
        if self.aggressiveness not in (0, 1, 2, 3):
            raise ConfigError(f"VAD aggressiveness={self.aggressiveness} is not 0..3")
        if self.onset_frames < 1:
            raise ConfigError(f"VAD onset_frames={self.onset_frames} must be >= 1")


DEFAULT_VAD = VadParams()


@dataclass(frozen=True, slots=True)
class SpeechBounds:
    """Where speech is in a file, in milliseconds from its start, on the frame grid.

    ``end_ms`` is the end of the last frame that contains speech, so the caller's
    end-of-speech instant is the send time of frame ``end_ms // frame_ms - 1``.
    """

    start_ms: int
    end_ms: int


class _FrameClassifier:
    """Labels single frames speech / not speech.

    webrtcvad has no 24 kHz mode; such frames are upsampled ×2 to 48 kHz by repeating
    samples — stateless and without delay, so boundaries stay on the same grid (webrtcvad's
    own low-pass when it decimates to 8 kHz removes the images this creates).
    """

    def __init__(self, sample_rate: int, params: VadParams) -> None:
        self._params = params
        # rms_dbfs(frame) < min_level_dbfs  <=>  RMS < quiet_rms (in sample units)
        self._quiet_rms = 32768.0 * 10.0 ** (params.min_level_dbfs / 20.0)
        self._rate = check_rate(sample_rate)
        self._vad = webrtcvad.Vad(params.aggressiveness)
        self._upsample = sample_rate not in _WEBRTC_RATES
        self._vad_rate = sample_rate * 2 if self._upsample else sample_rate
        self.frame_bytes = frame_size(sample_rate, params.frame_ms)

    def is_speech(self, frame: bytes) -> bool:
        if len(frame) != self.frame_bytes:
            raise AudioFormatError(
                f"VAD frame of {len(frame)} bytes; expected {self.frame_bytes} "
                f"({self._params.frame_ms} ms at {self._rate} Hz)"
            )
        if self._quiet(frame):
            return False
        if self._upsample:
            frame = np.repeat(np.frombuffer(frame, dtype="<i2"), 2).tobytes()
        return bool(self._vad.is_speech(frame, self._vad_rate))

    def _quiet(self, frame: bytes) -> bool:
        """Below ``min_level_dbfs``. The agent asks this for every inbound frame: audioop's C
        RMS (floored to an integer) settles it unless it lands within one unit of the
        threshold, where the exact float computation decides."""
        if _audioop is not None:
            floor_rms = _audioop.rms(frame, SAMPLE_WIDTH)
            if floor_rms + 1 <= self._quiet_rms:
                return True
            if floor_rms >= self._quiet_rms:
                return False
        return rms_dbfs(frame) < self._params.min_level_dbfs

    def reset(self) -> None:
        """Forget the adaptive state (webrtcvad adapts its noise model to what it has seen)."""
        self._vad = webrtcvad.Vad(self._params.aggressiveness)


def _frame_labels(pcm: bytes, sample_rate: int, params: VadParams) -> list[bool]:
    classifier = _FrameClassifier(sample_rate, params)
    size = classifier.frame_bytes
    usable = len(pcm) - len(pcm) % size
    return [classifier.is_speech(pcm[i : i + size]) for i in range(0, usable, size)]


def speech_bounds(
    pcm: bytes, sample_rate: int, params: VadParams = DEFAULT_VAD, *, what: str = "audio"
) -> SpeechBounds:
    """Find the first and last speech in ``pcm`` on the ``params.frame_ms`` grid.

    Speech starts at the first frame of the first run of ``onset_frames`` speech frames and
    ends after the last frame of the last such run. Shorter blips (clicks, breaths) at either
    end are ignored. Raises :class:`AudioFormatError` when the audio contains no speech.
    """
    check_pcm(pcm, what=what)
    labels = _frame_labels(pcm, sample_rate, params)
    runs: list[tuple[int, int]] = []  # [first, last] frame index of each long-enough run
    run_start: int | None = None
    for index, speech in enumerate([*labels, False]):
        if speech and run_start is None:
            run_start = index
        elif not speech and run_start is not None:
            if index - run_start >= params.onset_frames:
                runs.append((run_start, index - 1))
            run_start = None
    if not runs:
        raise AudioFormatError(f"{what}: no speech detected (silent or noise-only audio)")
    frame_ms = params.frame_ms
    return SpeechBounds(start_ms=runs[0][0] * frame_ms, end_ms=(runs[-1][1] + 1) * frame_ms)


class VadEventKind(enum.Enum):
    SPEECH_START = "speech_start"
    SPEECH_END = "speech_end"


@dataclass(frozen=True, slots=True)
class VadEvent:
    """A change of state of the streaming detector.

    ``frame_index`` is the index (from 0, in pushed frames) of the first speech frame for
    ``SPEECH_START`` and of the last speech frame for ``SPEECH_END``.
    """

    kind: VadEventKind
    frame_index: int


class SpeechSegmenter:
    """Streaming speech detector (sans-I/O).

    Call :meth:`push` with each inbound frame of exactly ``frame_ms`` in arrival order. It
    returns ``SPEECH_START`` once ``onset_frames`` consecutive speech frames were seen, and
    ``SPEECH_END`` once ``endpoint_silence_ms`` of non-speech followed speech. After each
    ``SPEECH_END`` the detector starts afresh, so each utterance is judged as
    :func:`speech_bounds` judged its file. The edge keeps
    the receive time of each frame index to turn events into timestamps.
    """

    def __init__(
        self, sample_rate: int, endpoint_silence_ms: int, params: VadParams = DEFAULT_VAD
    ) -> None:
        if endpoint_silence_ms < params.frame_ms:
            raise ConfigError(
                f"endpoint silence {endpoint_silence_ms} ms is shorter than one "
                f"{params.frame_ms} ms frame"
            )
        self._classifier = _FrameClassifier(sample_rate, params)
        self._onset = params.onset_frames
        self._endpoint_frames = -(-endpoint_silence_ms // params.frame_ms)
        self._index = -1
        self._run = 0  # consecutive speech frames ending at the current one
        self._quiet = 0  # consecutive non-speech frames ending at the current one
        self.in_speech = False
        self.last_speech_index: int | None = None

    @property
    def frame_bytes(self) -> int:
        """Size in bytes of the frames :meth:`push` expects."""
        return self._classifier.frame_bytes

    def push(self, frame: bytes) -> VadEvent | None:
        """Classify one frame; return the event it completes, if any."""
        speech = self._classifier.is_speech(frame)
        if speech or self.in_speech:
            return self._advance(speech)
        self._index += 1  # quiet between utterances, nearly every frame: _advance(False) inline
        self._run = 0
        self._quiet += 1
        return None

    def push_silent(self) -> VadEvent | None:
        """Account for one frame the sender flagged silent, without classifying it."""
        return self._advance(False)

    def _advance(self, speech: bool) -> VadEvent | None:
        self._index += 1
        if speech:
            self._run += 1
            self._quiet = 0
            if self.in_speech:
                self.last_speech_index = self._index
            elif self._run >= self._onset:
                self.in_speech = True
                self.last_speech_index = self._index
                return VadEvent(VadEventKind.SPEECH_START, self._index - self._run + 1)
            return None
        self._run = 0
        self._quiet += 1
        if self.in_speech and self._quiet >= self._endpoint_frames:
            self.in_speech = False
            assert self.last_speech_index is not None
            # Start the next utterance from a fresh detector, exactly as speech_bounds() did
            # when it analysed that utterance's file (quiet frames never reach webrtcvad), so
            # the live speech start lands on the manifest's frame.
            self._classifier.reset()
            return VadEvent(VadEventKind.SPEECH_END, self.last_speech_index)
        return None
