from __future__ import annotations

import re
from pathlib import Path

import pytest

from loadtest.audio.scenarios import (
    BUILTIN_SCENARIOS,
    load_scenarios,
    parse_scenarios,
    played_weights,
    select_scenarios,
)
from loadtest.errors import ConfigError


def test_builtin_scenarios_have_the_specified_turns() -> None:
    insurance = BUILTIN_SCENARIOS["insurance_inquiry"].turns
    quick = BUILTIN_SCENARIOS["quick_question"].turns
    assert len(insurance) == 5 and len(quick) == 3
    assert insurance[0].text.startswith("Hello, my name is Alice Brown")
    assert insurance[3].text == "What happens if I get into an accident?"
    assert quick[1].text == "Can you help me check my account balance?"


def test_user_file_adds_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "scenarios:\n"
        "  - name: billing\n    weight: 2\n    turns:\n"
        "      - text: I was charged twice\n        voice: en-gb\n        rate: 1.2\n"
        "      - Can you refund one?\n"
        "  - name: quick_question\n    turns: [Just one thing]\n"
    )
    scenarios = load_scenarios(path)
    assert scenarios["billing"].weight == 2.0
    assert scenarios["billing"].turns[0].voice == "en-gb"
    assert scenarios["billing"].turns[1].text == "Can you refund one?"
    assert [t.text for t in scenarios["quick_question"].turns] == ["Just one thing"]
    assert "insurance_inquiry" in scenarios


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("scenarios: [\n", r"f.yaml: malformed YAML at line \d"),
        ("other: 1\n", "top-level 'scenarios:'"),
        ("scenarios:\n  - name: Bad Name\n    turns: [hi]\n", r"scenarios\[0\].name"),
        ("scenarios:\n  - name: a\n    weight: 0\n    turns: [hi]\n", r"\[a\].weight"),
        ("scenarios:\n  - name: a\n    turns: []\n", r"\[a\].turns: must be a non-empty"),
        ("scenarios:\n  - name: a\n    turns: [{text: ''}]\n", r"\[a\].turns\[0\].text"),
        ("scenarios:\n  - name: a\n    turns: [{text: hi, rate: 9}]\n", r"turns\[0\].rate"),
        ("scenarios:\n  - name: a\n    turns: [{text: hi, pitch: 2}]\n", "unknown field.*pitch"),
        ("scenarios:\n  - name: a\n    turns: [hi]\n  - name: a\n    turns: [x]\n", "twice"),
    ],
)
def test_validation_names_file_scenario_and_field(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_scenarios(text, source="f.yaml")
    assert str(info.value).startswith("f.yaml")


def test_select_unknown_scenario_lists_known_ones() -> None:
    with pytest.raises(ConfigError, match="unknown scenario 'nope'.*insurance_inquiry"):
        select_scenarios(BUILTIN_SCENARIOS, ["nope"])
    assert [s.name for s in select_scenarios(BUILTIN_SCENARIOS, [])] == list(BUILTIN_SCENARIOS)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read scenarios file"):
        load_scenarios(tmp_path / "absent.yaml")


def test_played_weights_come_from_the_file_when_the_cache_matches() -> None:
    wanted = parse_scenarios(
        "scenarios:\n  - name: quick_question\n    weight: 3\n    turns:\n"
        "      - Hi there, I have a quick question\n"
        "      - Can you help me check my account balance?\n"
        "      - Thanks, that's all I needed to know\n",
        source="s.yaml",
    )
    cached = {
        name: [turn.text for turn in scenario.turns] for name, scenario in BUILTIN_SCENARIOS.items()
    }
    assert played_weights(wanted, cached, source="s.yaml") == {"quick_question": 3.0}


@pytest.mark.parametrize(
    ("cached", "message"),
    [
        ({"other": ["Hello"]}, "'quick_question' has no audio in the cache (has: other)"),
        ({"quick_question": ["Hi there"]}, "'quick_question' differs from its audio"),
    ],
)
def test_played_weights_refuse_audio_of_another_file(
    cached: dict[str, list[str]], message: str
) -> None:
    wanted = {"quick_question": BUILTIN_SCENARIOS["quick_question"]}
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        played_weights(wanted, cached, source="s.yaml")
    assert "generate-audio --scenarios-file s.yaml" in str(info.value)


def test_the_run_plays_the_scenarios_file(tmp_path: Path) -> None:
    from loadtest.audio.cache import load_cache
    from loadtest.audio.generate import GenerateOptions, generate_audio
    from loadtest.runtime.library import AudioLibrary
    from loadtest.settings import parse_settings
    from tests.signals import ToneEngine

    cache_dir = tmp_path / "cache"
    generate_audio(
        list(BUILTIN_SCENARIOS.values()), ToneEngine(), GenerateOptions(out_dir=cache_dir)
    )
    chosen = tmp_path / "scenarios.yaml"
    quick = BUILTIN_SCENARIOS["quick_question"]
    chosen.write_text(
        "scenarios:\n  - name: quick_question\n    weight: 2.5\n    turns:\n"
        + "".join(f"      - {turn.text!r}\n" for turn in quick.turns)
    )
    cache = load_cache(cache_dir)
    settings = parse_settings({"PCM_DIR": str(cache_dir), "SCENARIOS_FILE": str(chosen)})
    library = AudioLibrary.from_cache(cache, settings)
    assert [(s.name, s.weight) for s in library.scenarios] == [("quick_question", 2.5)]
    assert library.cache == cache.identity
    everything = AudioLibrary.from_cache(cache, parse_settings({"PCM_DIR": str(cache_dir)}))
    assert {s.name for s in everything.scenarios} == set(BUILTIN_SCENARIOS)
    outside = parse_settings(
        {"PCM_DIR": str(cache_dir), "SCENARIOS_FILE": str(chosen),
         "SCENARIO_WEIGHTS": "insurance_inquiry=1"}
    )  # fmt: skip
    with pytest.raises(ConfigError, match="not in SCENARIOS_FILE"):
        AudioLibrary.from_cache(cache, outside)
    missing = parse_settings({"PCM_DIR": str(cache_dir), "SCENARIOS_FILE": str(tmp_path / "x")})
    with pytest.raises(ConfigError, match="SCENARIOS_FILE=.*cannot read it"):
        AudioLibrary.from_cache(cache, missing)
