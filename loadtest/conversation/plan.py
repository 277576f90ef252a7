"""Turn plans: which recorded utterances a caller speaks, in which order, and when it barges.

Pure: the manifest reader (an edge) turns each PCM file's speech boundaries into a
:class:`TurnAudio`; a :class:`random.Random` passed in picks the scenario by weight
(:func:`choose_scenario`) and the turns that barge in (:func:`build_plan`). Same seed, same
plan.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from loadtest.conversation.config import ConversationConfig, GreetingMode
from loadtest.errors import ConfigError, ManifestError

__all__ = ["PlannedTurn", "Scenario", "TurnAudio", "TurnPlan", "build_plan", "choose_scenario"]


@dataclass(frozen=True, slots=True)
class TurnAudio:
    """One recorded utterance on the caller's frame grid.

    Attributes:
        key: names the PCM file; the edge maps it to the file's pre-encoded frames.
        frame_count: frames in the file (the last one padded with silence).
        speech_start_frame: index of the first frame that contains speech.
        eos_frame: index of the last frame that contains speech; its send instant is the
            end of speech (EOS).
    """

    key: str
    frame_count: int
    speech_start_frame: int
    eos_frame: int

    def __post_init__(self) -> None:
        if self.frame_count < 1 or not (
            0 <= self.speech_start_frame <= self.eos_frame < self.frame_count
        ):
            raise ManifestError(
                f"{self.key}: speech frames {self.speech_start_frame}..{self.eos_frame} do not "
                f"fit in {self.frame_count} frames; regenerate the audio cache"
            )

    @classmethod
    def from_manifest(
        cls,
        key: str,
        *,
        duration_ms: float,
        speech_start_ms: float,
        speech_end_ms: float,
        chunk_ms: int = 20,
    ) -> TurnAudio:
        """Build from the manifest's speech boundaries (milliseconds from the file start).

        The boundaries belong to the recording (decided once at the cache's rate), and every
        wire format sends frame k with the recording's ``[k, k+1) × chunk_ms``, so this one
        mapping holds for every codec, rate and frame length. The speech-start frame is the
        one containing ``speech_start_ms``; the EOS frame is the last frame any part of which
        lies before ``speech_end_ms``: ``ceil(speech_end_ms / chunk_ms) - 1`` (on the grid,
        ``speech_end_ms // chunk_ms - 1``).
        """
        if chunk_ms <= 0:
            raise ConfigError(f"chunk_ms={chunk_ms} is not allowed (a positive number)")
        grid_us = chunk_ms * 1000
        frame_count = -(-_us(duration_ms) // grid_us)
        start = _us(speech_start_ms) // grid_us
        eos = -(-_us(speech_end_ms) // grid_us) - 1
        return cls(key=key, frame_count=frame_count, speech_start_frame=start, eos_frame=eos)


def _us(value_ms: float) -> int:
    if not math.isfinite(value_ms):
        raise ManifestError(f"speech boundary {value_ms!r} ms is not a finite number")
    return round(value_ms * 1000)


@dataclass(frozen=True, slots=True)
class Scenario:
    """A named conversation: its utterances in order and its weight among scenarios."""

    name: str
    turns: tuple[TurnAudio, ...]
    weight: float = 1.0

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("a scenario has an empty name")
        if not self.turns:
            raise ConfigError(f"scenario {self.name!r} has no turns (no audio in the manifest)")
        if not (math.isfinite(self.weight) and self.weight >= 0.0):
            raise ConfigError(
                f"scenario {self.name!r} weight={self.weight!r} is not allowed (a number >= 0)"
            )


@dataclass(frozen=True, slots=True)
class PlannedTurn:
    """One turn as the caller will speak it.

    Attributes:
        index: position in the conversation, from 0.
        scenario: the scenario's name (for per-scenario breakdowns).
        audio: the utterance.
        barge: the turn is scheduled to start while the previous answer (turn 0: the
            greeting) is still playing.
        speech_start_frame: first speech frame (copied from ``audio``).
        eos_frame: last speech frame sent, after the ``chunks_per_turn`` cap.
        last_frame: last file frame sent: the file's last frame, or ``eos_frame`` when the
            cap cut the utterance (a cut utterance has no trailing silence).
    """

    index: int
    scenario: str
    audio: TurnAudio
    barge: bool
    speech_start_frame: int
    eos_frame: int
    last_frame: int


@dataclass(frozen=True, slots=True)
class TurnPlan:
    """The turns of one conversation, in order (never empty)."""

    scenario: str
    turns: tuple[PlannedTurn, ...]

    def __post_init__(self) -> None:
        if not self.turns:
            raise ConfigError(f"the plan for scenario {self.scenario!r} has no turns")


def choose_scenario(scenarios: Sequence[Scenario], rng: random.Random) -> Scenario:
    """Pick one scenario with probability proportional to its weight (one ``rng`` draw)."""
    total = math.fsum(s.weight for s in scenarios)
    if not scenarios or total <= 0.0:
        raise ConfigError("no scenario has a positive weight; nothing to run")
    point = rng.random() * total
    running = 0.0
    for scenario in scenarios:
        running += scenario.weight
        if point < running and scenario.weight > 0.0:
            return scenario
    return next(s for s in reversed(scenarios) if s.weight > 0.0)  # float round-off at the top


def build_plan(scenario: Scenario, config: ConversationConfig, rng: random.Random) -> TurnPlan:
    """The conversation one caller will have.

    ``config.turns_per_user`` turns (0: the scenario's turns once), cycling through the
    scenario's utterances in order. Turn 0 barges into the greeting when
    ``config.greeting`` is :attr:`GreetingMode.BARGE`; every later turn barges with
    probability ``config.barge_in_rate`` (one ``rng.random()`` draw per later turn, whatever
    the rate, so changing the rate does not reshuffle other random choices).
    """
    count = config.turns_per_user or len(scenario.turns)
    turns = []
    for index in range(count):
        audio = scenario.turns[index % len(scenario.turns)]
        if index == 0:
            barge = config.greeting is GreetingMode.BARGE
        else:
            barge = rng.random() < config.barge_in_rate
        eos, last = audio.eos_frame, audio.frame_count - 1
        if config.chunks_per_turn:
            cut = audio.speech_start_frame + config.chunks_per_turn - 1
            if cut < eos:
                eos = last = cut
        turns.append(
            PlannedTurn(
                index=index,
                scenario=scenario.name,
                audio=audio,
                barge=barge,
                speech_start_frame=audio.speech_start_frame,
                eos_frame=eos,
                last_frame=last,
            )
        )
    return TurnPlan(scenario=scenario.name, turns=tuple(turns))
