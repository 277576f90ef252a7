"""What an agent session asks its edge to do, and what it reports (core value types).

Actions are performed by the server in the order a session returns them. A
:class:`TurnRecord` is one line of the ground-truth log: monotonic nanosecond timestamps
(``time.monotonic_ns()``, comparable across processes on one Linux host) of what the agent
really received and sent for one turn.
"""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass

__all__ = [
    "Abort",
    "Action",
    "Close",
    "SendAudio",
    "SendBinary",
    "SendStop",
    "SendText",
    "TurnKind",
    "TurnRecord",
]


@dataclass(slots=True)  # not frozen: one per reply frame, and a frozen __init__ costs 3x
class SendAudio:
    """Send reply frame ``frame`` (index into the pre-encoded reply audio). Read-only."""

    frame: int


@dataclass(frozen=True, slots=True)
class SendStop:
    """Send ``StopAudio`` in the configured casing."""


@dataclass(frozen=True, slots=True)
class SendText:
    """Send a text frame as is (transcripts, injected malformed JSON)."""

    text: str


@dataclass(frozen=True, slots=True)
class SendBinary:
    """Send a binary frame (injected garbage)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Close:
    """Close the WebSocket with ``code`` and ``reason`` (≤ 123 bytes)."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Abort:
    """Drop the TCP connection with a reset, without a close frame."""


Action = SendAudio | SendStop | SendText | SendBinary | Close | Abort


class TurnKind(enum.Enum):
    REPLY = "reply"  # a caller turn and the agent's reply to it
    GREETING = "greeting"  # the agent speaking first, after AudioMetadata


@dataclass(frozen=True, slots=True)
class TurnRecord:
    """The server-side truth of one turn (one JSON line; ``None`` → ``null``).

    ``*_rx_ns`` are when inbound frames were read, ``*_tx_ns`` when outbound messages were
    written, all ``time.monotonic_ns()``. ``outcome`` is one of ``answered`` (reply played to
    the end), ``stopped`` (StopAudio after a barge-in), ``superseded`` (the next reply began),
    ``silent`` (fault: never answered), ``fault_close``/``fault_reset`` (fault: connection
    closed mid-reply), ``closed`` (connection ended first), ``incomplete`` (caller speech
    never ended), ``cancelled`` (greeting talked over before it began).
    """

    connection_id: str
    correlation_id: str | None
    kind: TurnKind
    turn_index: int | None
    outcome: str
    first_speech_rx_ns: int | None
    last_speech_rx_ns: int | None
    speech_frames: int | None
    latency_ms: float | None
    stall_ms: int
    endpoint_silence_ms: int
    response_due_ns: int | None
    response_first_tx_ns: int | None
    response_last_tx_ns: int | None
    response_frames_sent: int
    response_frames_planned: int
    barge_speech_rx_ns: int | None
    barge_detected_ns: int | None
    stop_tx_ns: int | None
    barge_latency_ms: int
    barge_mode: str
    fault: str | None
    fault_tx_ns: int | None

    @property
    def response_latency_ms(self) -> float | None:
        """First reply frame sent − last speech frame received, in ms (server-side TTFB)."""
        if self.response_first_tx_ns is None or self.last_speech_rx_ns is None:
            return None
        return (self.response_first_tx_ns - self.last_speech_rx_ns) / 1e6

    @property
    def stop_latency_ms(self) -> float | None:
        """StopAudio sent − first barge speech frame received, in ms."""
        if self.stop_tx_ns is None or self.barge_speech_rx_ns is None:
            return None
        return (self.stop_tx_ns - self.barge_speech_rx_ns) / 1e6

    def to_json(self) -> str:
        """One compact JSON line (no newline), with the two derived latencies added."""
        data = asdict(self)
        data["kind"] = self.kind.value
        data["response_latency_ms"] = self.response_latency_ms
        data["stop_latency_ms"] = self.stop_latency_ms
        return json.dumps(data, separators=(",", ":"))
