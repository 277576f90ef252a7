"""Golden wire tests of the ACS media-streaming protocol, both sides."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import pytest

from loadtest.errors import ProtocolError
from loadtest.protocols import acs
from loadtest.protocols.acs import agent as acs_agent
from loadtest.protocols.acs import caller as acs_caller
from loadtest.protocols.base import (
    CallerAudio,
    CallerDtmf,
    CallerMetadata,
    CallerOther,
    Inbound,
    InboundKind,
)

PCM = bytes(range(256)) * 2 + bytes(128)  # 640 bytes: 20 ms at 16 kHz
B64 = base64.b64encode(PCM).decode()
TS = "2024-11-15T19:16:12.925Z"


def compact(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"))


# ----------------------------------------------------------------------------- caller side


@pytest.mark.parametrize(("rate", "length"), [(16000, 640), (24000, 960), (8000, 320)])
def test_metadata_golden(rate: int, length: int) -> None:
    message = acs.encode_metadata(rate, subscription_id="sub-1")
    assert message == compact(
        {
            "kind": "AudioMetadata",
            "audioMetadata": {
                "subscriptionId": "sub-1",
                "encoding": "PCM",
                "sampleRate": rate,
                "channels": 1,
                "length": length,
            },
        }
    )


def test_pre_encoded_frame_golden() -> None:
    frame = acs.encode_frame(PCM, participant_raw_id="8:acs:caller-1")
    expected = compact(
        {
            "kind": "AudioData",
            "audioData": {
                "timestamp": TS,
                "participantRawID": "8:acs:caller-1",
                "data": B64,
                "silent": False,
            },
        }
    )
    assert frame.render(TS) == expected
    assert frame.render_utf8(TS) == expected.encode()
    assert frame.prefix + TS + frame.suffix == expected


def test_silent_frame_and_escaped_participant() -> None:
    message = acs.encode_audio_data(PCM, TS, participant_raw_id='a"b', silent=True)
    body = json.loads(message)["audioData"]
    assert body["silent"] is True
    assert body["participantRawID"] == 'a"b'


def test_dtmf_golden() -> None:
    assert acs.encode_dtmf("5") == '{"kind":"DtmfData","dtmfData":{"data":"5"}}'


@pytest.mark.parametrize(
    ("epoch_ns", "expected"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (1_731_698_172_925_000_000, "2024-11-15T19:16:12.925Z"),
        (1_731_698_172_925_999_999, "2024-11-15T19:16:12.925Z"),
        (1_731_698_173_001_000_000, "2024-11-15T19:16:13.001Z"),
        (1_709_251_199_999_000_000, "2024-02-29T23:59:59.999Z"),
    ],
)
def test_iso_timestamp(epoch_ns: int, expected: str) -> None:
    assert acs.iso_timestamp(epoch_ns) == expected
    assert acs.iso_timestamp(epoch_ns) == expected  # second call hits the per-second cache


# ----------------------------------------------------------------------------- classify


@pytest.mark.parametrize(
    "message",
    [
        compact({"kind": "AudioData", "audioData": {"data": B64}}),
        compact({"Kind": "AudioData", "AudioData": {"Data": B64}, "StopAudio": None}),
        compact({"KIND": "audiodata", "AUDIODATA": {"DATA": B64}}),
        compact({"kind": "AudioData", "audioData": {"data": B64}, "stopAudio": None}),
    ],
)
def test_classify_audio_any_casing(message: str) -> None:
    assert acs.classify(message) == Inbound(InboundKind.AUDIO, audio_bytes=640)


@pytest.mark.parametrize("size", range(1, 13))
def test_audio_bytes_from_base64_length(size: int) -> None:
    message = acs.encode_agent_audio(bytes(range(size)))
    assert acs.classify(message).audio_bytes == size


@pytest.mark.parametrize(
    "message",
    [
        '{"kind":"StopAudio","stopAudio":{}}',
        '{"Kind":"StopAudio","AudioData":null,"StopAudio":{}}',
        '{"kind":"StopAudio","audioData":null,"stopAudio":{}}',
        '{"kind":"stopaudio"}',
    ],
)
def test_classify_stop(message: str) -> None:
    assert acs.classify(message).kind is InboundKind.STOP


def test_transcript_and_end_tokens() -> None:
    transcript = compact(
        {"kind": "TranscriptionData", "transcriptionData": {"text": "Sure, I can HELP you"}}
    )
    assert acs.classify(transcript) == Inbound(InboundKind.OTHER)
    matched = acs.classify(transcript, response_tokens=("help",))
    assert matched == Inbound(InboundKind.TRANSCRIPT, detail="Sure, I can HELP you")
    ended = acs.classify(transcript, response_tokens=("help",), end_tokens=("sure",))
    assert ended.kind is InboundKind.END  # END wins over TRANSCRIPT
    by_kind = acs.classify('{"kind":"CallEnded"}', end_tokens=("callended",))
    assert by_kind == Inbound(InboundKind.END, detail="CallEnded")
    nested = compact({"Kind": "Event", "Event": {"items": [{"label": "goodbye now"}]}})
    assert acs.classify(nested, end_tokens=("GOODBYE",)).kind is InboundKind.END


def test_tokens_never_match_base64_payload() -> None:
    token = B64[40:48]
    audio = compact({"kind": "AudioData", "audioData": {"data": B64}})
    assert acs.classify(audio, response_tokens=(token,), end_tokens=(token,)).kind is (
        InboundKind.AUDIO
    )
    other = compact({"kind": "Custom", "custom": {"data": B64}})
    assert acs.classify(other, response_tokens=(token,), end_tokens=(token,)).kind is (
        InboundKind.OTHER
    )


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (b"\x00\x01\x02", "binary frame of 3 bytes"),
        ("{not json", "invalid JSON"),
        ("[1, 2]", "JSON is not an object"),
        ('{"audioData": {}}', "missing kind"),
        ('{"kind": 7}', "kind is not a string"),
        ('{"kind":"AudioData"}', "AudioData without an audioData object"),
        ('{"kind":"AudioData","audioData":null}', "AudioData without an audioData object"),
        ('{"kind":"AudioData","audioData":{}}', "AudioData without base64 data"),
        ('{"kind":"AudioData","audioData":{"data":""}}', "AudioData without base64 data"),
        (
            '{"kind":"AudioData","audioData":{"data":"AAAAA"}}',
            "AudioData data is not padded base64",
        ),
        ("[" * 100_000 + "]" * 100_000, "invalid JSON"),
    ],
)
def test_classify_malformed(message: str | bytes, reason: str) -> None:
    assert acs.classify(message) == Inbound(InboundKind.MALFORMED, detail=reason)


def test_unknown_kind_is_other() -> None:
    assert acs.classify('{"kind":"TranscriptionMetadata","x":{}}').kind is InboundKind.OTHER


# ----------------------------------------------------------------------------- agent side


def test_parse_metadata_both_casings() -> None:
    assert acs.parse_caller(acs.encode_metadata(24000)) == CallerMetadata(24000, 1, 20, "PCM")
    pascal = compact(
        {
            "Kind": "AudioMetadata",
            "AudioMetadata": {"SampleRate": 16000, "Channels": "mono", "Length": 320},
        }
    )
    assert acs.parse_caller(pascal) == CallerMetadata(16000, 1, 10, "PCM")


def test_parse_audio_decodes() -> None:
    parsed = acs.parse_caller(acs.encode_audio_data(PCM, TS, participant_raw_id="p", silent=True))
    assert parsed == CallerAudio(pcm=PCM, silent=True, timestamp=TS, participant="p")
    pascal = compact({"Kind": "AudioData", "AudioData": {"Data": B64, "IsSilent": False}})
    assert acs.parse_caller(pascal) == CallerAudio(pcm=PCM)


OTHER_B64 = base64.b64encode(bytes(640)).decode()
DOC_HEAD = '{"kind":"AudioData","audioData":{"timestamp":"'
AUDIO_SHAPES = [
    acs.encode_audio_data(PCM, TS, participant_raw_id="8:acs:x", silent=False),
    acs.encode_audio_data(PCM, TS, participant_raw_id="p", silent=True),
    compact({"Kind": "AudioData", "AudioData": {"Data": B64, "IsSilent": True}}),
    compact({"audioData": {"silent": True, "data": B64}, "kind": "audioData"}),  # reordered
    json.dumps({"kind": "AudioData", "audioData": {"data": B64}}, indent=2),  # not compact
    json.dumps({"kind": "AudioData", "audioData": {"data": B64}}).replace("/", "\\/"),
    compact({"kind": "AudioData", "data": OTHER_B64, "audioData": {"data": B64}}),  # decoy first
    compact({"kind": "AudioData", "audioData": {"data": B64}, "data": OTHER_B64}),  # decoy after
    compact({"kind": "AudioData", "audioData": {"data": B64, "Data": OTHER_B64}}),
    compact({"kind": "AudioData", "audioData": {"timestamp": 'a"data":"b', "data": B64}}),
    compact({"kind": "AudioData", "audioData": {"participantRawID": None, "data": B64}}),
    compact({"kind": "AudioMetadata", "audioMetadata": {"sampleRate": 16000, "data": B64}}),
    compact({"kind": "DtmfData", "dtmfData": {"data": "5"}}),
    compact({"kind": "AudioData", "audioData": {"data": "!!!!"}}),
    compact({"kind": "AudioData", "audioData": {"data": "AAAA"}}),
    compact({"kind": "AudioData", "audioData": {"data": ""}}),
    '{"kind":"AudioData","audioData":{"data":"' + B64 + '"',  # truncated
    '{"kind":"AudioData","audioData":{"data":"' + B64 + '","silent":false}}}',  # extra brace
    # ACS's own shape with something off, for the literal-by-literal match:
    DOC_HEAD + 'T","participantRawID":"a\\"b","data":"' + B64 + '","silent":false}}',
    DOC_HEAD + 'T\\u0041","participantRawID":"p","data":"' + B64 + '","silent":true}}',
    DOC_HEAD + 'T","participantRawID":"p","data":"AAAA\\/AAA","silent":false}}',
    DOC_HEAD + 'T","participantRawID":"p","data":"' + B64 + '","silent":false}} ',
    DOC_HEAD + 'T","participantRawID":"p","data":"' + B64 + '"}}',
    DOC_HEAD + 'T","participantRawID":"p","data":"' + B64,
    DOC_HEAD + 'T","participantRawID":"p","data":"' + B64 + '","silent":null}}',
]


@pytest.mark.parametrize("message", AUDIO_SHAPES)
def test_audio_fast_path_agrees_with_the_full_parser(
    message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The quick AudioData path (base64 cut out before JSON) returns exactly what the full
    parser returns, or the same error, for every shape — including the ones it declines."""

    def outcome() -> object:
        try:
            return acs.parse_caller(message)
        except acs.AcsProtocolError as exc:
            return ("error", exc.reason)

    fast = outcome()
    monkeypatch.setattr(acs_agent, "_documented_audio", lambda message, decode: None)
    monkeypatch.setattr(acs_agent, "_audio_fast", lambda message, decode: None)
    assert fast == outcome()


@pytest.mark.parametrize(("index", "quick"), [(0, True), (1, True), (2, True), (3, True),
                                              (4, False), (5, False), (6, False), (7, False),
                                              (8, False), (9, True)])  # fmt: skip
def test_which_shapes_take_the_quick_path(index: int, quick: bool) -> None:
    taken = acs_agent._audio_fast(AUDIO_SHAPES[index], base64.b64decode)
    assert (taken is not None) is quick
    documented = acs_agent._documented_audio(AUDIO_SHAPES[index], base64.b64decode)
    assert (documented is not None) is (index < 2)  # ACS's own shape, literal by literal
    assert documented is None or documented == taken


def test_audio_decode_is_pluggable() -> None:
    seen: list[str] = []

    def decode(data: str) -> bytes:
        seen.append(data)
        return base64.b64decode(data)

    message = acs.encode_audio_data(PCM, TS)
    assert acs.parse_caller(message, decode) == CallerAudio(PCM, False, TS, acs.DEFAULT_PARTICIPANT)
    slow = compact({"Kind": "AudioData", "AudioData": {"Data": B64}}).replace("/", "\\/")
    assert acs.parse_caller(slow, decode) == CallerAudio(PCM)
    assert seen == [B64, B64]


def test_parse_dtmf_and_other() -> None:
    assert acs.parse_caller(acs.encode_dtmf("#")) == CallerDtmf("#")
    assert acs.parse_caller('{"Kind":"TranscriptionData"}') == CallerOther("TranscriptionData")


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (b"\x00\x01", "binary_frame"),
        ("hello", "not_json"),
        ("[]", "not_json"),
        ('{"audioData":{}}', "missing_kind"),
        ('{"kind":null}', "missing_kind"),
        ('{"kind":"AudioData","audioData":{}}', "missing_field"),
        ('{"kind":"AudioData"}', "missing_field"),
        ('{"kind":"AudioData","audioData":{"data":"!!!!"}}', "invalid_base64"),
        ('{"kind":"AudioData","audioData":{"data":"AAA"}}', "invalid_base64"),
        ('{"kind":"AudioData","audioData":{"data":"AAAA"}}', "odd_length"),
        ('{"kind":"AudioData","audioData":{"data":""}}', "empty_audio"),
        ('{"kind":"AudioMetadata","audioMetadata":{}}', "missing_field"),
        ('{"kind":"AudioMetadata","audioMetadata":{"sampleRate":true}}', "bad_value"),
        ('{"kind":"AudioMetadata","audioMetadata":{"sampleRate":16000,"length":100}}', "bad_value"),
        ('{"kind":"DtmfData","dtmfData":{}}', "missing_field"),
    ],
)
def test_parse_caller_rejects(message: str | bytes, reason: str) -> None:
    with pytest.raises(ProtocolError) as info:
        acs.parse_caller(message)
    assert isinstance(info.value, acs.AcsProtocolError)
    assert info.value.reason == reason
    assert str(info.value)


def test_agent_audio_golden_every_casing() -> None:
    assert acs.encode_agent_audio(PCM, acs.Casing.CAMEL) == compact(
        {"kind": "AudioData", "audioData": {"data": B64}}
    )
    assert acs.encode_agent_audio(PCM, acs.Casing.PASCAL) == compact(
        {"Kind": "AudioData", "AudioData": {"Data": B64}, "StopAudio": None}
    )
    for casing in acs.Casing:
        assert acs.classify(acs.encode_agent_audio(PCM, casing)).audio_bytes == len(PCM)


def test_stop_golden_every_casing() -> None:
    assert acs.encode_stop(acs.Casing.CAMEL) == compact({"kind": "StopAudio", "stopAudio": {}})
    assert acs.encode_stop(acs.Casing.PASCAL) == compact(
        {"Kind": "StopAudio", "AudioData": None, "StopAudio": {}}
    )
    for casing in acs.Casing:
        assert acs.classify(acs.encode_stop(casing)).kind is InboundKind.STOP


def test_transcript_every_casing() -> None:
    camel = json.loads(acs.encode_transcript("Let me check", acs.Casing.CAMEL))
    assert camel["kind"] == "TranscriptionData"
    assert camel["transcriptionData"]["text"] == "Let me check"
    pascal = json.loads(acs.encode_transcript("Let me check", acs.Casing.PASCAL))
    assert pascal["TranscriptionData"]["Text"] == "Let me check"
    assert pascal["TranscriptionData"]["Words"][0] == {"Text": "let", "Offset": 0, "Duration": 0}
    for casing in acs.Casing:
        inbound = acs.classify(acs.encode_transcript("Let me check", casing), ("check",))
        assert inbound == Inbound(InboundKind.TRANSCRIPT, detail="Let me check")


def test_transcription_data_as_acs_documents_it_byte_for_byte() -> None:
    """Every field Microsoft's streaming-data parsers read, in ACS's order; offsets and
    durations in ticks of 100 ns, the phrase's time split over its words."""
    message = acs.encode_transcript(
        "Hello, everyone.", offset_ms=21248.3227, duration_ms=960.0, confidence=0.9226
    )
    assert message == (
        '{"kind":"TranscriptionData","transcriptionData":{"text":"Hello, everyone.",'
        '"format":"display","confidence":0.9226,"offset":212483227,"duration":9600000,'
        '"words":[{"text":"hello","offset":212483227,"duration":4800000},'
        '{"text":"everyone","offset":217283227,"duration":4800000}],'
        f'"participantRawID":"{acs.TRANSCRIPT_PARTICIPANT}","resultStatus":"Final"}}}}'
    )
    assert acs.encode_transcript("Hello, everyone.", acs.Casing.SDK) == acs.encode_transcript(
        "Hello, everyone."
    )  # transcripts are ACS's own messages: the documented shape


def test_sdk_outbound_shapes_byte_for_byte_and_the_caller_reads_them() -> None:
    """``--casing sdk``: what the JavaScript Call Automation SDK's
    ``OutStreamingData.getStreamingDataForOutbound(data)`` and ``getStopAudioForOutbound()``
    return (``JSON.stringify`` of their objects, undefined fields dropped)."""
    audio = acs.encode_agent_audio(PCM, acs.Casing.SDK)
    assert audio == (
        '{"kind":"audioData","audioData":{"data":"' + B64 + '","isSilent":false},"stopAudio":{}}'
    )
    assert acs.encode_stop(acs.Casing.SDK) == '{"kind":"stopAudio","stopAudio":{}}'
    assert acs.classify(audio) == Inbound(InboundKind.AUDIO, audio_bytes=len(PCM))
    assert acs.classify(acs.encode_stop(acs.Casing.SDK)).kind is InboundKind.STOP


def test_core_imports_without_gevent() -> None:
    code = (
        "import sys, loadtest.protocols.acs, loadtest.agent_sim.session, "
        "loadtest.agent_sim.config, loadtest.agent_sim.audio; "
        "assert 'gevent' not in sys.modules and 'websockets' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    "data",
    ["", "AAAA", "AAA=", "AA==", "AAAAA", "A===", "AA\\u0041A", 'AA"}}', "AA\x01A", "AA AA",
     "+/+/", "AA==AA==", "AAé=", "AA\\\\", base64.b64encode(bytes(range(256)) * 3).decode()],
)  # fmt: skip
@pytest.mark.parametrize(
    ("head", "tail"),
    [('{"kind":"AudioData","audioData":{"data":"', '"}}'),
     ('{"Kind":"AudioData","AudioData":{"Data":"', '"},"StopAudio":null}'),
     ('{"Kind":"AudioData","AudioData":{"Data":"', '"}}')],
)  # fmt: skip
def test_audio_recognised_without_a_parse_is_classified_as_the_parse_does(
    head: str, tail: str, data: str
) -> None:
    message = head + data + tail
    parsed = acs_caller._classify_json(message, ("A",), ("AA",))
    assert acs.classify(message, ("A",), ("AA",)) == parsed
