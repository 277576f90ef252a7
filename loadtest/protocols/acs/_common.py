"""Helpers shared by both sides of the ACS protocol (private to the package)."""

from __future__ import annotations

from typing import Any

__all__ = ["SAMPLE_WIDTH", "get_ci"]

SAMPLE_WIDTH = 2
"""Bytes per PCM16 sample."""


def get_ci(obj: dict[str, Any], camel: str, pascal: str) -> Any:
    """``obj[key]`` with the key matched case-insensitively (fast path: the two usual spellings)."""
    value = obj.get(camel)
    if value is None:
        value = obj.get(pascal)
        if value is None:
            lowered = camel.lower()
            for key, item in obj.items():
                if key.lower() == lowered:
                    return item
    return value
