"""Playback marks: named points in the agent's audio that the caller reports hearing (sans-I/O).

A Twilio Media Streams agent may follow its audio with ``mark`` messages; Twilio echoes each
one when the audio sent before it has played to the caller, and at once when a ``clear``
drops that audio (or when nothing is playing). Agents use the echoes to learn what the caller
has heard — to end a call after its goodbye, or to cut a reply short on barge-in.
:class:`MarkEchoes` keeps that promise for one call, on the same playback model as the
measurements (:class:`~loadtest.conversation.playback.PlaybackBuffer`).
"""

from __future__ import annotations

from collections import deque

from loadtest.conversation.playback import PlaybackBuffer
from loadtest.protocols.base import Inbound, InboundKind

__all__ = ["MarkEchoes"]


class MarkEchoes:
    """The marks of one call that wait for their audio to play, in the order they came.

    Feed every classified agent message to :meth:`heard`; :meth:`due` hands out the names to
    echo by a given instant. Times are monotonic ns supplied by the caller.
    """

    __slots__ = ("_pending", "_playback")

    def __init__(self, sample_rate: int, start_ns: int) -> None:
        """No marks yet, nothing playing at ``start_ns``; ``sample_rate`` is the agent audio's."""
        self._playback = PlaybackBuffer(sample_rate, start_ns)
        self._pending: deque[tuple[int, str]] = deque()  # (due_ns, name), due_ns never falls

    def heard(self, inbound: Inbound, arrival_ns: int) -> None:
        """An agent message read at ``arrival_ns``: audio queues playback, a stop signal drops
        it (the marks waiting for it fall due at once), a mark waits for what is queued."""
        kind = inbound.kind
        if kind is InboundKind.AUDIO:
            self._playback.add(arrival_ns, inbound.audio_bytes)
        elif kind is InboundKind.STOP:
            self._playback.flush(arrival_ns)
            self._pending = deque((min(due, arrival_ns), name) for due, name in self._pending)
        if inbound.mark:
            self._pending.append((max(arrival_ns, self._playback.end_ns), inbound.mark))

    def due(self, now_ns: int) -> list[str]:
        """Names of the marks heard by ``now_ns``, oldest first (each handed out once)."""
        pending = self._pending
        names: list[str] = []
        while pending and pending[0][0] <= now_ns:
            names.append(pending.popleft()[1])
        return names
