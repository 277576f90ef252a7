"""The Locust work-around: a worker's spawn message must not rebuild Locust's parser per option."""

from __future__ import annotations

from typing import Any

import pytest
from locust import argument_parser

from loadtest.runtime.locust_fixes import memoize_default_args


@pytest.fixture
def parser_builds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count Locust parser builds; start from Locust's own ``default_args_dict`` (another test
    may have loaded the locustfile, which applies the fix) and restore it afterwards."""
    current = argument_parser.default_args_dict
    monkeypatch.setattr(
        argument_parser, "default_args_dict", getattr(current, "__wrapped__", current)
    )
    builds: list[int] = []
    build = argument_parser.get_empty_argument_parser

    def counting(*args: Any, **kwargs: Any) -> Any:
        builds.append(1)
        return build(*args, **kwargs)

    monkeypatch.setattr(argument_parser, "get_empty_argument_parser", counting)
    return builds


def _spawn_message_filter(options: dict[str, Any]) -> dict[str, Any]:
    """What ``WorkerRunner.handle_message`` does with the master's options on a spawn message."""
    return {k: v for k, v in options.items() if k not in argument_parser.default_args_dict()}


def test_a_spawn_message_builds_the_parser_once_not_once_per_option(
    parser_builds: list[int],
) -> None:
    options = {**argument_parser.default_args_dict(), "ws_url": "ws://x", "turns_per_user": "3"}
    parser_builds.clear()
    assert len(options) > 50  # Locust's own options and the harness's

    unpatched = _spawn_message_filter(options)  # Locust 2.47: one parser build per key
    assert unpatched == {"ws_url": "ws://x", "turns_per_user": "3"}

    memoize_default_args()
    parser_builds.clear()
    for _ in range(3):  # a ramp-up sends several spawn messages
        assert _spawn_message_filter(options) == unpatched
    assert len(parser_builds) == 1


def test_memoized_answer_is_the_same_and_each_call_gets_its_own_copy(
    parser_builds: list[int],
) -> None:
    original = argument_parser.default_args_dict()
    memoize_default_args()
    memoize_default_args()  # idempotent: still one build below
    parser_builds.clear()
    first = argument_parser.default_args_dict()
    first["scribbled"] = True
    second = argument_parser.default_args_dict()
    assert second == original
    assert "scribbled" not in second
    assert len(parser_builds) == 1
