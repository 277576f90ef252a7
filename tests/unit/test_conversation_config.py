"""ConversationConfig validates once and names the field, the value and what is allowed."""

from __future__ import annotations

import pytest

from loadtest.conversation import ConversationConfig, GreetingMode
from loadtest.errors import ConfigError


def test_defaults_match_the_seed_knobs() -> None:
    cfg = ConversationConfig()
    assert cfg.chunk_ms == 20 and cfg.first_byte_timeout_ms == 5000
    assert cfg.barge_quiet_ms == 400 and cfg.barge_after_ms == 1000
    assert cfg.greeting is GreetingMode.WAIT and cfg.greeting_wait_ms == 5000
    assert ConversationConfig(greeting_timeout_ms=1200).greeting_wait_ms == 1200


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("chunk_ms", 0),
        ("first_byte_timeout_ms", 0),
        ("barge_quiet_ms", 20),
        ("barge_in_rate", 1.5),
        ("barge_in_rate", float("nan")),
        ("barge_after_ms", -1),
        ("chunks_per_turn", -1),
        ("turns_per_user", -2),
        ("greeting", "wait"),
        ("greeting_timeout_ms", 0),
        ("max_tail_ms", 1000),
        ("agent_sample_rate", 44_100),
    ],
)
def test_bad_values_name_the_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        ConversationConfig(**{field: value})  # type: ignore[arg-type]
