"""A small voice agent built on Pipecat, the interop tests' third-party agent.

It runs in its own virtualenv (``.venv-interop``, made by ``scripts/deps/interop.sh``), not in
the harness's, and is started by the tests as a process::

    .venv-interop/bin/python tests/interop/pipecat_agent.py --events EVENTS.jsonl \\
        --log PIPECAT.log --reply-after-ms 300 --reply-ms 2500

It is a stock Pipecat telephony bot: a FastAPI WebSocket endpoint (``/ws``) served by uvicorn,
Pipecat's ``parse_telephony_websocket`` for the Twilio handshake, ``FastAPIWebsocketTransport``
with ``TwilioFrameSerializer`` (8 kHz µ-law), Pipecat's ``VADProcessor`` with
``SileroVADAnalyzer`` (the model Pipecat ships) and ``UserTurnProcessor``, which decides when
the caller's turn starts (and interrupts the bot: Twilio ``clear``) and when it ends. The only
scripted part is the reply: :class:`ScriptedReply` answers ``--reply-after-ms`` after
Pipecat's own end of turn with ``--reply-ms`` of tone.

The agent logs its own instants, ``time.monotonic_ns()`` (the harness's clock on this host),
one JSON line each to ``--events``:

* ``listening`` (``port``) — once, also printed on stdout;
* ``open`` — a connection was accepted; ``start`` (``stream_sid``, ``call_sid``, ``custom``) —
  its Twilio handshake was parsed; ``closed`` — the call ended;
* ``rx`` (``stream_sid``, ``ts`` = the media message's ``timestamp``) — a caller media message
  was handed to Pipecat's input transport by the socket;
* ``turn_end`` — Pipecat's end of the caller's turn reached the reply processor;
* ``reply_tx`` — the send of the reply's first media message returned;
* ``clear_tx`` — the send of a ``clear`` (Pipecat's interruption) returned;
* ``stall`` (``from_ns``) — the event loop, last seen running at ``from_ns``, could not run
  again until ``ns`` (a long step of Pipecat's, a garbage collection, or the process waiting
  for a CPU): an instant stamped just after a stall may be that much later than its event.

Pipecat's own log (loguru) goes to ``--log``; the tests read it for errors and warnings.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import socket
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from fastapi import FastAPI, WebSocket
from loguru import logger
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams
from pipecat.frames.frames import (
    Frame,
    InterruptionFrame,
    OutputAudioRawFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.audio.vad_processor import VADProcessor
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.runner.utils import parse_telephony_websocket
from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.transports.websocket.fastapi import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)
from pipecat.turns.user_stop import SpeechTimeoutUserTurnStopStrategy
from pipecat.turns.user_turn_processor import UserTurnProcessor
from pipecat.turns.user_turn_strategies import UserTurnStrategies
from pipecat.workers.runner import WorkerRunner

RATE = 8000  # Twilio's, and the pipeline's: no resampling inside the bot
WATCH_NS = 2_000_000  # how often the loop watcher wakes
STALL_NS = 3_000_000  # a wake-up this much later than due is logged as a stall


class Events:
    """The agent's own log of instants: one JSON line per event, written as it happens."""

    def __init__(self, path: str) -> None:
        self._file = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115

    def write(self, event: str, **fields: Any) -> None:
        fields["ns"] = fields.get("ns") or time.monotonic_ns()
        self._file.write(json.dumps({"event": event, **fields}) + "\n")


class StampedSocket:
    """Stamps the call's messages at the socket, around Pipecat's own use of it.

    A caller media message is stamped when ``receive()`` returns it to Pipecat's input
    transport; the agent's ``clear`` and each reply's first media message when the send that
    Pipecat's output transport made returned — the same instants the harness stamps.
    """

    def __init__(self, websocket: WebSocket, events: Events) -> None:
        self.events = events
        self.stream_sid = ""
        self.reply_pending = False  # the scripted reply's audio is on its way out
        self._receive = websocket.receive
        self._send_text = websocket.send_text
        websocket.receive = self.receive  # type: ignore[method-assign]
        websocket.send_text = self.send_text  # type: ignore[method-assign]

    async def receive(self) -> Any:
        message = await self._receive()
        received_ns = time.monotonic_ns()
        text = message.get("text")
        if self.stream_sid and text and '"media"' in text:
            timestamp = int(json.loads(text)["media"]["timestamp"])
            self.events.write("rx", stream_sid=self.stream_sid, ts=timestamp, ns=received_ns)
        return message

    async def send_text(self, data: str) -> None:
        await self._send_text(data)
        sent_ns = time.monotonic_ns()
        if '"clear"' in data:
            self.events.write("clear_tx", stream_sid=self.stream_sid, ns=sent_ns)
        elif self.reply_pending and '"media"' in data:
            self.reply_pending = False
            self.events.write("reply_tx", stream_sid=self.stream_sid, ns=sent_ns)


async def watch_the_loop(events: Events) -> None:
    """Logs every stretch in which this process's event loop could not run.

    The agent stamps a message when its loop gets to it, not when the kernel had it; while the
    loop is held, a message that arrived waits unstamped, and nothing else shows that it did.
    """
    while True:
        slept_ns = time.monotonic_ns()
        await asyncio.sleep(WATCH_NS / 1e9)
        woke_ns = time.monotonic_ns()
        if woke_ns - slept_ns - WATCH_NS > STALL_NS:
            events.write("stall", from_ns=slept_ns, ns=woke_ns)


class ScriptedReply(FrameProcessor):
    """Answers ``reply_after_ms`` after Pipecat's end of the caller's turn, with a tone."""

    def __init__(self, socket: StampedSocket, after_ms: int, length_ms: int) -> None:
        super().__init__()
        self._socket = socket
        self._after_s = after_ms / 1000
        samples = RATE * length_ms // 1000
        tone = (round(6000 * math.sin(2 * math.pi * 440 * i / RATE)) for i in range(samples))
        self._audio = b"".join(v.to_bytes(2, "little", signed=True) for v in tone)
        self._task: asyncio.Task[None] | None = None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, UserStoppedSpeakingFrame):
            self._socket.events.write("turn_end", stream_sid=self._socket.stream_sid)
            await self._cancel()
            self._task = self.create_task(self._reply())
        elif isinstance(frame, InterruptionFrame | UserStartedSpeakingFrame):
            await self._cancel()
        await self.push_frame(frame, direction)

    async def _cancel(self) -> None:
        if self._task is not None:
            await self.cancel_task(self._task)
            self._task = None

    async def _reply(self) -> None:
        await asyncio.sleep(self._after_s)
        self._socket.reply_pending = True
        await self.push_frame(OutputAudioRawFrame(self._audio, RATE, 1))


def build_app(args: argparse.Namespace, events: Events) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        watcher = asyncio.create_task(watch_the_loop(events))
        yield
        watcher.cancel()

    app = FastAPI(lifespan=lifespan)

    @app.websocket("/ws")
    async def media_stream(websocket: WebSocket) -> None:
        await websocket.accept()
        events.write("open")
        stamped = StampedSocket(websocket, events)
        _, call = await parse_telephony_websocket(websocket)
        stream_sid, call_sid = call["stream_id"], call["call_id"]
        custom = call.get("body") or {}
        events.write("start", stream_sid=stream_sid, call_sid=call_sid, custom=custom)
        stamped.stream_sid = stream_sid
        serializer = TwilioFrameSerializer(
            stream_sid=stream_sid,
            call_sid=call_sid,
            params=TwilioFrameSerializer.InputParams(auto_hang_up=False),  # no Twilio REST here
        )
        transport = FastAPIWebsocketTransport(
            websocket,
            FastAPIWebsocketParams(
                audio_in_enabled=True,
                audio_out_enabled=True,
                audio_out_auto_silence=False,  # send reply audio only, as a phone agent does
                audio_out_end_silence_secs=0,
                serializer=serializer,
            ),
        )
        turns = UserTurnProcessor(
            user_turn_strategies=UserTurnStrategies(
                stop=[
                    SpeechTimeoutUserTurnStopStrategy(
                        user_speech_timeout=args.speech_timeout_ms / 1000,
                        wait_for_transcript=False,  # no STT here: the VAD decides
                    )
                ]
            )
        )
        pipeline = Pipeline(
            [
                transport.input(),
                VADProcessor(vad_analyzer=SileroVADAnalyzer(params=VADParams(stop_secs=0.2))),
                turns,
                ScriptedReply(stamped, args.reply_after_ms, args.reply_ms),
                transport.output(),
            ]
        )
        worker = PipelineWorker(
            pipeline,
            params=PipelineParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE),
            enable_rtvi=False,
            idle_timeout_secs=None,
        )

        @transport.event_handler("on_client_disconnected")
        async def on_client_disconnected(transport: Any, client: Any) -> None:
            await worker.cancel()

        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(worker)
        await runner.run()
        events.write("closed", stream_sid=stream_sid)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--reply-after-ms", type=int, default=300)
    parser.add_argument("--reply-ms", type=int, default=2500)
    parser.add_argument("--speech-timeout-ms", type=int, default=300)
    args = parser.parse_args()
    logger.remove()
    logger.add(args.log, level="INFO")
    events = Events(args.events)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    events.write("listening", port=port)
    print(json.dumps({"event": "listening", "port": port}), flush=True)
    config = uvicorn.Config(build_app(args, events), log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    sys.exit(main())
