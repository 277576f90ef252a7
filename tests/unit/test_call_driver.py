"""The call driver (runtime/caller.py) over an in-memory transport: its connect loop, pacing
and measurements run for real on gevent; only the socket is fake (tests/unit/fake_transport.py).

Timing assertions are generous: this runs on gevent's real clock, on a shared machine.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import gevent
import pytest

from loadtest.conversation import Scenario, TurnAudio
from loadtest.metrics.voice_stats import VoiceStats
from loadtest.protocols import caller_protocol
from loadtest.runtime.caller import CallDriver
from loadtest.runtime.library import AudioLibrary, conversation_config
from loadtest.settings import CallerSettings, parse_settings
from tests.unit.fake_transport import Agent, FakeTransport, marked_clip, marker

RATE, CHUNK_MS = 16000, 20
# Two turns of 10 frames, speech in frames 2..7: turn 0 carries markers 1..10, turn 1 101..110
TURNS = ((1, "t0.pcm"), (101, "t1.pcm"))
EOS_MARKERS = {first + 7 for first, _ in TURNS}


@dataclass
class Sink:
    stats: VoiceStats = field(default_factory=VoiceStats)
    samples: list[tuple[str, float, str | None]] = field(default_factory=list)
    run_ended_ns: int | None = None

    def sample(self, name: str, value_ms: float, error: str | None, detail: str) -> None:
        self.samples.append((name, value_ms, error))


def _settings(**env: str) -> CallerSettings:
    base = {"WS_URL": "ws://agent.test/media", "WS_PROTOCOL": "raw", "GREETING": "off",
            "BARGE_IN_RATE": "0", "BARGE_QUIET_MS": "100", "FIRST_BYTE_TIMEOUT_SEC": "2",
            "RECONNECT_MAX": "2"}  # fmt: skip
    return parse_settings({**base, **env})


def _library(settings: CallerSettings) -> AudioLibrary:
    protocol = caller_protocol("raw", settings)
    frames = {key: protocol.encode_clip(marked_clip(first, 10), RATE, CHUNK_MS)
              for first, key in TURNS}  # fmt: skip
    turns = tuple(TurnAudio(key, frame_count=10, speech_start_frame=2, eos_frame=7)
                  for _, key in TURNS)  # fmt: skip
    return AudioLibrary(
        sample_rate=RATE, chunk_ms=CHUNK_MS, protocol=protocol,
        scenarios=(Scenario("demo", turns),), frames=frames,
        tail=protocol.encode_silence([bytes(RATE // 50 * 2)], RATE, flagged=False),
    )  # fmt: skip


def _call(agent: Agent, **env: str) -> tuple[Sink, list[FakeTransport]]:
    settings = _settings(**env)
    library = _library(settings)
    sink = Sink()
    made: list[FakeTransport] = []

    def transport(s: CallerSettings) -> FakeTransport:
        made.append(FakeTransport(agent, s))
        return made[-1]

    config = conversation_config(settings, library.agent_sample_rate)
    driver = CallDriver(settings, library, config, sink, random.Random(1), transport=transport)
    call = gevent.spawn(driver.run_call)
    call.join(timeout=20)
    assert call.successful(), call.exception
    return sink, made


def test_a_call_streams_every_frame_in_order_on_time_and_measures_the_answers() -> None:
    agent = Agent(EOS_MARKERS, answer_after_ms=300, answer_frames=5)
    sink, (transport,) = _call(agent)

    media = [(t, marker(m)) for t, m in transport.sent]
    spoken = [m for _, m in media if m is not None]
    assert spoken == [*range(1, 11), *range(101, 111)]  # both utterances, whole, in order
    first, last = (next(t for t, m in media if m == k) for k in (1, 10))
    assert 9 * 20 - 15 <= (last - first) / 1e6 <= 9 * 20 + 60  # paced at 20 ms a frame
    assert transport.closed_with == 1000

    names = [(name, error) for name, _, error in sink.samples]
    assert names == [("connect", None), ("ttfb", None), ("turn", None),
                     ("ttfb", None), ("turn", None)]  # fmt: skip
    ttfbs = [value for name, value, _ in sink.samples if name == "ttfb"]
    assert all(295 <= v <= 500 for v in ttfbs), ttfbs  # answered 300 ms after the EOS frame

    stats = sink.stats
    assert (stats.total("calls"), stats.total("connect_attempts")) == (1, 1)
    assert stats.total("turns") == stats.total("turns_ok") == 2
    assert stats.per_scenario("turns_ok") == {"demo": 2}
    assert stats.total("frames_sent") == len(transport.sent)
    assert stats.total("stream_due_us") == len(transport.sent) * CHUNK_MS * 1000
    assert stats.total("frames_received") == transport.delivered == 10
    assert stats.histograms["ttfb_ms"].count == 2
    assert stats.histograms["frame_lateness_ms"].count == len(transport.sent)
    assert stats.errors == {}


def test_a_message_stamped_before_the_calls_last_send_is_heard_at_that_send() -> None:
    # Answers whose arrival stamps lie before the end of speech (data read long after it
    # arrived): the engine has already sent the EOS frame and acted on it, so they count
    # from then on — an answer, not talk-over that would leave the turn unanswered.
    agent = Agent(EOS_MARKERS, answer_after_ms=300, answer_frames=5, stamped_early_ms=5000)
    sink, _ = _call(agent)
    names = [(name, error) for name, _, error in sink.samples]
    assert names == [("connect", None), ("ttfb", None), ("turn", None),
                     ("ttfb", None), ("turn", None)]  # fmt: skip
    ttfbs = [value for name, value, _ in sink.samples if name == "ttfb"]
    assert all(295 <= v <= 500 for v in ttfbs), ttfbs  # from the EOS frame to its answer
    assert sink.stats.histograms["ttfb_ms"].count == 2


def test_refused_connects_are_retried_with_backoff_and_counted() -> None:
    sink, made = _call(Agent(EOS_MARKERS, refuse=2))
    assert len(made) == 3 and [t.sent != [] for t in made] == [False, False, True]
    connects = [(value >= 0, error) for name, value, error in sink.samples if name == "connect"]
    assert connects == [(True, "connect_refused"), (True, "connect_refused"), (True, None)]
    stats = sink.stats
    assert (stats.total("connect_attempts"), stats.total("reconnects")) == (3, 2)
    assert stats.total("calls_connected") == 1 and stats.errors == {"connect_refused": 2}


def test_a_call_that_never_connects_is_measured_not_raised() -> None:
    sink, made = _call(Agent(EOS_MARKERS, refuse=9), RECONNECT_MAX="1")
    assert len(made) == 2 and all(t.sent == [] for t in made)
    assert [s[0] for s in sink.samples] == ["connect", "connect"]
    stats = sink.stats
    assert stats.total("calls") == 1 and stats.total("calls_connected") == 0
    assert stats.total("turns") == 0 and stats.errors == {"connect_refused": 2}


@pytest.mark.parametrize(
    ("code", "ignore", "failed"),
    [(1011, "false", True), (1011, "true", True), (1000, "false", True), (1000, "true", False)],
)
def test_an_agent_that_hangs_up_mid_turn(code: int, ignore: str, failed: bool) -> None:
    """Only a benign close (1000/1001/1006) with WS_IGNORE_CLOSE_EXCEPTIONS is not a failure."""
    agent = Agent(EOS_MARKERS, close_after_frames=4, close_code=code)
    sink, (transport,) = _call(agent, WS_IGNORE_CLOSE_EXCEPTIONS=ignore)
    assert len(transport.sent) == 4  # nothing is sent after the hang-up
    stats = sink.stats
    assert stats.errors == ({"closed_mid_turn": 1} if failed else {})
    assert stats.total("closes_ignored") == (0 if failed else 1)
    assert (("turn", "closed_mid_turn") in [(n, e) for n, _, e in sink.samples]) is failed


def test_audio_read_just_before_the_close_is_heard_before_it() -> None:
    """Inbound messages are handled at the caller's next frame, not in the read callback; a
    close read right after the answer must not overtake the answer."""
    agent = Agent(EOS_MARKERS, answer_after_ms=300, hang_up_after_answer=True)
    sink, (transport,) = _call(agent)
    assert transport.delivered == 1
    ttfb = [(value, error) for name, value, error in sink.samples if name == "ttfb"]
    assert len(ttfb) == 1 and ttfb[0][1] is None and 295 <= ttfb[0][0] <= 500, ttfb
    assert sink.stats.total("frames_received") == 1
    assert sink.stats.errors == {"closed_mid_turn": 1}


def test_an_answer_read_just_before_the_caller_is_stopped_still_counts() -> None:
    """Locust stopping a user kills its greenlet between two frames: the answer read in
    between is heard, then the turn is cut."""
    settings = _settings()
    library = _library(settings)
    sink = Sink()
    config = conversation_config(settings, library.agent_sample_rate)
    agent = Agent(EOS_MARKERS, answer_after_ms=300)
    driver = CallDriver(settings, library, config, sink, random.Random(1),
                        transport=lambda s: FakeTransport(agent, s))  # fmt: skip
    call = gevent.spawn(driver.run_call)
    agent.after_first_answer = lambda: call.kill(block=False)
    call.join(timeout=20)
    assert call.dead
    ttfb = [(value, error) for name, value, error in sink.samples if name == "ttfb"]
    assert len(ttfb) == 1 and ttfb[0][1] is None and 295 <= ttfb[0][0] <= 500, ttfb
    assert sink.stats.total("frames_received") == 1
