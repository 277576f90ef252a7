"""The Locust user: one simulated caller that places calls back to back (edge).

Scenario logic lives in the conversation core and the call driver; this class only binds a
:class:`~loadtest.runtime.caller.CallDriver` to Locust's user lifecycle.
"""

from __future__ import annotations

import random
from typing import Any

from locust import User, constant, task

from loadtest.runtime.caller import CallDriver
from loadtest.runtime.harness import harness_of
from loadtest.runtime.library import conversation_config

__all__ = ["VoiceUser"]


class VoiceUser(User):
    """A caller. ``--host`` (or ``WS_URL``) is the agent's WebSocket URL."""

    wait_time = constant(0)

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        harness = harness_of(environment)
        if harness.settings is None or harness.library is None:
            raise RuntimeError("voice-loadtest harness not configured (locustfile not loaded?)")
        self._driver = CallDriver(
            harness.settings,
            harness.library,
            conversation_config(harness.settings, harness.library.agent_sample_rate),
            harness,
            random.Random(harness.rng.random()),
        )

    @task
    def call(self) -> None:
        self._driver.run_call()
