"""Reply audio: tone, duration fitting, pre-encoded frames per rate and protocol."""

from __future__ import annotations

import base64
import json

from loadtest.agent_sim.audio import ReplyAudio, fit_duration, tone_pcm
from loadtest.agent_sim.codecs import AcsCodec, RawCodec, TwilioCodec
from loadtest.audio.pcm import SUPPORTED_RATES, mulaw_decode, rms_dbfs
from loadtest.protocols.acs import Casing


def test_tone() -> None:
    pcm = tone_pcm(16000, 1000)
    assert len(pcm) == 32000
    assert -16.0 < rms_dbfs(pcm) < -14.0  # -12 dBFS peak sine
    assert pcm[:2] == b"\x00\x00"  # faded in


def test_fit_duration() -> None:
    assert fit_duration(b"\x01\x00" * 10, 16000, 1) == b"\x01\x00" * 10 + bytes(12)
    assert len(fit_duration(bytes(64000), 16000, 1000)) == 32000


def test_reply_audio_is_pre_encoded_per_rate() -> None:
    audio = ReplyAudio.build(1000, AcsCodec(Casing.PASCAL))
    assert set(audio.frames) == set(SUPPORTED_RATES)
    for rate, frames in audio.frames.items():
        assert len(frames) == 50
        message = json.loads(frames[10].decode())
        assert message["Kind"] == "AudioData" and message["StopAudio"] is None
        assert len(base64.b64decode(message["AudioData"]["Data"])) == rate // 50 * 2
    assert audio.codec.stop(None) == '{"Kind":"StopAudio","AudioData":null,"StopAudio":{}}'


def test_reply_audio_from_source_called_once() -> None:
    calls: list[int] = []

    def source(rate: int) -> bytes:
        calls.append(rate)
        return b"\x10\x00" * 4000  # 250 ms at 16 kHz, padded to 400 ms

    audio = ReplyAudio.build(400, AcsCodec(Casing.CAMEL), source)
    assert calls == [16000]
    first = json.loads(audio.frames[16000][0])["audioData"]["data"]
    last = json.loads(audio.frames[16000][-1])["audioData"]["data"]
    assert base64.b64decode(first) == b"\x10\x00" * 320
    assert base64.b64decode(last) == bytes(640)


def test_twilio_reply_is_mulaw_at_8k_bound_per_stream() -> None:
    audio = ReplyAudio.build(400, TwilioCodec())
    assert set(audio.frames) == {8000}
    frames = audio.frames[8000]
    assert len(frames) == 20 and all(len(f) == 160 for f in frames)  # 20 ms of µ-law
    assert -16.5 < rms_dbfs(mulaw_decode(b"".join(frames[2:-2]))) < -14.0  # the tone survives
    bound = audio.codec.bind_audio(frames, "MZ1")
    message = json.loads(bound[3])
    assert message == {
        "event": "media",
        "streamSid": "MZ1",
        "media": {"payload": base64.b64encode(frames[3]).decode()},
    }
    assert audio.codec.stop("MZ1") == '{"event":"clear","streamSid":"MZ1"}'


def test_raw_reply_is_pcm_at_the_configured_rate() -> None:
    audio = ReplyAudio.build(400, RawCodec(24000, '{"type":"interrupt"}'))
    assert set(audio.frames) == {24000}
    assert all(len(f) == 960 for f in audio.frames[24000])
    assert audio.codec.bind_audio(audio.frames[24000], None) is audio.frames[24000]
    assert audio.codec.stop(None) == '{"type":"interrupt"}'
