"""When the caller echoes an agent's playback marks (Twilio ``mark``): after the audio before
them has played, at once on a stop signal or when nothing is playing, in order."""

from __future__ import annotations

from loadtest.conversation.marks import MarkEchoes
from loadtest.protocols.base import Inbound, InboundKind

MS = 1_000_000
T0 = 1_000 * MS
FRAME = Inbound(InboundKind.AUDIO, audio_bytes=320)  # 20 ms of PCM16 at 8 kHz


def mark(name: str, kind: InboundKind = InboundKind.OTHER) -> Inbound:
    return Inbound(kind, mark=name)


def test_a_mark_waits_for_the_audio_sent_before_it() -> None:
    marks = MarkEchoes(8000, T0)
    for _ in range(5):  # 100 ms of audio sent in one burst, faster than real time
        marks.heard(FRAME, T0)
    marks.heard(mark("end-of-reply"), T0 + 1 * MS)
    assert marks.due(T0 + 99 * MS) == []
    assert marks.due(T0 + 100 * MS) == ["end-of-reply"]
    assert marks.due(T0 + 200 * MS) == []  # handed out once


def test_real_time_audio_plays_from_its_arrival() -> None:
    marks = MarkEchoes(8000, T0)
    marks.heard(FRAME, T0 + 500 * MS)  # after a silence: plays 500..520 ms
    marks.heard(mark("m"), T0 + 505 * MS)
    assert marks.due(T0 + 519 * MS) == [] and marks.due(T0 + 520 * MS) == ["m"]


def test_with_nothing_playing_a_mark_is_echoed_at_once() -> None:
    marks = MarkEchoes(8000, T0)
    marks.heard(mark("idle"), T0 + 7 * MS)
    assert marks.due(T0 + 7 * MS) == ["idle"]


def test_a_stop_signal_releases_the_waiting_marks_at_once() -> None:
    marks = MarkEchoes(8000, T0)
    for _ in range(50):  # one second queued
        marks.heard(FRAME, T0)
    marks.heard(mark("a"), T0)
    marks.heard(mark("b", InboundKind.TRANSCRIPT), T0 + 2 * MS)  # tokens may match a mark
    marks.heard(Inbound(InboundKind.STOP), T0 + 300 * MS)  # Twilio clear
    assert marks.due(T0 + 300 * MS) == ["a", "b"]
    marks.heard(FRAME, T0 + 310 * MS)  # the next reply plays from its own arrival
    marks.heard(mark("c"), T0 + 310 * MS)
    assert marks.due(T0 + 329 * MS) == [] and marks.due(T0 + 330 * MS) == ["c"]


def test_marks_come_out_in_the_order_they_came() -> None:
    marks = MarkEchoes(8000, T0)
    marks.heard(FRAME, T0)
    marks.heard(mark("first"), T0)
    marks.heard(FRAME, T0)
    marks.heard(mark("second"), T0)
    assert marks.due(T0 + 20 * MS) == ["first"]
    assert marks.due(T0 + 1_000 * MS) == ["second"]
