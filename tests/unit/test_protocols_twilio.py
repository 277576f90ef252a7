"""Golden wire tests of Twilio Media Streams, both sides (µ-law 8 kHz, JSON text frames)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pytest

from loadtest.audio.pcm import comfort_noise_frames, mulaw_decode, mulaw_encode, resample
from loadtest.errors import ProtocolError
from loadtest.protocols import caller_protocol, twilio
from loadtest.protocols.base import (
    CallerAudio,
    CallerDtmf,
    CallerMetadata,
    CallerOther,
    Inbound,
    InboundKind,
)
from loadtest.protocols.caller_api import CallStream
from loadtest.settings import parse_settings

STREAM = "MZ" + "18ad3ab5a668481ce02b83e7395059f0"
CALL = "CA" + "4f3e2d1c0b0a99887766554433221100"
CALL_STREAM = "MZ" + "4f3e2d1c0b0a99887766554433221100"  # Call()'s stream: its id's digits
ACCOUNT = "AC" + "0" * 32
ULAW = bytes(range(96, 256))  # 160 bytes: 20 ms at 8 kHz
B64 = base64.b64encode(ULAW).decode()


def compact(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"))


@dataclass
class Call:
    call_id: str = "4f3e2d1c-0b0a-9988-7766-554433221100"
    sample_rate: int = 16000
    frame_ms: int = 20


# ----------------------------------------------------------------------------- caller side


def test_connected_golden() -> None:
    assert twilio.encode_connected() == compact(
        {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    )


def test_start_golden() -> None:
    message = twilio.encode_start(STREAM, CALL, ACCOUNT, {"tenant": "acme", "from": "+1555"})
    assert message == compact(
        {
            "event": "start",
            "sequenceNumber": "1",
            "start": {
                "accountSid": ACCOUNT,
                "streamSid": STREAM,
                "callSid": CALL,
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": {"tenant": "acme", "from": "+1555"},
            },
            "streamSid": STREAM,
        }
    )


@pytest.mark.parametrize(("seq", "media_ms"), [(1, 0), (2, 20), (150, 2980)])
def test_pre_encoded_media_golden(seq: int, media_ms: int) -> None:
    frame = twilio.encode_media(ULAW)
    expected = compact(
        {
            "event": "media",
            "sequenceNumber": str(seq + 1),  # start was "1"
            "media": {
                "track": "inbound",
                "chunk": str(seq),
                "timestamp": str(media_ms),
                "payload": B64,
            },
            "streamSid": STREAM,
        }
    )
    assert frame.render(seq, media_ms, 1_731_698_172_925_000_000, CallStream(STREAM)) == expected


def test_stop_dtmf_and_mark_golden() -> None:
    assert twilio.encode_stop(52, STREAM, CALL, ACCOUNT) == compact(
        {
            "event": "stop",
            "sequenceNumber": "52",
            "stop": {"accountSid": ACCOUNT, "callSid": CALL},
            "streamSid": STREAM,
        }
    )
    assert twilio.encode_dtmf("7", 9, STREAM) == compact(
        {
            "event": "dtmf",
            "streamSid": STREAM,
            "sequenceNumber": "9",
            "dtmf": {"track": "inbound_track", "digit": "7"},
        }
    )
    assert twilio.encode_mark("reply-1", 10, STREAM) == compact(
        {"event": "mark", "sequenceNumber": "10", "streamSid": STREAM, "mark": {"name": "reply-1"}}
    )


def test_sids() -> None:
    assert twilio.sid("CA", "4f3e2d1c-0b0a-9988-7766-554433221100") == CALL
    hashed = twilio.sid("CA", "conn-7")
    assert hashed.startswith("CA") and len(hashed) == 34 and hashed == twilio.sid("CA", "conn-7")
    assert int(hashed[2:], 16) >= 0


def test_caller_opens_streams_and_closes() -> None:
    caller = twilio.TwilioCaller(custom_parameters={"tenant": "acme"})
    assert caller.name == "twilio" and caller.agent_sample_rate(16000) == 8000
    assert caller.stream_id(Call()) == CALL_STREAM
    assert caller.open_messages(Call(), CallStream(CALL_STREAM)) == [
        twilio.encode_connected(),
        twilio.encode_start(CALL_STREAM, CALL, ACCOUNT, {"tenant": "acme"}),
    ]
    # 40 media events: sequence numbers 2..41, so stop is 42
    stop = twilio.encode_stop(42, CALL_STREAM, CALL, ACCOUNT)
    assert caller.close_messages(Call(), 40, CallStream(CALL_STREAM)) == [stop]


def test_every_call_streams_under_its_own_stream_sid() -> None:
    """Twilio gives each stream a unique SID; the harness must too, or an agent that keys
    state by ``streamSid`` mixes up concurrent calls. Frames are shared between calls and take
    the call's SID when rendered."""
    caller = twilio.TwilioCaller()
    frame = caller.encode_clip(bytes(320), 8000, 20)[0]
    calls = [Call(call_id=f"call-{n}") for n in range(3)]
    sids = [caller.stream_id(call) for call in calls]
    assert len(set(sids)) == 3 and all(s.startswith("MZ") and len(s) == 34 for s in sids)
    for call, sid in zip(calls, sids, strict=True):
        start = json.loads(caller.open_messages(call, CallStream(sid))[1])
        media = json.loads(frame.render(1, 0, 0, CallStream(sid)))
        stop = json.loads(caller.close_messages(call, 1, CallStream(sid))[0])
        assert start["streamSid"] == start["start"]["streamSid"] == sid
        assert media["streamSid"] == stop["streamSid"] == sid


def test_mark_echoes_take_their_place_in_the_sequence_numbers() -> None:
    """Every message after ``start`` takes the next sequenceNumber, echoes included; media
    chunks count media only."""
    caller, stream = twilio.TwilioCaller(), CallStream(CALL_STREAM)
    frame = caller.encode_clip(bytes(320), 8000, 20)[0]
    assert caller.echoes_marks
    first = json.loads(frame.render(1, 0, 0, stream))
    echo = caller.mark_echo("reply-1", 1, stream)
    assert echo == twilio.encode_mark("reply-1", 3, CALL_STREAM)
    stream.echoes += 1  # the edge counts what it sent
    second = json.loads(frame.render(2, 20, 0, stream))
    (stop,) = caller.close_messages(Call(), 2, stream)
    numbers = [first["sequenceNumber"], json.loads(echo)["sequenceNumber"],
               second["sequenceNumber"], json.loads(stop)["sequenceNumber"]]  # fmt: skip
    assert numbers == ["2", "3", "4", "5"]
    assert (first["media"]["chunk"], second["media"]["chunk"]) == ("1", "2")
    assert json.loads(echo) == {
        "event": "mark", "sequenceNumber": "3", "streamSid": CALL_STREAM,
        "mark": {"name": "reply-1"},
    }  # fmt: skip


def test_clip_is_converted_once_to_mulaw_8k() -> None:
    caller, stream = twilio.TwilioCaller(), CallStream(STREAM)
    t = np.arange(16000 * 110 // 1000) / 16000  # 110 ms at 16 kHz: 6 frames, the last padded
    pcm16k = (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes()
    frames = caller.encode_clip(pcm16k, 16000, 20)
    assert len(frames) == 6  # as many as the 16 kHz clip has, so the manifest's frames line up
    payloads = [
        base64.b64decode(json.loads(f.render(k + 1, 20 * k, 0, stream))["media"]["payload"])
        for k, f in enumerate(frames)
    ]
    assert all(len(p) == 160 for p in payloads)
    expected = mulaw_encode(resample(pcm16k, 16000, 8000)) + b"\xff" * 80  # padding: silence
    assert b"".join(payloads) == expected
    ten_ms = caller.encode_clip(pcm16k, 16000, 10)
    assert len(ten_ms) == 11
    assert len(json.loads(ten_ms[0].render(1, 0, 0, stream))["media"]["payload"]) == 108


def test_silence_frames() -> None:
    caller, stream = twilio.TwilioCaller(), CallStream(STREAM)
    zeros = caller.encode_silence([bytes(640)], 16000, flagged=True)  # no silent flag in Twilio
    (message,) = [json.loads(f.render(1, 0, 0, stream)) for f in zeros]
    assert base64.b64decode(message["media"]["payload"]) == b"\xff" * 160  # exact µ-law zero
    noise = caller.encode_silence(comfort_noise_frames(16000, 20, 50), 16000, flagged=False)
    assert len(noise) == 50
    payload = base64.b64decode(json.loads(noise[7].render(8, 140, 0, stream))["media"]["payload"])
    assert len(payload) == 160 and payload != b"\xff" * 160


def test_registry_takes_the_custom_parameters() -> None:
    settings = parse_settings(
        {"WS_PROTOCOL": "twilio", "TWILIO_CUSTOM_PARAMETERS": '{"tenant":"acme","n":3}'}
    )
    caller = caller_protocol(settings.ws_protocol, settings)
    assert isinstance(caller, twilio.TwilioCaller)
    start = json.loads(caller.open_messages(Call(), CallStream(CALL_STREAM))[1])
    assert start["start"]["customParameters"] == {"tenant": "acme", "n": "3"}
    pairs = parse_settings({"TWILIO_CUSTOM_PARAMETERS": "a=1, b = two"})
    assert pairs.twilio_custom_parameters == (("a", "1"), ("b", "two"))


# ----------------------------------------------------------------------------- classify


def test_classify_agent_media_counts_pcm16_bytes() -> None:
    message = twilio.encode_agent_media(ULAW, STREAM)
    assert twilio.classify(message) == Inbound(InboundKind.AUDIO, audio_bytes=320)
    with_extras = compact(
        {"event": "media", "sequenceNumber": "4", "media": {"payload": B64, "track": "outbound"}}
    )
    assert twilio.classify(with_extras).audio_bytes == 320
    assert twilio.classify(compact({"Event": "Media", "media": {"payload": "AAAA"}})) == (
        Inbound(InboundKind.AUDIO, audio_bytes=6)
    )


def test_classify_clear_is_the_stop_signal() -> None:
    assert twilio.classify(twilio.encode_clear(STREAM)) == Inbound(InboundKind.STOP)
    assert twilio.classify('{"event":"CLEAR"}').kind is InboundKind.STOP


def test_classify_mark_and_tokens() -> None:
    mark = twilio.encode_agent_mark("goodbye-and-thanks", STREAM)
    name = "goodbye-and-thanks"  # every mark is echoed, whatever its text matched
    assert twilio.classify(mark) == Inbound(InboundKind.OTHER, mark=name)
    assert twilio.classify(mark, end_tokens=("goodbye",)) == Inbound(
        InboundKind.END, detail="goodbye-and-thanks", mark=name
    )
    assert twilio.classify(mark, response_tokens=("thanks",)) == Inbound(
        InboundKind.TRANSCRIPT, detail="goodbye-and-thanks", mark=name
    )
    assert twilio.classify('{"event":"hangup"}', end_tokens=("hangup",)).kind is InboundKind.END


def test_tokens_never_match_the_payload() -> None:
    token = B64[20:28]
    other = compact({"event": "custom", "custom": {"payload": B64}})
    assert twilio.classify(other, (token,), (token,)).kind is InboundKind.OTHER
    media = twilio.encode_agent_media(ULAW, STREAM)
    assert twilio.classify(media, (token,), (token,)).kind is InboundKind.AUDIO


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (b"\x00\x01\x02", "binary frame of 3 bytes"),
        ('{"event":"media","media":{"payload":"AAAA', "invalid JSON"),
        ("[1]", "JSON is not an object"),
        ('{"streamSid":"MZ1"}', "missing event"),
        ('{"event":3}', "event is not a string"),
        ('{"event":"media"}', "media event without a media object"),
        ('{"event":"media","media":{}}', "media event without a base64 payload"),
        ('{"event":"media","media":{"payload":"AAAAA"}}', "media payload is not padded base64"),
        ('{"event":"mark","streamSid":"MZ1"}', "mark event without a name"),
        ('{"event":"mark","mark":{"name":""}}', "mark event without a name"),
        ('{"event":"mark","mark":{"name":7}}', "mark event without a name"),
    ],
)
def test_classify_malformed(message: str | bytes, reason: str) -> None:
    assert twilio.classify(message) == Inbound(InboundKind.MALFORMED, detail=reason)


# ----------------------------------------------------------------------------- agent side


def test_parse_connected_start_media_dtmf_mark_stop() -> None:
    caller = twilio.TwilioCaller(custom_parameters={"tenant": "acme"})
    connected, start = caller.open_messages(Call(), CallStream(CALL_STREAM))
    assert twilio.parse_caller(connected) == CallerOther("connected")
    parsed = twilio.parse_caller(start)
    assert parsed == twilio.TwilioStart(
        stream_sid=CALL_STREAM,
        call_sid=CALL,
        account_sid=ACCOUNT,
        tracks=("inbound",),
        custom_parameters=(("tenant", "acme"),),
    )
    assert isinstance(parsed, twilio.TwilioStart)
    assert parsed.metadata == CallerMetadata(8000, 1, 20, "audio/x-mulaw")
    media = twilio.encode_media(ULAW).render(3, 40, 0, CallStream(CALL_STREAM))
    assert twilio.parse_caller(media) == CallerAudio(
        pcm=mulaw_decode(ULAW), timestamp="40", participant="inbound"
    )
    assert twilio.parse_caller(twilio.encode_dtmf("#", 5, STREAM)) == CallerDtmf("#")
    assert twilio.parse_caller(twilio.encode_mark("m1", 6, STREAM)) == CallerOther("mark")
    (stop,) = caller.close_messages(Call(), 3, CallStream(CALL_STREAM))
    assert twilio.parse_caller(stop) == CallerOther("stop")


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (b"\x00\x01", "binary_frame"),
        ("hello", "not_json"),
        ("[]", "not_json"),
        ('{"streamSid":"MZ1"}', "missing_event"),
        ('{"event":"media"}', "missing_field"),
        ('{"event":"media","media":{}}', "missing_field"),
        ('{"event":"media","media":{"payload":"!!!!"}}', "invalid_base64"),
        ('{"event":"media","media":{"payload":""}}', "empty_audio"),
        ('{"event":"start","start":{"mediaFormat":{}}}', "missing_field"),
        ('{"event":"start","start":{"streamSid":"MZ1"}}', "missing_field"),
        (
            '{"event":"start","start":{"streamSid":"MZ1","mediaFormat":{"encoding":"audio/x-mulaw",'
            '"sampleRate":"8000"}}}',
            "bad_value",
        ),
        ('{"event":"dtmf","dtmf":{}}', "missing_field"),
    ],
)
def test_parse_caller_rejects(message: str | bytes, reason: str) -> None:
    with pytest.raises(ProtocolError) as info:
        twilio.parse_caller(message)
    assert isinstance(info.value, twilio.TwilioProtocolError)
    assert info.value.reason == reason and str(info.value)


def test_agent_messages_golden() -> None:
    assert twilio.encode_agent_media(ULAW, STREAM) == compact(
        {"event": "media", "streamSid": STREAM, "media": {"payload": B64}}
    )
    assert twilio.encode_clear(STREAM) == compact({"event": "clear", "streamSid": STREAM})
    assert twilio.encode_agent_mark("reply-0", STREAM) == compact(
        {"event": "mark", "streamSid": STREAM, "mark": {"name": "reply-0"}}
    )


def test_core_imports_without_gevent() -> None:
    code = (
        "import sys, loadtest.protocols.twilio, loadtest.agent_sim.codecs; "
        "assert 'gevent' not in sys.modules and 'websockets' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
