"""The agent session state machine, driven by a fake clock (no sleeping, no sockets)."""

from __future__ import annotations

import json
import random
from dataclasses import replace

import pytest

from loadtest.agent_sim.actions import (
    Abort,
    Action,
    Close,
    SendAudio,
    SendBinary,
    SendStop,
    SendText,
    TurnKind,
    TurnRecord,
)
from loadtest.agent_sim.audio import tone_pcm
from loadtest.agent_sim.config import (
    BargeMode,
    FaultKind,
    FaultPlan,
    Pace,
    ReplyPolicy,
    UniformLatency,
)
from loadtest.agent_sim.session import GARBAGE_LEAD_MS, AgentSession
from loadtest.agent_sim.stats import AgentStats
from loadtest.audio.pcm import comfort_noise_frames, split_frames
from loadtest.protocols import acs

MS = 1_000_000
FRAME_NS = 20 * MS
TS = "2024-11-15T19:16:12.925Z"
SPEECH_FRAME = acs.encode_frame(split_frames(tone_pcm(16000, 20), 16000, 20)[0]).render(TS)
# A steady tone: the VAD calls every frame speech (fades only at the edges of a whole tone).
_TONE = split_frames(tone_pcm(16000, 2000), 16000, 20)[10]
SPEECH = acs.encode_frame(_TONE).render(TS)
SILENCE = acs.encode_frame(comfort_noise_frames(16000, 20, 1)[0]).render(TS)
POLICY = ReplyPolicy(response_ms=1000)


class Driver:
    """A perfect edge: caller frames every 20 ms, polls exactly at each deadline."""

    def __init__(self, policy: ReplyPolicy = POLICY, seed: int = 1) -> None:
        self.stats = AgentStats()
        self.session = AgentSession(
            "call-1", policy, random.Random(seed), self.stats, correlation_id="corr-1"
        )
        self.t = 1_000_000_000
        self.next_frame_ns = self.t
        self.sent: list[tuple[int, Action]] = []
        self.rx: list[int] = []
        self.records: list[TurnRecord] = []

    def run_until(self, t_ns: int) -> None:
        while True:
            deadline = self.session.next_deadline_ns()
            if deadline is None or deadline > t_ns:
                break
            self.t = max(self.t, deadline)
            self.sent += [(self.t, a) for a in self.session.poll(self.t)]
        self.t = max(self.t, t_ns)
        self.records += self.session.take_records()

    def send(self, message: str | bytes) -> list[Action]:
        self.run_until(self.next_frame_ns)
        session = self.session
        deadline = session.next_deadline_ns()
        actions = session.receive(message, self.t)
        if not session.replanned:  # the edge then skips re-reading the deadline: it must hold
            assert not actions and not session.has_records
            assert session.next_deadline_ns() == deadline
        self.sent += [(self.t, a) for a in actions]
        return actions

    def metadata(self, rate: int = 16000) -> list[Action]:
        return self.send(acs.encode_metadata(rate))

    def stream(self, message: str, duration_ms: int) -> list[int]:
        """Send ``duration_ms`` of caller frames in real time; return their indexes."""
        first = len(self.rx)
        count = duration_ms // 20
        for _ in range(count):
            self.send(message)
            self.rx.append(self.t)
            self.next_frame_ns += FRAME_NS
        return list(range(first, first + count))

    def idle(self, duration_ms: int) -> None:
        self.stream(SILENCE, duration_ms)

    def times(self, kind: type) -> list[int]:
        return [t for t, a in self.sent if isinstance(a, kind)]

    def close(self) -> None:
        self.session.close(self.t)
        self.records += self.session.take_records()


def turn(driver: Driver, speech_ms: int = 600, lead_ms: int = 100) -> tuple[int, int]:
    """Silence, speech, returns (first, last) speech frame indexes."""
    driver.idle(lead_ms)
    frames = driver.stream(SPEECH, speech_ms)
    return frames[0], frames[-1]


def test_reply_starts_latency_after_last_speech_frame_received() -> None:
    d = Driver()
    d.metadata()
    first, last = turn(d)
    d.idle(3000)
    audio = d.times(SendAudio)
    assert audio[0] == d.rx[last] + 800 * MS
    assert audio == [audio[0] + k * FRAME_NS for k in range(50)]  # 1000 ms, real time
    assert [a.frame for _, a in d.sent if isinstance(a, SendAudio)] == list(range(50))
    (record,) = d.records
    assert record.outcome == "answered"
    assert record.kind is TurnKind.REPLY and record.turn_index == 0
    assert record.first_speech_rx_ns == d.rx[first]
    assert record.last_speech_rx_ns == d.rx[last]
    assert record.speech_frames == last - first + 1
    assert record.response_first_tx_ns == audio[0]
    assert record.response_last_tx_ns == audio[-1]
    assert record.response_frames_sent == record.response_frames_planned == 50
    assert record.response_latency_ms == 800.0
    assert record.connection_id == "call-1" and record.correlation_id == "corr-1"
    line = json.loads(record.to_json())
    assert line["kind"] == "reply" and line["response_latency_ms"] == 800.0
    assert d.stats.turns_total == 1 and d.stats.responses_total == 1
    assert d.stats.frames_sent_total == 50 and d.stats.lateness_quantile_s(1.0) == 0.0005


def test_end_of_turn_needs_endpoint_silence() -> None:
    d = Driver(replace(POLICY, endpoint_silence_ms=500, latency=UniformLatency(900, 900)))
    d.metadata()
    _, last = turn(d)
    d.idle(480)  # 24 quiet frames: not yet the end of the turn
    assert d.session.next_deadline_ns() is None
    d.idle(20)
    assert d.session.next_deadline_ns() == d.rx[last] + 900 * MS


@pytest.mark.parametrize("mode", [BargeMode.STOP, BargeMode.LATE])
@pytest.mark.parametrize("min_speech_ms", [60, 180])
def test_barge_in_stops_at_barge_latency(mode: BargeMode, min_speech_ms: int) -> None:
    """Barge-in needs ``barge_min_speech_ms`` of speech: 60 ms is the VAD's onset (decided
    with the speech start), 180 ms is decided frames later, while the speech goes on."""
    policy = replace(
        POLICY,
        response_ms=3000,
        barge_mode=mode,
        barge_latency_ms=200,
        barge_min_speech_ms=min_speech_ms,
    )
    d = Driver(policy)
    d.metadata()
    turn(d)
    d.idle(1300)  # 500 ms endpointing + 800 ms latency: reply playing from here
    assert d.times(SendAudio)
    barge = d.stream(SPEECH, 1500)  # 1.5 s of barge speech
    d.idle(4500)
    (stop,) = d.times(SendStop)
    expected = d.rx[barge[0]] + (200 if mode is BargeMode.STOP else 1200) * MS
    assert stop == expected
    first_reply = [t for t in d.times(SendAudio) if t < stop]
    second_reply = [t for t in d.times(SendAudio) if t > stop]
    assert first_reply[-1] < stop and len(first_reply) < 150
    assert second_reply[0] == d.rx[barge[-1]] + 800 * MS  # the barge speech was a turn
    stopped, answered = d.records
    assert stopped.outcome == "stopped" and stopped.barge_speech_rx_ns == d.rx[barge[0]]
    assert stopped.stop_tx_ns == stop
    assert stopped.barge_detected_ns == d.rx[barge[min_speech_ms // 20 - 1]]
    assert answered.turn_index == 1 and answered.first_speech_rx_ns == d.rx[barge[0]]
    assert d.stats.barge_ins_total == 1 and d.stats.stops_total == 1


def test_barge_in_decided_mid_speech_stops_before_the_next_burst() -> None:
    """Barge-in decided on the 9th speech frame, between two bursts of reply audio: StopAudio
    is due before the next burst, so the edge must be told to re-read the deadline."""
    policy = replace(
        POLICY,
        response_ms=6000,
        pace=Pace.BURST,
        burst_ms=1000,
        barge_latency_ms=180,
        barge_min_speech_ms=180,
    )
    d = Driver(policy)
    d.metadata()
    turn(d)
    d.idle(1300)
    barge = d.stream(SPEECH, 400)
    (stop,) = d.times(SendStop)
    assert stop == d.rx[barge[0]] + 180 * MS


def test_barge_mode_ignore_keeps_talking() -> None:
    d = Driver(replace(POLICY, response_ms=3000, barge_mode=BargeMode.IGNORE))
    d.metadata()
    turn(d)
    d.idle(1300)
    barge = d.stream(SPEECH, 300)
    d.idle(5000)
    assert not d.times(SendStop)
    talk_over = [t for t in d.times(SendAudio) if d.rx[barge[0]] <= t < d.rx[barge[0]] + 1000 * MS]
    assert len(talk_over) == 50  # audio went on through the barge-in
    first, second = d.records  # the barge speech's reply replaced the first one
    assert first.outcome == "superseded" and first.barge_speech_rx_ns == d.rx[barge[0]]
    assert first.stop_tx_ns is None
    assert second.outcome == "answered" and second.response_frames_sent == 150


def test_short_blip_over_reply_is_not_barge_in() -> None:
    d = Driver(replace(POLICY, response_ms=3000, barge_min_speech_ms=200))
    d.metadata()
    turn(d)
    d.idle(1300)
    d.stream(SPEECH, 100)  # 5 frames < 10 frames
    d.idle(3000)
    assert not d.times(SendStop)
    assert [r.outcome for r in d.records] == ["answered"]
    assert d.stats.barge_ins_total == 0


def test_speech_resuming_before_reply_cancels_it() -> None:
    d = Driver()
    d.metadata()
    first, _ = turn(d)
    d.idle(600)  # turn ended (500 ms) but the reply is due at +800 ms
    assert d.session.next_deadline_ns() is not None
    second = d.stream(SPEECH, 400)
    d.idle(2500)
    (record,) = d.records
    assert record.first_speech_rx_ns == d.rx[first]
    assert record.last_speech_rx_ns == d.rx[second[-1]]
    assert d.times(SendAudio)[0] == d.rx[second[-1]] + 800 * MS


def test_burst_pace_sends_chunks_faster_than_real_time() -> None:
    d = Driver(replace(POLICY, pace=Pace.BURST, burst_ms=200, burst_speed=4.0))
    d.metadata()
    _, last = turn(d)
    d.idle(3000)
    audio = d.times(SendAudio)
    start = d.rx[last] + 800 * MS
    assert audio == [start + (k // 10) * 50 * MS for k in range(50)]
    (record,) = d.records
    assert record.outcome == "answered"


def test_greeting_plays_after_metadata() -> None:
    d = Driver(replace(POLICY, greeting_ms=400))
    d.metadata()
    d.idle(1000)
    audio = d.times(SendAudio)
    assert audio[0] == 1_000_000_000 and len(audio) == 20
    (greeting,) = d.records
    assert greeting.kind is TurnKind.GREETING and greeting.turn_index is None


def test_transcript_follows_first_frame() -> None:
    d = Driver(replace(POLICY, transcripts=True, reply_text="hello caller"))
    d.metadata()
    turn(d)
    d.idle(2500)
    kinds = [type(a) for _, a in d.sent]
    index = kinds.index(SendText)
    assert kinds[index - 1] is SendAudio and kinds.count(SendText) == 1
    text = next(a.text for _, a in d.sent if isinstance(a, SendText))
    body = json.loads(text)["transcriptionData"]
    assert body["text"] == "hello caller" and body["resultStatus"] == "Final"
    # the reply's place in the stream: its first frame since AudioMetadata, in 100 ns ticks
    opened_ns = 1_000_000_000  # the metadata was the first message
    first_ns = d.times(SendAudio)[0]
    assert body["offset"] == (first_ns - opened_ns) // 100 and body["duration"] == 1000 * 10_000
    assert [w["text"] for w in body["words"]] == ["hello", "caller"]


def faulty(kind: FaultKind, **kw: int) -> Driver:
    plan = FaultPlan(((kind, 1.0),), stall_ms=kw.get("stall_ms", 2000))
    d = Driver(replace(POLICY, faults=plan))
    d.metadata()
    return d


def test_fault_silent_never_answers() -> None:
    d = faulty(FaultKind.SILENT)
    turn(d)
    d.idle(3000)
    assert not d.times(SendAudio)
    (record,) = d.records
    assert record.outcome == "silent" and record.fault == "silent"
    assert d.stats.faults["silent"] == 1


def test_fault_stall_delays_reply() -> None:
    d = faulty(FaultKind.STALL, stall_ms=700)
    _, last = turn(d)
    d.idle(3500)
    assert d.times(SendAudio)[0] == d.rx[last] + 1500 * MS
    assert d.records[0].stall_ms == 700


@pytest.mark.parametrize(
    ("kind", "action"),
    [(FaultKind.MALFORMED_JSON, SendText), (FaultKind.BINARY_GARBAGE, SendBinary)],
)
def test_fault_garbage_precedes_reply(kind: FaultKind, action: type) -> None:
    d = faulty(kind)
    _, last = turn(d)
    d.idle(3000)
    (garbage_t,) = d.times(action)
    assert garbage_t == d.rx[last] + 800 * MS
    assert d.times(SendAudio)[0] == garbage_t + GARBAGE_LEAD_MS * MS
    garbage = next(a for _, a in d.sent if isinstance(a, action))
    if isinstance(garbage, SendText):
        assert acs.classify(garbage.text).kind.value == "malformed"
    assert d.records[0].fault_tx_ns == garbage_t and d.records[0].outcome == "answered"


@pytest.mark.parametrize(
    ("kind", "outcome"), [(FaultKind.CLOSE_1011, "fault_close"), (FaultKind.RESET, "fault_reset")]
)
def test_fault_close_mid_reply(kind: FaultKind, outcome: str) -> None:
    d = faulty(kind)
    turn(d)
    d.idle(3000)
    assert len(d.times(SendAudio)) == 25  # half of the reply
    last_action = d.sent[-1][1]
    assert last_action == (
        Close(1011, "injected fault: close mid-turn") if kind is FaultKind.CLOSE_1011 else Abort()
    )
    assert d.session.closed and d.session.next_deadline_ns() is None
    assert d.records[0].outcome == outcome


def test_seed_makes_latencies_reproducible() -> None:
    policy = replace(POLICY, latency=UniformLatency(600, 1200), response_ms=200)

    def latencies(seed: int) -> list[float | None]:
        d = Driver(policy, seed=seed)
        d.metadata()
        for _ in range(3):
            turn(d)
            d.idle(1600)
        return [r.latency_ms for r in d.records]

    assert latencies(7) == latencies(7)
    assert latencies(7) != latencies(8)
    assert all(600 <= x <= 1200 for x in latencies(7) if x is not None)


def test_bad_inputs_are_counted_and_the_call_goes_on() -> None:
    d = Driver()
    d.send(SPEECH)  # audio before metadata
    d.metadata()
    for message in [
        "not json",
        b"\x00\x01",
        '{"kind":"Mystery"}',
        '{"kind":"AudioData","audioData":{"data":"!!!!"}}',
        '{"kind":"AudioData","audioData":{"data":"AAAA"}}',
        acs.encode_metadata(16000),
    ]:
        assert d.send(message) == []
    half = acs.encode_frame(_TONE[:320]).render(TS)  # 10 ms frames: wrong size, re-cut
    d.idle(100)
    for _ in range(60):
        d.send(half)
        d.next_frame_ns += FRAME_NS // 2
    d.idle(2500)
    assert d.times(SendAudio)  # speech in 10 ms frames was still heard and answered
    assert dict(d.session.bad_inputs) == {
        "audio_before_metadata": 1,
        "not_json": 1,
        "binary_frame": 1,
        "unknown_kind": 1,
        "invalid_base64": 1,
        "odd_length": 1,
        "duplicate_metadata": 1,
        "wrong_size": 60,
    }
    assert d.stats.bad_inputs == d.session.bad_inputs


@pytest.mark.parametrize(
    "metadata",
    [
        acs.encode_metadata(44100),
        '{"kind":"AudioMetadata","audioMetadata":{"sampleRate":16000,"channels":2}}',
        '{"kind":"AudioMetadata","audioMetadata":{"sampleRate":16000,"encoding":"OPUS"}}',
    ],
)
def test_unsupported_format_closes_with_1003(metadata: str) -> None:
    d = Driver()
    (action,) = d.send(metadata)
    assert isinstance(action, Close) and action.code == 1003
    assert action.reason and len(action.reason.encode()) <= 123
    assert d.session.closed and d.session.bad_inputs["unsupported_format"] == 1


def test_close_finishes_open_turns() -> None:
    d = Driver()
    d.metadata()
    turn(d)
    d.close()
    (record,) = d.records
    assert record.outcome == "incomplete" and record.last_speech_rx_ns is None

    d = Driver()
    d.metadata()
    turn(d)
    d.idle(1400)
    assert d.times(SendAudio)
    d.close()
    assert d.records[0].outcome == "closed"


def test_frames_flagged_silent_are_taken_at_their_word() -> None:
    """ACS flags a listening caller's frames ``silent: true``; the agent does not classify
    them: loud frames flagged silent do not open a turn, and they count as the silence that
    ends one."""
    flagged = acs.encode_frame(_TONE, silent=True).render(TS)
    d = Driver()
    d.metadata()
    d.idle(100)
    d.stream(flagged, 600)
    d.idle(2000)
    assert d.times(SendAudio) == [] and d.records == []
    _, last = turn(d)  # the same audio unflagged is speech
    d.stream(flagged, 1500)
    assert d.times(SendAudio)[0] == d.rx[last] + 800 * MS
