"""The Locust user: one simulated caller that places calls back to back (edge).

Scenario logic lives in the conversation core and the call driver; this class only binds a
:class:`~loadtest.runtime.caller.CallDriver` to Locust's user lifecycle.
"""

from __future__ import annotations

import random

from locust import User, constant, task

from loadtest.runtime.caller import CallDriver
from loadtest.runtime.harness import harness_of
from loadtest.runtime.library import conversation_config

__all__ = ["VoiceUser"]

_READY_TIMEOUT_S = 60.0


class VoiceUser(User):
    """A caller. ``--host`` (or ``WS_URL``) is the agent's WebSocket URL."""

    wait_time = constant(0)
    _driver: CallDriver

    def on_start(self) -> None:
        harness = harness_of(self.environment)
        # A worker that joins a running test (autoscaling) is sent spawn orders before Locust
        # fires `init`, where the audio is loaded: wait for it rather than fail.
        if not harness.ready.wait(_READY_TIMEOUT_S):
            raise RuntimeError("voice-loadtest harness was not configured within 60 s")
        assert harness.settings is not None and harness.library is not None
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
