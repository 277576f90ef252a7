"""Azure Communication Services bidirectional media streaming, both sides (sans-I/O).

Modules: :mod:`.caller` (load generator side), :mod:`.agent` (simulator side); import
everything from here.

Wire shapes (JSON text frames; keys and ``kind`` values are matched case-insensitively
because real servers and SDKs disagree on casing)::

    caller → agent  {"kind":"AudioMetadata","audioMetadata":{"subscriptionId":"…",
                      "encoding":"PCM","sampleRate":16000,"channels":1,"length":640}}
                    {"kind":"AudioData","audioData":{"timestamp":"2024-11-15T19:16:12.925Z",
                      "participantRawID":"8:acs:…","data":"<base64 PCM16>","silent":false}}
                    {"kind":"DtmfData","dtmfData":{"data":"5"}}
    agent → caller  {"kind":"AudioData","audioData":{"data":"<base64 PCM16>"}}
                    {"kind":"StopAudio","stopAudio":{}}
                    (or the PascalCase variants, see :class:`Casing`)

Caller side (the load generator): :func:`encode_metadata`, :func:`encode_frame` (pre-encode a
PCM frame once; per send only the timestamp is inserted), :func:`iso_timestamp` and
:func:`classify` (cheap: never decodes base64). Agent side (the simulator):
:func:`parse_caller`, :func:`encode_agent_audio`, :func:`encode_stop`,
:func:`encode_transcript`.
"""

from __future__ import annotations

from loadtest.protocols.acs.agent import (
    TRANSCRIPT_PARTICIPANT,
    AcsProtocolError,
    Casing,
    encode_agent_audio,
    encode_stop,
    encode_transcript,
    parse_caller,
)
from loadtest.protocols.acs.caller import (
    DEFAULT_PARTICIPANT,
    DEFAULT_SUBSCRIPTION_ID,
    AcsCaller,
    PreEncodedFrame,
    classify,
    encode_audio_data,
    encode_dtmf,
    encode_frame,
    encode_metadata,
    iso_timestamp,
)

__all__ = [
    "DEFAULT_PARTICIPANT",
    "DEFAULT_SUBSCRIPTION_ID",
    "TRANSCRIPT_PARTICIPANT",
    "AcsCaller",
    "AcsProtocolError",
    "Casing",
    "PreEncodedFrame",
    "classify",
    "encode_agent_audio",
    "encode_audio_data",
    "encode_dtmf",
    "encode_frame",
    "encode_metadata",
    "encode_stop",
    "encode_transcript",
    "iso_timestamp",
    "parse_caller",
]
