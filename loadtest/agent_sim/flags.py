"""The ``voice-loadtest agent`` flags and their validation into :class:`AgentSettings`.

``add_flags(parser)`` adds them (grouped as ``--help`` shows them); ``settings_from_args``
turns parsed flags into settings, raising one :class:`~loadtest.errors.ConfigError` that
names the flag on a bad value. The process around them is :mod:`.cli`'s.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from loadtest.agent_sim.codecs import PROTOCOLS
from loadtest.agent_sim.config import (
    AgentSettings,
    BargeMode,
    FaultKind,
    FaultPlan,
    Pace,
    ReplyPolicy,
    parse_fault,
    parse_latency_dist,
)
from loadtest.errors import ConfigError
from loadtest.protocols.acs import Casing

__all__ = ["add_flags", "settings_from_args"]

_DEFAULTS = AgentSettings()
_POLICY = _DEFAULTS.policy


def add_flags(parser: argparse.ArgumentParser) -> None:
    """Add the ``agent`` flags to ``parser``."""
    net = parser.add_argument_group("server")
    net.add_argument("--host", default=_DEFAULTS.host, help="listen address (default: %(default)s)")
    net.add_argument("--port", type=int, default=_DEFAULTS.port, help="0 picks a free port")
    net.add_argument("--path", default=_DEFAULTS.path, help="media stream path")
    proto = parser.add_argument_group(
        "wire protocol (defaults come from the callers' WS_PROTOCOL, RAW_SAMPLE_RATE and "
        "RAW_STOP_MESSAGE, so `run --with-agent` speaks what the callers speak)"
    )
    proto.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        type=str.lower,
        default=os.environ.get("WS_PROTOCOL", _DEFAULTS.protocol).strip().lower(),
        help="acs: ACS media streaming; twilio: Twilio Media Streams (µ-law 8 kHz); "
        "raw: binary PCM16 frames (default: $WS_PROTOCOL or %(default)s)",
    )
    proto.add_argument(
        "--casing",
        choices=[c.value for c in Casing],
        default=_POLICY.casing.value,
        help="acs: spelling of AudioData/StopAudio sent to callers: camel (as documented), "
        "pascal (.NET SDK serialiser), sdk (exactly the JavaScript SDK's outbound builders)",
    )
    proto.add_argument(
        "--raw-sample-rate",
        default=os.environ.get("RAW_SAMPLE_RATE", str(_DEFAULTS.raw_sample_rate)),
        help="raw: PCM16 rate both ways (default: $RAW_SAMPLE_RATE or %(default)s)",
    )
    proto.add_argument(
        "--raw-stop-message",
        default=os.environ.get("RAW_STOP_MESSAGE", _DEFAULTS.raw_stop_message),
        help="raw: text frame sent to stop (barge-in) (default: $RAW_STOP_MESSAGE or %(default)s)",
    )
    net.add_argument(
        "--max-message-bytes",
        type=int,
        default=_DEFAULTS.max_message_bytes,
        help="larger caller messages close the call with 1009",
    )
    net.add_argument(
        "--tls-cert",
        type=Path,
        metavar="FILE",
        help="serve wss:// with this certificate chain (PEM); with --tls-key",
    )
    net.add_argument("--tls-key", type=Path, metavar="FILE", help="the certificate's private key")
    net.add_argument("--metrics-port", type=int, help="serve Prometheus /metrics on this port")
    net.add_argument("--metrics-host", help="metrics listen address (default: --host)")
    net.add_argument(
        "--ground-truth",
        type=Path,
        metavar="FILE",
        help="write one JSON line per turn (monotonic ns timestamps)",
    )
    net.add_argument(
        "--event-loop",
        choices=("auto", "asyncio", "uvloop"),
        default="auto",
        help="auto uses uvloop when installed",
    )
    net.add_argument(
        "--processes",
        type=int,
        default=1,
        help="serve from N processes on the same port, one per core (Linux; default: 1)",
    )
    net.add_argument("--log-level", choices=("debug", "info", "warning"), default="info")
    net.add_argument("--log-format", choices=("json", "text"), default="json")

    turns = parser.add_argument_group("turn taking")
    turns.add_argument(
        "--endpoint-silence-ms",
        type=int,
        default=_POLICY.endpoint_silence_ms,
        help="silence that ends a caller turn (default: %(default)s)",
    )
    turns.add_argument(
        "--latency-ms",
        type=float,
        default=800.0,
        help="reply latency from the last speech frame (default: %(default)s)",
    )
    turns.add_argument(
        "--latency-dist",
        default="fixed",
        metavar="SPEC",
        help="fixed | uniform:LO,HI | lognormal:MEDIAN,SIGMA (ms)",
    )
    turns.add_argument("--seed", type=int, default=_DEFAULTS.seed, help="random seed")
    turns.add_argument(
        "--greeting-ms",
        type=int,
        default=0,
        help="speak first for this long after AudioMetadata (0: off)",
    )
    turns.add_argument(
        "--transcripts",
        action="store_true",
        help="send a TranscriptionData text message with each reply",
    )

    reply = parser.add_argument_group("reply audio")
    reply.add_argument(
        "--response-ms",
        type=int,
        default=_POLICY.response_ms,
        help="length of each reply (default: %(default)s)",
    )
    reply.add_argument(
        "--response-audio",
        choices=("tone", "speech"),
        default="tone",
        help="a tone, or --reply-text spoken by --tts-engine",
    )
    reply.add_argument("--reply-text", default=_POLICY.reply_text)
    reply.add_argument("--tts-engine", choices=("espeak", "azure"), default="espeak")
    reply.add_argument(
        "--pace",
        choices=[p.value for p in Pace],
        default=_POLICY.pace.value,
        help="realtime: one frame per 20 ms; burst: faster than real time",
    )
    reply.add_argument(
        "--burst-ms",
        type=int,
        default=_POLICY.burst_ms,
        help="burst pace: audio per burst (default: %(default)s)",
    )
    reply.add_argument(
        "--burst-speed",
        type=float,
        default=_POLICY.burst_speed,
        help="burst pace: times faster than real time (default: %(default)s)",
    )

    barge = parser.add_argument_group("barge-in")
    barge.add_argument(
        "--barge-min-speech-ms",
        type=int,
        default=_POLICY.barge_min_speech_ms,
        help="caller speech over a reply that counts as barge-in",
    )
    barge.add_argument(
        "--barge-latency-ms",
        type=int,
        default=_POLICY.barge_latency_ms,
        help="StopAudio this long after barge speech starts",
    )
    barge.add_argument(
        "--barge-mode", choices=[m.value for m in BargeMode], default=_POLICY.barge_mode.value
    )
    barge.add_argument(
        "--barge-late-ms",
        type=int,
        default=_POLICY.barge_late_ms,
        help="extra delay of StopAudio in late mode",
    )

    faults = parser.add_argument_group("faults")
    faults.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KIND=P",
        help="inject a fault with probability P; repeatable; KIND: "
        + ", ".join(k.value for k in FaultKind),
    )
    faults.add_argument("--stall-ms", type=int, default=2000, help="delay added by 'stall'")


def settings_from_args(args: argparse.Namespace) -> AgentSettings:
    """Validate parsed flags into settings; raises :class:`ConfigError` naming the flag."""
    latency = parse_latency_dist(args.latency_dist, args.latency_ms, args.endpoint_silence_ms)
    plan = FaultPlan(tuple(parse_fault(spec) for spec in args.fault), stall_ms=args.stall_ms)
    policy = ReplyPolicy(
        latency=latency,
        endpoint_silence_ms=args.endpoint_silence_ms,
        response_ms=args.response_ms,
        greeting_ms=args.greeting_ms,
        pace=Pace(args.pace),
        burst_ms=args.burst_ms,
        burst_speed=args.burst_speed,
        barge_min_speech_ms=args.barge_min_speech_ms,
        barge_latency_ms=args.barge_latency_ms,
        barge_mode=BargeMode(args.barge_mode),
        barge_late_ms=args.barge_late_ms,
        faults=plan,
        casing=Casing(args.casing),
        transcripts=args.transcripts,
        reply_text=args.reply_text,
    )
    if args.greeting_ms < 0:
        raise ConfigError(f"--greeting-ms {args.greeting_ms} must be >= 0")
    try:
        raw_rate = int(str(args.raw_sample_rate).strip())
    except ValueError:
        raise ConfigError(
            f"--raw-sample-rate {args.raw_sample_rate!r} is not a whole number of Hz"
        ) from None
    return AgentSettings(
        policy=policy,
        protocol=str(args.protocol).strip().lower(),
        raw_sample_rate=raw_rate,
        raw_stop_message=args.raw_stop_message,
        host=args.host,
        port=args.port,
        path=args.path,
        seed=args.seed,
        response_audio=args.response_audio,
        tts_engine=args.tts_engine,
        ground_truth=args.ground_truth,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        metrics_port=args.metrics_port,
        metrics_host=args.metrics_host or args.host,
        max_message_bytes=args.max_message_bytes,
        event_loop=args.event_loop,
        processes=args.processes,
    )
