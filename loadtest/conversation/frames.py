"""What the conversation engine hands the edge to send, and where the conversation is."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Frame", "FrameKind", "Phase"]


class Phase(enum.Enum):
    """Where a conversation is (derived from its state; for the edge's logs and tests)."""

    NOT_STARTED = "not_started"
    GREETING = "greeting"  # before turn 0: waiting for / hearing the agent's greeting
    SPEAKING = "speaking"  # sending a turn's recording, EOS not yet sent
    AWAITING_ANSWER = "awaiting_answer"  # EOS sent, no answer yet (or it timed out)
    ANSWERING = "answering"  # the answer is arriving / playing
    DONE = "done"


class FrameKind(enum.Enum):
    UTTERANCE = "utterance"  # frame ``index`` of the recording ``audio_key``
    TAIL = "tail"  # comfort noise (before turn 0, and after a recording until the next turn)


@dataclass(slots=True)
class Frame:
    """One caller frame to send. Read-only by contract: not ``frozen`` because one is built
    for every frame sent, and a frozen dataclass's ``__init__`` pays an ``object.__setattr__``
    call per field (measured: 3.3 µs against 1.2 µs to build one).

    Attributes:
        slot: position on the conversation's grid, from 0.
        due_ns: when it should leave (``start + slot × chunk_ms``).
        kind: a frame of a recording, or comfort noise.
        turn_index: the turn it belongs to; -1 before turn 0.
        audio_key: the recording (UTTERANCE; :attr:`TurnAudio.key
            <loadtest.conversation.plan.TurnAudio.key>`), else ``None``.
        index: UTTERANCE: frame index in the recording; TAIL: running count of tail frames in
            this conversation (cycle pre-generated noise frames with it).
        speech: the frame contains caller speech (speech start .. EOS frame); leading and
            trailing silence of a recording are UTTERANCE frames with ``speech`` false.
        first_speech: the first speech frame; its send instant is the barge-in reference.
        eos: the last speech frame; its send instant is the end of speech.
    """

    slot: int
    due_ns: int
    kind: FrameKind
    turn_index: int
    audio_key: str | None
    index: int
    speech: bool = False
    first_speech: bool = False
    eos: bool = False
