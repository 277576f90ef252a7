"""What the caller hears: a model of the phone's playback buffer (sans-I/O).

Agents often send audio faster than real time. Arrival times then say when audio *reached*
the caller, not when the caller *heard* it. The buffer plays each frame for its duration,
starting when it arrives or when the audio before it has finished, whichever is later; a
stop signal (ACS ``StopAudio``, Twilio ``clear``) flushes what was not yet heard.
"""

from __future__ import annotations

from loadtest.audio.pcm import SAMPLE_WIDTH

__all__ = ["PlaybackBuffer", "audio_duration_ns"]

_NS_PER_S = 1_000_000_000


def audio_duration_ns(audio_bytes: int, sample_rate: int) -> int:
    """Playing time of ``audio_bytes`` of mono PCM16 at ``sample_rate`` Hz, in ns."""
    return audio_bytes * _NS_PER_S // (SAMPLE_WIDTH * sample_rate)


class PlaybackBuffer:
    """The caller's playback queue, reduced to the instant it will have played until.

    ``end_ns`` only moves forward by :meth:`add` (by the frame's duration from
    ``max(arrival, end)``) and back to a stop signal's arrival by :meth:`flush`. All times
    are monotonic nanoseconds supplied by the caller.
    """

    __slots__ = ("_end_ns", "_sample_rate")

    def __init__(self, sample_rate: int, start_ns: int) -> None:
        """An empty buffer at ``start_ns``; ``sample_rate`` is the agent audio's, in Hz."""
        self._sample_rate = sample_rate
        self._end_ns = start_ns

    @property
    def end_ns(self) -> int:
        """The instant the caller will have heard everything buffered so far."""
        return self._end_ns

    def add(self, arrival_ns: int, audio_bytes: int) -> int:
        """Queue a frame that arrived at ``arrival_ns``; return the new :attr:`end_ns`."""
        self._end_ns = max(arrival_ns, self._end_ns) + audio_duration_ns(
            audio_bytes, self._sample_rate
        )
        return self._end_ns

    def flush(self, at_ns: int) -> int:
        """Drop what is not yet heard at ``at_ns``; return how many ns were cut (>= 0)."""
        cut_ns = max(0, self._end_ns - at_ns)
        self._end_ns -= cut_ns
        return cut_ns

    def playing(self, now_ns: int) -> bool:
        """Whether the caller is hearing agent audio at ``now_ns``."""
        return self._end_ns > now_ns

    def remaining_ns(self, now_ns: int) -> int:
        """How much buffered audio the caller has still to hear at ``now_ns``."""
        return max(0, self._end_ns - now_ns)
