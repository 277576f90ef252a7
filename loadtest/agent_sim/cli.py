"""``voice-loadtest agent``: flags, settings, and the process around the server (edge).

``add_agent_arguments(parser)`` adds the flags and sets ``handler=run_agent``;
``run_agent(args)`` validates them into :class:`AgentSettings` (one ``ConfigError`` naming
the flag on a bad value), builds the reply audio once, starts the Prometheus endpoint and
serves until SIGTERM/SIGINT, then closes every call with 1001 and flushes the ground truth.
``python -m loadtest.agent_sim`` runs the same thing without the main CLI.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server

from loadtest.agent_sim.audio import ReplyAudio
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
from loadtest.agent_sim.ground_truth import GroundTruthWriter
from loadtest.agent_sim.processes import run_processes
from loadtest.agent_sim.server import AgentServer
from loadtest.agent_sim.stats import AgentStats, AgentStatsCollector
from loadtest.errors import ConfigError, LoadtestError
from loadtest.protocols.acs import Casing

__all__ = [
    "add_agent_arguments",
    "configure_logging",
    "main",
    "run_agent",
    "serve",
    "settings_from_args",
]

log = logging.getLogger("loadtest.agent_sim")
_DEFAULTS = AgentSettings()
_POLICY = _DEFAULTS.policy


def add_agent_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``agent`` flags to ``parser`` and set ``handler=run_agent``."""
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
        help="acs: spelling of AudioData/StopAudio sent to callers",
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
    parser.set_defaults(handler=run_agent)


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
        metrics_port=args.metrics_port,
        metrics_host=args.metrics_host or args.host,
        max_message_bytes=args.max_message_bytes,
        event_loop=args.event_loop,
        processes=args.processes,
    )


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            data.update(fields)
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None)
        extra = ""
        if isinstance(fields, dict):
            extra = " " + " ".join(f"{k}={v}" for k, v in fields.items())
        return f"{record.levelname.lower()} {record.getMessage()}{extra}"


def configure_logging(level: str, fmt: str) -> None:
    """Structured logs on stderr for ``loadtest.agent_sim`` (JSON lines or key=value text)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _TextFormatter())
    log.handlers[:] = [handler]
    log.setLevel(level.upper())
    log.propagate = False


def build_reply_audio(settings: AgentSettings) -> ReplyAudio:
    """Encode the reply once: a tone, or ``reply_text`` spoken by the TTS engine."""
    policy = settings.policy
    duration_ms = max(policy.response_ms, policy.greeting_ms)
    source: Callable[[int], bytes] | None = None
    if settings.response_audio == "speech":
        tts = importlib.import_module("loadtest.audio.tts")
        engine = tts.make_engine(settings.tts_engine, os.environ)

        def source(rate: int) -> bytes:
            return bytes(engine.synthesize(policy.reply_text, sample_rate=rate))

    return ReplyAudio.build(duration_ms, settings.make_codec(), source)


def _loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if choice == "asyncio":
        return None
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        if choice == "uvloop":
            raise ConfigError("--event-loop uvloop: uvloop is not installed") from None
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def _os_reason(exc: OSError) -> str:
    """The plain reason ("Address already in use"): uvloop's ``strerror`` repeats the address."""
    return os.strerror(exc.errno) if exc.errno else str(exc)


async def serve(
    settings: AgentSettings,
    reply_audio: ReplyAudio,
    stats: AgentStats,
    ground_truth: GroundTruthWriter | None,
    on_listening: Callable[[], None] | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT, then close calls with 1001."""
    server = AgentServer(settings, reply_audio, stats=stats, ground_truth=ground_truth)
    try:
        port = await server.start()
    except OSError as exc:  # e.g. the port is taken: one line, not a traceback
        raise ConfigError(
            f"--host {settings.host} --port {settings.port}: cannot listen ({_os_reason(exc)})"
        ) from exc
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    url = f"ws://{settings.host}:{port}{settings.path}"
    fields = {
        "host": settings.host,
        "port": port,
        "url": url,
        "protocol": settings.protocol,
        "loop": type(loop).__module__,
    }
    if settings.reuse_port:  # one of several: the parent says "listening" for all
        log.info(
            "process listening", extra={"fields": {**fields, "process": settings.process_index}}
        )
    else:
        log.info("listening", extra={"fields": fields})
    if on_listening is not None:
        on_listening()
    await stop.wait()
    log.info("shutting down", extra={"fields": {"active": stats.active_connections}})
    await server.stop()


def run_agent(args: argparse.Namespace) -> int:
    """Run the simulator from parsed flags until SIGTERM/SIGINT; returns the exit code."""
    settings = settings_from_args(args)
    configure_logging(args.log_level, args.log_format)
    loop_factory = _loop_factory(settings.event_loop)
    reply_audio = build_reply_audio(settings)  # once: forked processes share it

    def serve_one(one: AgentSettings, on_listening: Callable[[], None] | None) -> int:
        return _serve_process(one, reply_audio, loop_factory, on_listening)

    if settings.processes > 1:
        return run_processes(settings, settings.processes, serve_one)
    return serve_one(settings, None)


def _serve_process(
    settings: AgentSettings,
    reply_audio: ReplyAudio,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None,
    on_listening: Callable[[], None] | None,
) -> int:
    stats = AgentStats()
    registry = CollectorRegistry()
    registry.register(AgentStatsCollector(stats))
    httpd = None
    if settings.metrics_port is not None:
        httpd, _ = start_http_server(
            settings.metrics_port, addr=settings.metrics_host, registry=registry
        )
        log.info(
            "metrics", extra={"fields": {"port": httpd.server_port, "host": settings.metrics_host}}
        )
    writer = GroundTruthWriter(settings.ground_truth) if settings.ground_truth else None
    gc.freeze()  # start-up objects never need collecting; fewer pauses under load
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(serve(settings, reply_audio, stats, writer, on_listening))
    finally:
        if writer is not None:
            writer.close()
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
    log.info(
        "stopped",
        extra={"fields": {"connections": stats.connections_total, "turns": stats.turns_total}},
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m loadtest.agent_sim``: the ``agent`` subcommand on its own."""
    parser = argparse.ArgumentParser(
        prog="voice-loadtest agent",
        description="Reference voice agent simulator (ACS, Twilio Media Streams or raw PCM).",
    )
    add_agent_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_agent(args)
    except LoadtestError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
