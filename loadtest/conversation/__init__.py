"""The conversation core (sans-I/O): turn plan, frame schedule, TTFB, barge-in, turn outcome.

Pure Python: no clocks, no sleeping, no sockets, no gevent, no websocket-client, no Locust.
The edge passes monotonic instants (``time.monotonic_ns()``) and classified inbound
messages (:class:`~loadtest.protocols.base.Inbound`) in, and gets frames to send and
measurement records out.

* :mod:`~loadtest.conversation.plan` — :func:`choose_scenario`, :func:`build_plan`.
* :mod:`~loadtest.conversation.engine` — :class:`Conversation`, the per-connection state
  machine; its module docstring gives the call order.
* :mod:`~loadtest.conversation.measure` — :class:`Sample` (Locust request events) and the
  greeting/turn reports.
* :mod:`~loadtest.conversation.handoff` — when the caller speaks again (turn-taking).
* :mod:`~loadtest.conversation.playback` — the caller's playback-buffer model.
* :mod:`~loadtest.conversation.marks` — :class:`MarkEchoes`, when to echo an agent's
  playback marks (Twilio ``mark``).
* :mod:`~loadtest.conversation.backoff` — reconnect delays, and a caller's consecutive
  connection failures across calls.

Per caller::

    rng = random.Random(seed)
    plan = build_plan(choose_scenario(scenarios, rng), config, rng)
    conv = Conversation(plan, config)
    conv.start(t_up, connect_started_ns=t_connect)
    ...  # frames_due / sent (scheduler), receive (read callback), events, closed — see engine
    # after conv.done: close the socket; the next call (a new Conversation on a new
    # connection) first waits failures.delay_ms(rng) — see backoff.
"""

from __future__ import annotations

from loadtest.conversation.backoff import ConnectFailures, ReconnectBackoff
from loadtest.conversation.config import ConversationConfig, GreetingMode
from loadtest.conversation.engine import Conversation
from loadtest.conversation.frames import Frame, FrameKind, Phase
from loadtest.conversation.measure import (
    AnswerStats,
    BargeOutcome,
    BargeReport,
    Counters,
    Event,
    Failure,
    GreetingReport,
    Metric,
    Sample,
    TalkOver,
    TurnReport,
)
from loadtest.conversation.plan import (
    PlannedTurn,
    Scenario,
    TurnAudio,
    TurnPlan,
    build_plan,
    choose_scenario,
)
from loadtest.conversation.playback import PlaybackBuffer, audio_duration_ns

__all__ = [
    "AnswerStats",
    "BargeOutcome",
    "BargeReport",
    "ConnectFailures",
    "Conversation",
    "ConversationConfig",
    "Counters",
    "Event",
    "Failure",
    "Frame",
    "FrameKind",
    "GreetingMode",
    "GreetingReport",
    "Metric",
    "Phase",
    "PlannedTurn",
    "PlaybackBuffer",
    "ReconnectBackoff",
    "Sample",
    "Scenario",
    "TalkOver",
    "TurnAudio",
    "TurnPlan",
    "TurnReport",
    "audio_duration_ns",
    "build_plan",
    "choose_scenario",
]
