"""Scenarios: what each simulated caller says, turn by turn.

Two are built in (``insurance_inquiry``, ``quick_question``). Users add their own in a YAML
file (``--scenarios-file``)::

    scenarios:
      - name: billing_dispute        # [a-z0-9_], unique
        weight: 2                    # relative share of callers (> 0), default 1
        turns:
          - text: "Hi, I was charged twice this month"
            voice: en-US-AvaNeural   # optional, engine-specific; default: the engine's voice
            rate: 1.1                # optional speaking-rate multiplier 0.5..2.0
            style: customerservice   # optional (Azure only)
          - text: "Can you refund one of them?"

A scenario in the file with a built-in's name replaces the built-in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from loadtest.errors import ConfigError

__all__ = [
    "BUILTIN_SCENARIOS",
    "Scenario",
    "Turn",
    "load_scenarios",
    "parse_scenarios",
    "played_weights",
    "select_scenarios",
]

_NAME = re.compile(r"^[a-z0-9][a-z0-9_]{0,63}$")
_TURN_KEYS = {"text", "voice", "rate", "style"}
_SCENARIO_KEYS = {"name", "weight", "turns"}


@dataclass(frozen=True, slots=True)
class Turn:
    """One caller utterance. ``rate`` is a speaking-rate multiplier (1.0 = normal)."""

    text: str
    voice: str | None = None
    rate: float | None = None
    style: str | None = None


@dataclass(frozen=True, slots=True)
class Scenario:
    """A named conversation: its turns in order and its relative weight among callers."""

    name: str
    turns: tuple[Turn, ...]
    weight: float = 1.0


BUILTIN_SCENARIOS: Mapping[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "insurance_inquiry",
            (
                Turn("Hello, my name is Alice Brown, my social is 1234, and my zip code is 60601"),
                Turn("I'm calling about my auto insurance policy"),
                Turn("I need to understand what's covered under my current plan"),
                Turn("What happens if I get into an accident?"),
                Turn("Thank you for all the information, that's very helpful"),
            ),
        ),
        Scenario(
            "quick_question",
            (
                Turn("Hi there, I have a quick question"),
                Turn("Can you help me check my account balance?"),
                Turn("Thanks, that's all I needed to know"),
            ),
        ),
    )
}


def _turn(raw: Any, where: str) -> Turn:
    if isinstance(raw, str):
        raw = {"text": raw}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: a turn must be a mapping with 'text' or a string")
    unknown = sorted(set(raw) - _TURN_KEYS)
    if unknown:
        raise ConfigError(
            f"{where}: unknown field(s) {', '.join(unknown)} (allowed: text, voice, rate, style)"
        )
    text = raw.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"{where}.text: must be a non-empty string")
    rate = raw.get("rate")
    if rate is not None and (
        isinstance(rate, bool) or not isinstance(rate, int | float) or not 0.5 <= rate <= 2.0
    ):
        raise ConfigError(f"{where}.rate: {rate!r} is not a number from 0.5 to 2.0")
    for key in ("voice", "style"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise ConfigError(f"{where}.{key}: must be a string")
    return Turn(
        text.strip(), raw.get("voice"), None if rate is None else float(rate), raw.get("style")
    )


def _scenario(raw: Any, where: str) -> Scenario:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: a scenario must be a mapping with name, weight, turns")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"{where}.name: {name!r} must match [a-z0-9_] (1-64 chars)")
    where = f"{where.rsplit('[', 1)[0]}[{name}]"
    unknown = sorted(set(raw) - _SCENARIO_KEYS)
    if unknown:
        raise ConfigError(
            f"{where}: unknown field(s) {', '.join(unknown)} (allowed: name, weight, turns)"
        )
    weight = raw.get("weight", 1)
    if isinstance(weight, bool) or not isinstance(weight, int | float) or weight <= 0:
        raise ConfigError(f"{where}.weight: {weight!r} must be a number > 0")
    turns = raw.get("turns")
    if not isinstance(turns, list) or not turns:
        raise ConfigError(f"{where}.turns: must be a non-empty list")
    return Scenario(
        name, tuple(_turn(t, f"{where}.turns[{i}]") for i, t in enumerate(turns)), float(weight)
    )


def parse_scenarios(text: str, *, source: str) -> dict[str, Scenario]:
    """Parse a scenarios YAML document; errors name ``source``, the scenario and the field."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{source}: malformed YAML{at}: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("scenarios"), list):
        raise ConfigError(f"{source}: expected a top-level 'scenarios:' list")
    parsed: dict[str, Scenario] = {}
    for index, raw in enumerate(document["scenarios"]):
        scenario = _scenario(raw, f"{source}: scenarios[{index}]")
        if scenario.name in parsed:
            raise ConfigError(f"{source}: scenario {scenario.name!r} is defined twice")
        parsed[scenario.name] = scenario
    return parsed


def load_scenarios(path: Path | None = None) -> dict[str, Scenario]:
    """The built-in scenarios, overlaid with those of the YAML file at ``path`` if given."""
    scenarios = dict(BUILTIN_SCENARIOS)
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read scenarios file {path}: {exc.strerror}") from exc
        scenarios.update(parse_scenarios(text, source=str(path)))
    return scenarios


def select_scenarios(available: Mapping[str, Scenario], names: Iterable[str]) -> list[Scenario]:
    """The scenarios named in ``names`` (all when empty); unknown names raise ConfigError."""
    wanted = list(names)
    if not wanted:
        return list(available.values())
    unknown = [n for n in wanted if n not in available]
    if unknown:
        raise ConfigError(
            f"unknown scenario {', '.join(map(repr, unknown))} "
            f"(known: {', '.join(sorted(available))})"
        )
    return [available[n] for n in wanted]


def played_weights(
    wanted: Mapping[str, Scenario], cached: Mapping[str, Sequence[str]], *, source: str
) -> dict[str, float]:
    """Name → weight of the scenarios a run plays from a scenarios file (``SCENARIOS_FILE``).

    ``cached`` maps each scenario of the audio cache to its turn texts in order. Every
    scenario of ``wanted`` must be there with the same texts: audio made from another version
    of the file would be played under this file's name. Raises :class:`ConfigError` naming
    the first scenario that is missing or differs.
    """
    for name, scenario in wanted.items():
        regenerate = f"run `voice-loadtest generate-audio --scenarios-file {source}`"
        if name not in cached:
            raise ConfigError(
                f"{source}: scenario {name!r} has no audio in the cache (has: "
                f"{', '.join(sorted(cached)) or 'nothing'}); {regenerate}"
            )
        texts = tuple(turn.text for turn in scenario.turns)
        if tuple(cached[name]) != texts:
            raise ConfigError(
                f"{source}: scenario {name!r} differs from its audio in the cache "
                f"({len(texts)} turn(s) in the file, {len(cached[name])} cached, or other "
                f"words); {regenerate}"
            )
    return {name: scenario.weight for name, scenario in wanted.items()}
