"""Turn plans: speech frames from manifest boundaries, weighted scenarios, barge-in turns."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from loadtest.conversation import (
    ConversationConfig,
    GreetingMode,
    Scenario,
    TurnAudio,
    build_plan,
    choose_scenario,
)
from loadtest.errors import ConfigError, ManifestError


def audio(key: str = "a.pcm") -> TurnAudio:
    return TurnAudio(key=key, frame_count=100, speech_start_frame=10, eos_frame=79)


def test_speech_frames_from_manifest_boundaries() -> None:
    turn = TurnAudio.from_manifest(
        "t.pcm", duration_ms=2000, speech_start_ms=300, speech_end_ms=1600, chunk_ms=20
    )
    # on the 20 ms grid: EOS frame = speech_end_ms // chunk_ms - 1
    assert (turn.frame_count, turn.speech_start_frame, turn.eos_frame) == (100, 15, 79)
    off_grid = TurnAudio.from_manifest(
        "t.pcm", duration_ms=2005.5, speech_start_ms=310, speech_end_ms=1605, chunk_ms=20
    )
    # the frames that *contain* speech; the last frame is padded
    assert (off_grid.frame_count, off_grid.speech_start_frame, off_grid.eos_frame) == (
        101,
        15,
        80,
    )


def test_bounds_that_do_not_fit_are_a_manifest_error() -> None:
    with pytest.raises(ManifestError, match="bad.pcm"):
        TurnAudio.from_manifest("bad.pcm", duration_ms=1000, speech_start_ms=0, speech_end_ms=1200)
    with pytest.raises(ManifestError):
        TurnAudio(key="x", frame_count=10, speech_start_frame=6, eos_frame=5)
    with pytest.raises(ManifestError):
        TurnAudio.from_manifest("x", duration_ms=float("nan"), speech_start_ms=0, speech_end_ms=1)


def test_choose_scenario_by_weight() -> None:
    scenarios = [
        Scenario("never", (audio(),), weight=0.0),
        Scenario("rare", (audio(),), weight=1.0),
        Scenario("often", (audio(),), weight=3.0),
    ]
    rng = random.Random(11)
    picks = Counter(choose_scenario(scenarios, rng).name for _ in range(4000))
    assert picks["never"] == 0
    assert 0.70 < picks["often"] / 4000 < 0.80
    first = [choose_scenario(scenarios, random.Random(5)).name for _ in range(3)]
    assert len(set(first)) == 1  # same seed, same choice
    with pytest.raises(ConfigError):
        choose_scenario([Scenario("zero", (audio(),), weight=0.0)], rng)
    with pytest.raises(ConfigError):
        choose_scenario([], rng)


def test_plan_cycles_turns_and_draws_barges() -> None:
    scenario = Scenario("s", (audio("1.pcm"), audio("2.pcm"), audio("3.pcm")))
    whole = build_plan(scenario, ConversationConfig(barge_in_rate=0.0), random.Random(1))
    assert [t.audio.key for t in whole.turns] == ["1.pcm", "2.pcm", "3.pcm"]
    assert not any(t.barge for t in whole.turns)
    five = build_plan(
        scenario, ConversationConfig(turns_per_user=5, barge_in_rate=1.0), random.Random(1)
    )
    assert [t.audio.key for t in five.turns] == ["1.pcm", "2.pcm", "3.pcm", "1.pcm", "2.pcm"]
    assert [t.index for t in five.turns] == [0, 1, 2, 3, 4]
    assert [t.barge for t in five.turns] == [False, True, True, True, True]  # never turn 0
    greeting = build_plan(
        scenario,
        ConversationConfig(barge_in_rate=0.0, greeting=GreetingMode.BARGE),
        random.Random(1),
    )
    assert [t.barge for t in greeting.turns] == [True, False, False]  # turn 0 barges the greeting


def test_barge_share_follows_the_rate() -> None:
    scenario = Scenario("s", (audio(),))
    cfg = ConversationConfig(turns_per_user=2001, barge_in_rate=0.25)
    plan = build_plan(scenario, cfg, random.Random(2))
    share = sum(t.barge for t in plan.turns[1:]) / 2000
    assert 0.21 < share < 0.29


def test_chunks_per_turn_caps_speech_frames_from_speech_start() -> None:
    scenario = Scenario("s", (audio(),))
    capped = build_plan(scenario, ConversationConfig(chunks_per_turn=25), random.Random(0))
    turn = capped.turns[0]
    assert (turn.speech_start_frame, turn.eos_frame, turn.last_frame) == (10, 34, 34)
    loose = build_plan(scenario, ConversationConfig(chunks_per_turn=500), random.Random(0))
    turn = loose.turns[0]
    assert (turn.eos_frame, turn.last_frame) == (79, 99)  # uncut: trailing silence kept


def test_scenario_validation() -> None:
    with pytest.raises(ConfigError):
        Scenario("", (audio(),))
    with pytest.raises(ConfigError, match="no turns"):
        Scenario("empty", ())
    with pytest.raises(ConfigError, match="weight"):
        Scenario("neg", (audio(),), weight=-1.0)
