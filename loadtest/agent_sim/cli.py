"""``voice-loadtest agent``: the process around the server (edge).

``add_agent_arguments(parser)`` adds the flags (:mod:`.flags`) and sets ``handler=run_agent``;
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
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server

from loadtest.agent_sim.audio import ReplyAudio
from loadtest.agent_sim.config import AgentSettings
from loadtest.agent_sim.flags import add_flags, settings_from_args
from loadtest.agent_sim.ground_truth import GroundTruthWriter
from loadtest.agent_sim.processes import run_processes
from loadtest.agent_sim.server import AgentServer
from loadtest.agent_sim.stats import AgentStats, AgentStatsCollector
from loadtest.errors import ConfigError, run_command

__all__ = [
    "add_agent_arguments",
    "configure_logging",
    "main",
    "run_agent",
    "serve",
    "settings_from_args",
]

log = logging.getLogger("loadtest.agent_sim")


def add_agent_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``agent`` flags (:mod:`.flags`) to ``parser`` and set ``handler=run_agent``."""
    add_flags(parser)
    parser.set_defaults(handler=run_agent)


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
    url = f"{settings.scheme}://{settings.host}:{port}{settings.path}"
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
    settings.tls_context()  # a certificate that does not load is one line, before any process
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
    return run_command(parser.prog, run_agent, args)
