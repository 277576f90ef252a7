"""The simulator in each wire protocol: the same session driven through the Twilio and raw
codecs with a fake clock, and the per-call framing of the server (no sockets)."""

from __future__ import annotations

import json
import random
from dataclasses import replace

import pytest

from loadtest.agent_sim.actions import Close, SendAudio, SendBinary, SendStop, SendText
from loadtest.agent_sim.audio import ReplyAudio, tone_pcm
from loadtest.agent_sim.codecs import AcsCodec, RawCodec, RepeatDecoder, TwilioCodec, make_codec
from loadtest.agent_sim.config import AgentSettings, FaultKind, FaultPlan, ReplyPolicy
from loadtest.agent_sim.server import AgentServer
from loadtest.agent_sim.session import AgentSession
from loadtest.agent_sim.stats import AgentStats
from loadtest.audio.pcm import comfort_noise_frames, mulaw_encode, split_frames
from loadtest.errors import ConfigError
from loadtest.protocols import acs, raw, twilio
from loadtest.protocols.base import CallerAudio, InboundKind
from loadtest.protocols.caller_api import CallStream
from tests.unit.test_agent_sim_session import Driver

MS = 1_000_000
POLICY = ReplyPolicy(response_ms=1000)


class Call:
    call_id = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    sample_rate = 16000
    frame_ms = 20


TWILIO = twilio.TwilioCaller()
STREAM = TWILIO.stream_id(Call())
CONNECTED, START = TWILIO.open_messages(Call(), CallStream(STREAM))
_TONE_8K = split_frames(tone_pcm(8000, 2000), 8000, 20)[10]
TW_SPEECH = twilio.encode_media(mulaw_encode(_TONE_8K)).render(1, 0, 0, CallStream(STREAM))
TW_SILENCE = twilio.encode_media(mulaw_encode(comfort_noise_frames(8000, 20, 1)[0])).render(
    1, 0, 0, CallStream(STREAM)
)
RAW_SPEECH = split_frames(tone_pcm(16000, 2000), 16000, 20)[10]
RAW_SILENCE = comfort_noise_frames(16000, 20, 1)[0]


class CodecDriver(Driver):
    def __init__(self, codec: TwilioCodec | RawCodec, policy: ReplyPolicy = POLICY) -> None:
        super().__init__(policy)
        self.stats = AgentStats()
        self.session = AgentSession("call-1", policy, random.Random(1), self.stats, codec=codec)
        self.silence = TW_SILENCE if isinstance(codec, TwilioCodec) else RAW_SILENCE

    def idle(self, duration_ms: int) -> None:
        self.stream(self.silence, duration_ms)


def twilio_call(policy: ReplyPolicy = POLICY) -> CodecDriver:
    d = CodecDriver(TwilioCodec(), policy)
    assert d.send(CONNECTED) == [] and d.send(START) == []
    return d


def test_twilio_start_opens_the_stream_and_mulaw_speech_is_answered() -> None:
    d = twilio_call()
    assert d.session.sample_rate == 8000 and d.session.stream_id == STREAM
    d.idle(100)
    speech = d.stream(TW_SPEECH, 600)
    d.idle(3000)
    audio = d.times(SendAudio)
    assert audio[0] == d.rx[speech[-1]] + 800 * MS and len(audio) == 50
    (record,) = d.records
    assert record.outcome == "answered" and record.speech_frames == len(speech)
    assert d.session.bad_inputs == {}
    assert d.stats.inbound_messages == {"connected": 1, "start": 1, "media": 185}


def test_twilio_barge_in_sends_the_stop_action() -> None:
    d = twilio_call(replace(POLICY, response_ms=3000, barge_latency_ms=200))
    d.idle(100)
    d.stream(TW_SPEECH, 600)
    d.idle(1300)
    barge = d.stream(TW_SPEECH, 600)
    d.idle(2000)
    (stop,) = d.times(SendStop)
    assert stop == d.rx[barge[0]] + 200 * MS


def test_twilio_greeting_transcript_and_other_events() -> None:
    policy = replace(POLICY, greeting_ms=400, transcripts=True, reply_text="hello caller")
    d = CodecDriver(TwilioCodec(), policy)
    d.send(CONNECTED)
    start_t = d.t
    d.send(START)
    for message in (
        twilio.encode_mark("m1", 3, STREAM),
        twilio.encode_dtmf("5", 4, STREAM),
        '{"event":"mystery"}',
        "not json",
    ):
        d.send(message)
    d.idle(600)
    assert d.times(SendAudio)[0] == start_t  # the greeting starts with the stream
    (text,) = [a.text for _, a in d.sent if isinstance(a, SendText)]
    assert json.loads(text) == {
        "event": "mark",
        "streamSid": STREAM,
        "mark": {"name": "hello caller"},
    }
    assert dict(d.session.bad_inputs) == {"unknown_kind": 1, "not_json": 1}
    assert d.stats.inbound_messages["mark"] == 1 and d.stats.inbound_messages["dtmf"] == 1


def test_twilio_media_before_start_and_bad_format() -> None:
    d = CodecDriver(TwilioCodec())
    d.send(TW_SPEECH)
    assert d.session.bad_inputs == {"audio_before_metadata": 1}
    wideband = START.replace('"sampleRate":8000', '"sampleRate":16000')
    (action,) = d.send(wideband)
    assert isinstance(action, Close) and action.code == 1003 and "8000" in action.reason
    d = CodecDriver(TwilioCodec())
    (action,) = d.send(START.replace("audio/x-mulaw", "audio/l16"))
    assert isinstance(action, Close) and "audio/x-mulaw mono only" in action.reason


def test_twilio_malformed_fault_names_the_stream() -> None:
    d = twilio_call(replace(POLICY, faults=FaultPlan(((FaultKind.MALFORMED_JSON, 1.0),))))
    d.idle(100)
    d.stream(TW_SPEECH, 600)
    d.idle(2000)
    (text,) = [a.text for _, a in d.sent if isinstance(a, SendText)]
    assert STREAM in text
    assert twilio.classify(text).kind is InboundKind.MALFORMED


def test_raw_stream_opens_at_start_without_a_handshake() -> None:
    d = CodecDriver(RawCodec(), replace(POLICY, greeting_ms=200))
    assert d.session.sample_rate is None
    assert d.session.start(d.t) == []
    assert d.session.sample_rate == 16000 and d.session.stream_id is None
    d.idle(300)
    assert len(d.times(SendAudio)) == 10  # the greeting played from the connection on
    speech = d.stream(RAW_SPEECH, 600)
    d.send('{"type":"config"}')
    d.idle(3000)
    replies = [t for t in d.times(SendAudio) if t > d.rx[speech[-1]]]
    assert replies[0] == d.rx[speech[-1]] + 800 * MS
    assert d.session.bad_inputs == {}
    assert d.stats.inbound_messages["text"] == 1


def test_raw_without_start_opens_on_the_first_frame_and_counts_bad_frames() -> None:
    d = CodecDriver(RawCodec())
    d.send(b"")
    d.send(b"\x00" * 7)
    d.idle(100)
    speech = d.stream(RAW_SPEECH, 600)
    d.idle(2000)
    assert d.times(SendAudio)[0] == d.rx[speech[-1]] + 800 * MS
    assert dict(d.session.bad_inputs) == {"empty_audio": 1, "odd_length": 1}


def test_raw_frames_of_any_size_are_heard() -> None:
    d = CodecDriver(RawCodec())
    d.session.start(d.t)
    d.idle(100)
    for _ in range(60):  # 10 ms frames: raw declares no frame size, so not "wrong_size"
        d.send(RAW_SPEECH[:320])
        d.next_frame_ns += 10 * MS
    d.idle(2000)
    assert d.times(SendAudio) and d.session.bad_inputs == {}


def test_raw_garbage_fault_is_odd_binary() -> None:
    d = CodecDriver(
        RawCodec(), replace(POLICY, faults=FaultPlan(((FaultKind.BINARY_GARBAGE, 1.0),)))
    )
    d.session.start(d.t)
    d.idle(100)
    d.stream(RAW_SPEECH, 600)
    d.idle(2000)
    (garbage,) = [a.data for _, a in d.sent if isinstance(a, SendBinary)]
    assert raw.classify(garbage, raw.StopMatcher.parse(raw.DEFAULT_STOP_MESSAGE)).kind is (
        InboundKind.MALFORMED
    )


def test_make_codec() -> None:
    assert isinstance(make_codec("acs"), AcsCodec)
    assert isinstance(make_codec("twilio"), TwilioCodec)
    codec = make_codec("raw", raw_sample_rate=8000, raw_stop_message=" STOP ")
    assert isinstance(codec, RawCodec) and codec.reply_rates == (8000,)
    assert codec.stop(None) == "STOP"
    with pytest.raises(ConfigError, match="--protocol 'sip' is not supported"):
        make_codec("sip")
    with pytest.raises(ConfigError, match="--raw-sample-rate"):
        make_codec("raw", raw_sample_rate=44100)
    with pytest.raises(ConfigError, match="--raw-stop-message is empty"):
        AgentSettings(protocol="raw", raw_stop_message=" ")


def _session(server: AgentServer, opening: str | None) -> AgentSession:
    session = AgentSession("c", POLICY, random.Random(1), AgentStats(), codec=server.codec)
    session.start(0)
    if opening is not None:
        session.receive(opening, 0)
    return session


def test_server_frames_twilio_replies_per_stream() -> None:
    settings = AgentSettings(protocol="twilio")
    server = AgentServer(settings, ReplyAudio.build(400, settings.make_codec()))
    frames, stop = server.call_wire(_session(server, START))
    assert len(frames) == 20
    assert frames[0][:2] == b"\x81\x7e"  # FIN + text, 16-bit length (> 125 bytes)
    body = json.loads(frames[0][4:])
    assert body["event"] == "media" and body["streamSid"] == STREAM
    assert stop == b"\x81" + bytes([len(twilio.encode_clear(STREAM))]) + (
        twilio.encode_clear(STREAM).encode()
    )
    other = START.replace(STREAM, "MZ" + "cd" * 16)
    assert json.loads(server.call_wire(_session(server, other))[0][0][4:])["streamSid"] != STREAM


def test_server_frames_raw_replies_once_as_binary() -> None:
    settings = AgentSettings(protocol="raw", raw_sample_rate=8000, raw_stop_message="STOP")
    server = AgentServer(settings, ReplyAudio.build(400, settings.make_codec()))
    frames, stop = server.call_wire(_session(server, None))
    assert frames is server.wire_frames[8000] and len(frames) == 20
    assert frames[0][:4] == b"\x82\x7e\x01\x40"  # FIN + binary, 320 bytes
    assert stop == b"\x81\x04STOP"


def test_repeat_decoder_remembers_valid_base64_within_its_limit() -> None:
    decode = RepeatDecoder(limit=2)
    first = decode("AAEC")
    assert first == b"\x00\x01\x02" and decode("AAEC") is first  # the remembered bytes
    assert decode("AAED") == b"\x00\x01\x03"
    assert decode("AAEE") == b"\x00\x01\x04"  # over the limit: forgotten, still right
    with pytest.raises(ValueError):
        decode("!!!!")
    with pytest.raises(ValueError):
        decode("!!!!")  # errors are never remembered


def test_acs_codec_decodes_repeated_frames_once() -> None:
    frame = acs.encode_frame(bytes(range(256)) * 2 + bytes(128)).render("2024-01-01T00:00:00Z")
    codec = AcsCodec()
    first = codec.parse(frame)
    again = codec.parse(frame)
    assert isinstance(first, CallerAudio) and isinstance(again, CallerAudio)
    assert again.pcm is first.pcm and first.pcm == bytes(range(256)) * 2 + bytes(128)
