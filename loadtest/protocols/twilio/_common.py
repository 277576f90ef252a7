"""Constants and helpers shared by both sides of Twilio Media Streams (private to the package)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = [
    "CHANNELS",
    "DEFAULT_ACCOUNT_SID",
    "ENCODING",
    "SAMPLE_RATE",
    "compact",
    "event_of",
    "sid",
]

SAMPLE_RATE = 8000
"""Twilio streams G.711 µ-law at 8 kHz, mono, in both directions."""
ENCODING = "audio/x-mulaw"
CHANNELS = 1
DEFAULT_ACCOUNT_SID = "AC" + "0" * 32
"""The account every simulated call claims to belong to (``AC`` + 32 hex digits)."""


def sid(prefix: str, seed: str) -> str:
    """A Twilio-shaped SID (``prefix`` + 32 lower-case hex digits) derived from ``seed``.

    A UUID seed keeps its digits (``sid("CA", call_id)`` shows the harness's call id); any
    other seed is hashed.
    """
    digits = seed.replace("-", "").lower()
    if len(digits) != 32 or any(c not in "0123456789abcdef" for c in digits):
        digits = hashlib.sha256(seed.encode()).hexdigest()[:32]
    return prefix + digits


def compact(obj: object) -> str:
    """JSON without spaces (what Twilio and most agents send)."""
    return json.dumps(obj, separators=(",", ":"))


def event_of(obj: dict[str, Any]) -> Any:
    """The ``event`` value (key matched case-insensitively, fast path first)."""
    value = obj.get("event")
    if value is None:
        for key, item in obj.items():
            if key.lower() == "event":
                return item
    return value
