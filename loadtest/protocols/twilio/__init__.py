"""Twilio Media Streams (bidirectional, ``<Connect><Stream>``), both sides (sans-I/O).

Modules: :mod:`.caller` (load generator side: it plays Twilio), :mod:`.agent` (simulator
side); import everything from here.

Wire shapes (JSON text frames; audio is base64 G.711 µ-law, 8 kHz mono, 20 ms = 160 bytes)::

    caller → agent  {"event":"connected","protocol":"Call","version":"1.0.0"}
                    {"event":"start","sequenceNumber":"1","start":{"accountSid":"AC…",
                      "streamSid":"MZ…","callSid":"CA…","tracks":["inbound"],
                      "mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1},
                      "customParameters":{…}},"streamSid":"MZ…"}
                    {"event":"media","sequenceNumber":"2","media":{"track":"inbound",
                      "chunk":"1","timestamp":"0","payload":"<base64 µ-law>"},"streamSid":"MZ…"}
                    {"event":"dtmf","streamSid":"MZ…","sequenceNumber":"9",
                      "dtmf":{"track":"inbound_track","digit":"5"}}
                    {"event":"mark","sequenceNumber":"9","streamSid":"MZ…","mark":{"name":"…"}}
                    {"event":"stop","sequenceNumber":"N","stop":{"accountSid":"AC…",
                      "callSid":"CA…"},"streamSid":"MZ…"}
    agent → caller  {"event":"media","streamSid":"MZ…","media":{"payload":"<base64 µ-law>"}}
                    {"event":"mark","streamSid":"MZ…","mark":{"name":"…"}}
                    {"event":"clear","streamSid":"MZ…"}

``clear`` ends agent audio (the barge-in stop signal). Marks: like Twilio, the caller echoes
an agent's ``mark`` (same name, the next ``sequenceNumber``) once the audio sent before it
has played, or at once when ``clear`` drops that audio
(:class:`~loadtest.conversation.marks.MarkEchoes` keeps the time; :func:`classify` carries
the name in ``Inbound.mark`` and still matches its text against the tokens).

Caller side: :func:`encode_connected`, :func:`encode_start`, :func:`encode_media` (pre-encode
a µ-law frame once), :func:`encode_stop`, :func:`encode_dtmf`, :func:`encode_mark`,
:func:`classify` and :class:`TwilioCaller`. Agent side: :func:`parse_caller`,
:func:`encode_agent_media`, :func:`encode_clear`, :func:`encode_agent_mark`.
"""

from __future__ import annotations

from loadtest.protocols.twilio._common import DEFAULT_ACCOUNT_SID, ENCODING, SAMPLE_RATE, sid
from loadtest.protocols.twilio.agent import (
    TwilioCallerMessage,
    TwilioProtocolError,
    TwilioStart,
    encode_agent_mark,
    encode_agent_media,
    encode_clear,
    parse_caller,
)
from loadtest.protocols.twilio.caller import (
    PreEncodedMedia,
    TwilioCaller,
    classify,
    encode_connected,
    encode_dtmf,
    encode_mark,
    encode_media,
    encode_start,
    encode_stop,
    to_mulaw_frames,
)

__all__ = [
    "DEFAULT_ACCOUNT_SID",
    "ENCODING",
    "SAMPLE_RATE",
    "PreEncodedMedia",
    "TwilioCaller",
    "TwilioCallerMessage",
    "TwilioProtocolError",
    "TwilioStart",
    "classify",
    "encode_agent_mark",
    "encode_agent_media",
    "encode_clear",
    "encode_connected",
    "encode_dtmf",
    "encode_mark",
    "encode_media",
    "encode_start",
    "encode_stop",
    "parse_caller",
    "sid",
    "to_mulaw_frames",
]
