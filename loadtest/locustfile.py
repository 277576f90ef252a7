"""The file ``locust -f`` and Azure Load Testing load: wiring only.

    locust -f loadtest/locustfile.py --host ws://127.0.0.1:8010/api/v1/media/stream \\
           --users 20 --spawn-rate 5 --run-time 1m --headless

Settings come from environment variables or the matching options (``locust -f … --help``).
"""

from locust import events

from loadtest.runtime.locust_user import VoiceUser
from loadtest.runtime.plugin import register

__all__ = ["VoiceUser"]

register(events)
