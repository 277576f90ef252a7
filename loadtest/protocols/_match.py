"""Classification helpers shared by the JSON-speaking caller protocols (private, pure).

``RESPONSE_TOKENS``/``END_TOKENS`` are matched as case-insensitive substrings against the
string values of a message (its type/event value and text fields), never against audio
payloads; the caller names which keys hold payloads.
"""

from __future__ import annotations

import functools

from loadtest.protocols.base import Inbound, InboundKind

__all__ = ["DETAIL_MAX_CHARS", "base64_decoded_len", "match_tokens"]

DETAIL_MAX_CHARS = 200
_TEXT_WALK_MAX_STRINGS = 256
_TEXT_WALK_MAX_DEPTH = 16


def base64_decoded_len(data: str) -> int | None:
    """Bytes that ``data`` decodes to, from its length and padding; ``None`` if it is not a
    multiple of 4 characters (the payload itself is never decoded)."""
    size = len(data)
    if size % 4:
        return None
    padding = 2 if data.endswith("==") else 1 if data.endswith("=") else 0
    return size // 4 * 3 - padding


@functools.lru_cache(maxsize=64)
def _lowered(tokens: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(t.lower() for t in tokens if t)


def _text_fields(obj: object, skip_keys: frozenset[str]) -> list[str]:
    """String values in ``obj``, depth-first, skipping values under keys in ``skip_keys``
    (lower case)."""
    found: list[str] = []
    stack: list[tuple[object, int]] = [(obj, 0)]
    while stack and len(found) < _TEXT_WALK_MAX_STRINGS:
        item, depth = stack.pop()
        if isinstance(item, str):
            found.append(item)
        elif depth >= _TEXT_WALK_MAX_DEPTH:
            continue
        elif isinstance(item, dict):
            for key, value in reversed(item.items()):
                if isinstance(key, str) and key.lower() in skip_keys:
                    continue
                stack.append((value, depth + 1))
        elif isinstance(item, list):
            stack.extend((value, depth + 1) for value in reversed(item))
    return found


def _first_match(texts: list[str], tokens: tuple[str, ...]) -> str | None:
    for text in texts:
        lowered = text.lower()
        for token in tokens:
            if token in lowered:
                return text[:DETAIL_MAX_CHARS]
    return None


def match_tokens(
    obj: object,
    response_tokens: tuple[str, ...],
    end_tokens: tuple[str, ...],
    skip_keys: frozenset[str] = frozenset(),
) -> Inbound | None:
    """END if a string in ``obj`` contains one of ``end_tokens``, else TRANSCRIPT if one
    contains one of ``response_tokens`` (``detail`` = the matching text), else ``None``."""
    if not (end_tokens or response_tokens):
        return None
    texts = _text_fields(obj, skip_keys)
    matched = _first_match(texts, _lowered(end_tokens))
    if matched is not None:
        return Inbound(InboundKind.END, detail=matched)
    matched = _first_match(texts, _lowered(response_tokens))
    if matched is not None:
        return Inbound(InboundKind.TRANSCRIPT, detail=matched)
    return None
