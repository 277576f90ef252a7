"""An in-memory caller transport and a scripted agent behind it (a helper for the call driver's
unit tests): the driver's own loop, pacing and measurements run for real, the socket does not.

The agent speaks raw binary PCM and recognises each caller frame by the sample value it
carries (:func:`marked_clip`), so it can answer a chosen number of milliseconds after the
frame that ends a turn's speech arrived — the way a real agent reacts to what it hears.
"""

from __future__ import annotations

import struct
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import gevent

from loadtest.protocols.wsframes import Closed
from loadtest.runtime.transport import ConnectFailed
from loadtest.settings import CallerSettings

FRAME_SAMPLES = 320  # 20 ms at 16 kHz
AGENT_FRAME = b"\x10\x00" * FRAME_SAMPLES  # 20 ms of agent audio (PCM16)


def marked_clip(first_marker: int, frames: int) -> bytes:
    """PCM16 whose frame i holds only the sample value ``first_marker + i``."""
    return b"".join(struct.pack("<h", first_marker + i) * FRAME_SAMPLES for i in range(frames))


def marker(message: str | bytes) -> int | None:
    """The marker of a caller frame (``None`` for text or a silent frame)."""
    if isinstance(message, str) or len(message) < 2:
        return None
    value: int = struct.unpack_from("<h", message)[0]
    return value or None


@dataclass
class Agent:
    """A scripted agent: answers after each end-of-speech frame, refuses or drops calls."""

    eos_markers: set[int]
    answer_after_ms: float = 300.0
    answer_frames: int = 5
    refuse: int = 0  # connect attempts to refuse before accepting
    close_after_frames: int | None = None  # end the call after this many caller frames
    close_code: int = 1011
    hang_up_after_answer: bool = False  # close with close_code right after the first answer
    after_first_answer: Callable[[], None] | None = None  # runs right after it was delivered
    stamped_early_ms: float = 0.0  # answers carry an arrival stamp this long before delivery
    transports: list[FakeTransport] = field(default_factory=list)

    def connect(self, transport: FakeTransport) -> None:
        if self.refuse:
            self.refuse -= 1
            raise ConnectFailed("connect_refused", "connection refused (is the agent running?)")
        self.transports.append(transport)

    def heard(self, transport: FakeTransport, message: str | bytes) -> None:
        frames = sum(isinstance(m, bytes) for _, m in transport.sent)
        if self.close_after_frames is not None and frames == self.close_after_frames:
            transport.later(0.0, lambda: transport.drop(Closed(self.close_code, "agent hung up")))
        if marker(message) in self.eos_markers:
            transport.later(self.answer_after_ms / 1000, lambda: self._answer(transport))

    def _answer(self, transport: FakeTransport) -> None:
        for _ in range(self.answer_frames):
            transport.deliver([AGENT_FRAME], early_ms=self.stamped_early_ms)
            if self.after_first_answer is not None:
                self.after_first_answer()
                self.after_first_answer = None
            if self.hang_up_after_answer:  # the close arrives in the same read as the audio
                transport.drop(Closed(self.close_code, "agent hung up"))
                return
            gevent.sleep(0.02)


class FakeTransport:
    """The driver's :class:`~loadtest.runtime.caller.Transport`, in memory."""

    def __init__(self, agent: Agent, settings: CallerSettings) -> None:
        self.agent = agent
        self.settings = settings
        self.call_id = str(uuid.uuid4())
        self.correlation_id = str(uuid.uuid4())
        self.sent: list[tuple[int, str | bytes]] = []  # (monotonic ns, message)
        self.delivered = 0
        self.closed_with: int | None = None
        self._greenlets: list[gevent.Greenlet] = []
        self._on_messages: Callable[[int, list[str | bytes]], None] | None = None
        self._on_closed: Callable[[Closed], None] | None = None
        self._gone: Closed | None = None

    def connect(self, url: str, timeout_s: float) -> None:
        assert url == self.settings.ws_url and timeout_s > 0
        self.agent.connect(self)

    def send_nowait(self, message: str | bytes) -> None:
        if self._gone is not None:
            raise self._gone
        self.sent.append((time.monotonic_ns(), message))
        self.agent.heard(self, message)

    def send(self, message: str | bytes) -> None:
        self.send_nowait(message)

    def start_receiving(
        self,
        on_messages: Callable[[int, list[str | bytes]], None],
        on_closed: Callable[[Closed], None],
        on_error: Callable[[BaseException], None],
    ) -> None:
        self._on_messages, self._on_closed = on_messages, on_closed

    def close(self, code: int = 1000) -> None:
        self.closed_with = code
        self._gone = self._gone or Closed(code, "closed by the caller")
        gevent.killall(self._greenlets, block=False)

    # -- the agent's side ----------------------------------------------------------------
    def later(self, delay_s: float, action: Callable[[], None]) -> None:
        self._greenlets.append(gevent.spawn_later(delay_s, action))

    def deliver(self, messages: list[str | bytes], early_ms: float = 0.0) -> None:
        """Messages from the agent, as the readiness callback hands them over: stamped now, or
        ``early_ms`` before (a kernel arrival stamp of data read late)."""
        if self._on_messages is not None and self._gone is None:
            self.delivered += len(messages)
            self._on_messages(time.monotonic_ns() - int(early_ms * 1e6), messages)

    def drop(self, closed: Closed) -> None:
        """The agent ends the call: sends fail from now on, the driver hears the close."""
        self._gone = closed
        if self._on_closed is not None:
            self._on_closed(closed)
