"""Raw binary PCM over WebSocket, both sides (sans-I/O).

Modules: :mod:`.caller` (load generator side), :mod:`.agent` (simulator side); import
everything from here.

Wire shapes (no handshake; the rate is configured on both ends, ``RAW_SAMPLE_RATE``)::

    caller → agent  <binary: PCM16 LE mono, CHUNK_MS of audio (640 bytes = 20 ms at 16 kHz)>
    agent → caller  <binary: PCM16 LE mono at the same rate, any length>
                    {"type":"interrupt"}                  the stop signal (RAW_STOP_MESSAGE)
                    {"type":"transcript","text":"…"}      any other text: matched against
                                                          RESPONSE_TOKENS / END_TOKENS

The configured stop message ends agent audio; an agent that has none is measured by the
quiet gap (``BARGE_QUIET_MS``).
"""

from __future__ import annotations

from loadtest.protocols.raw.agent import (
    RawCallerMessage,
    RawProtocolError,
    encode_transcript,
    parse_caller,
)
from loadtest.protocols.raw.caller import (
    DEFAULT_SAMPLE_RATE,
    DEFAULT_STOP_MESSAGE,
    RawCaller,
    RawFrame,
    StopMatcher,
    classify,
    to_rate_frames,
)

__all__ = [
    "DEFAULT_SAMPLE_RATE",
    "DEFAULT_STOP_MESSAGE",
    "RawCaller",
    "RawCallerMessage",
    "RawFrame",
    "RawProtocolError",
    "StopMatcher",
    "classify",
    "encode_transcript",
    "parse_caller",
    "to_rate_frames",
]
