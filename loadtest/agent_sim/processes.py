"""Several simulator processes on one port (``--processes N``): one event loop per core (edge).

One asyncio process serves what one core can (see docs/benchmarks.md); a test that needs more
calls than that runs N processes behind the same address. Linux's ``SO_REUSEPORT`` spreads
incoming connections over every socket listening on it.

The parent prepares what all processes share (settings, the encoded reply audio), reserves
the port — bound with ``SO_REUSEPORT`` but never listening, so ``--port 0`` picks one port for
all — and forks the processes. Each serves exactly like a single simulator, with its own
metrics port (``--metrics-port`` + its index, when a port is given) and its own ground-truth
part file. The parent logs ``listening`` once every process listens, passes SIGTERM/SIGINT
on, and when all have exited merges the parts into ``--ground-truth``. If one process dies,
the others are stopped and the exit code is 1.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from loadtest.agent_sim.config import AgentSettings
from loadtest.errors import ConfigError, LoadtestError

__all__ = ["part_path", "run_processes"]

log = logging.getLogger("loadtest.agent_sim")

Serve = Callable[[AgentSettings, Callable[[], None]], int]
"""Runs one simulator process with these settings; calls the second argument once it listens."""


def part_path(path: Path, index: int) -> Path:
    """Process ``index``'s ground-truth part file next to ``path``."""
    return path.with_name(f"{path.name}.part{index}")


def run_processes(settings: AgentSettings, count: int, serve: Serve) -> int:
    """Fork ``count`` processes that each run ``serve``; returns the exit code."""
    if not hasattr(socket, "SO_REUSEPORT") or not sys.platform.startswith("linux"):
        raise ConfigError("--processes above 1 needs Linux (SO_REUSEPORT spreads the calls)")
    if settings.ground_truth is not None:  # the parts are merged here: fail early, one line
        try:
            settings.ground_truth.open("w").close()
        except OSError as exc:
            raise ConfigError(
                f"--ground-truth {settings.ground_truth}: cannot write ({exc.strerror})"
            ) from exc
    reserved = _reserve(settings.host, settings.port)
    port = int(reserved.getsockname()[1])
    ready_r, ready_w = os.pipe()
    children: list[int] = []
    for index in range(count):
        child = _child_settings(settings, port, index)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child (covered by the integration test)
            os.close(ready_r)
            reserved.close()
            code = 1
            try:
                code = serve(child, lambda: _say_ready(ready_w))
            except LoadtestError as exc:  # one line, like a single process
                log.error(str(exc), extra={"fields": {"process": index}})
            except BaseException:  # never return into the parent's code
                log.exception("simulator process failed", extra={"fields": {"process": index}})
            finally:
                os._exit(code)
        children.append(pid)
    os.close(ready_w)
    return _supervise(settings, port, children, ready_r, reserved)


def _reserve(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"--host {host} --port {port}: cannot bind ({exc.strerror})") from exc
    return sock


def _child_settings(settings: AgentSettings, port: int, index: int) -> AgentSettings:
    metrics, truth = settings.metrics_port, settings.ground_truth
    return replace(
        settings,
        port=port,
        reuse_port=True,
        process_index=index,
        metrics_port=metrics + index if metrics else metrics,
        ground_truth=None if truth is None else part_path(truth, index),
    )


def _say_ready(fd: int) -> None:
    os.write(fd, b"r")
    os.close(fd)


def _supervise(
    settings: AgentSettings, port: int, children: list[int], ready: int, reserved: socket.socket
) -> int:
    stopping = False

    def stop_all(signum: int = signal.SIGTERM, _frame: object = None) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    previous = {s: signal.signal(s, stop_all) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        listening = 0
        while listening < len(children):
            chunk = os.read(ready, len(children))
            if not chunk:  # every child closed its end: some never got to listen
                break
            listening += len(chunk)
        os.close(ready)
        reserved.close()
        if listening == len(children):
            url = f"ws://{settings.host}:{port}{settings.path}"
            log.info(
                "listening",
                extra={"fields": {"host": settings.host, "port": port, "url": url,
                                  "protocol": settings.protocol, "processes": len(children)}},
            )  # fmt: skip
        else:
            stop_all()
        code = 0 if listening == len(children) else 1
        remaining = set(children)
        while remaining:
            pid, status = os.waitpid(-1, 0)
            remaining.discard(pid)
            exit_code = os.waitstatus_to_exitcode(status)
            if exit_code != 0 or not stopping:
                code = code or 1
                if not stopping:
                    log.error("simulator process exited", extra={"fields": {"exit": exit_code}})
                    stop_all()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if settings.ground_truth is not None:
        _merge(settings.ground_truth, len(children))
    return code


def _merge(path: Path, count: int) -> None:
    """Concatenate the parts (whole lines each) into ``path`` and remove them."""
    staging = path.with_name(f".{path.name}.merging")
    with staging.open("wb") as out:
        for index in range(count):
            part = part_path(path, index)
            if part.exists():
                out.write(part.read_bytes())
                part.unlink()
    staging.replace(path)
