"""Reply audio: tone, duration fitting, pre-encoded frames per rate."""

from __future__ import annotations

import base64
import json

from loadtest.agent_sim.audio import ReplyAudio, fit_duration, tone_pcm
from loadtest.audio.pcm import SUPPORTED_RATES, rms_dbfs
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
    audio = ReplyAudio.build(1000, Casing.PASCAL)
    assert set(audio.frames) == set(SUPPORTED_RATES)
    for rate, frames in audio.frames.items():
        assert len(frames) == 50
        message = json.loads(frames[10].decode())
        assert message["Kind"] == "AudioData" and message["StopAudio"] is None
        assert len(base64.b64decode(message["AudioData"]["Data"])) == rate // 50 * 2
    assert audio.stop == b'{"Kind":"StopAudio","AudioData":null,"StopAudio":{}}'


def test_reply_audio_from_source_called_once() -> None:
    calls: list[int] = []

    def source(rate: int) -> bytes:
        calls.append(rate)
        return b"\x10\x00" * 4000  # 250 ms at 16 kHz, padded to 400 ms

    audio = ReplyAudio.build(400, Casing.CAMEL, source)
    assert calls == [16000]
    first = json.loads(audio.frames[16000][0])["audioData"]["data"]
    last = json.loads(audio.frames[16000][-1])["audioData"]["data"]
    assert base64.b64decode(first) == b"\x10\x00" * 320
    assert base64.b64decode(last) == bytes(640)
