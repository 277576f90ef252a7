"""Turn-taking: at which slot the caller speaks again (pure decisions on instants).

The caller's next turn starts at the first frame slot at which one of these holds:

* the agent's audio is over: no agent audio for ``barge_quiet_ms`` *and* the playback buffer
  ran dry (an agent that bursts 5 s of audio in 200 ms is heard for 5 s), and then
  ``pause_between_turns_ms`` passed (before turn 0 no pause: the greeting is not a turn);
* for a barge-in turn: ``barge_after_ms`` passed since the answer's first audio and the
  answer is still going (if it is already over, the turn starts normally: nothing to barge);
* no answer within ``first_byte_timeout_ms`` of EOS (a TTFB timeout), plus the pause;
* ``max_tail_ms`` after EOS (after the greeting's first audio), whatever the agent is doing.
"""

from __future__ import annotations

from dataclasses import dataclass

from loadtest.conversation.config import ConversationConfig
from loadtest.conversation.tracks import TurnState

__all__ = ["Handoff", "TurnTaking"]

_NS_PER_MS = 1_000_000


@dataclass(frozen=True, slots=True)
class Handoff:
    """The current answer (or greeting) gives way to the next turn at this slot.

    ``barge``: the next turn interrupts it; ``ended_ns``: when it ended for the caller (the
    playback end, the timeout, or the slot when cut); ``truncated``: cut by ``max_tail_ms``.
    """

    barge: bool
    ended_ns: int
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class TurnTaking:
    """The turn-taking rules with the configured durations, in ns."""

    quiet_ns: int
    barge_after_ns: int
    timeout_ns: int
    max_tail_ns: int
    greeting_wait_ns: int
    pause_ns: int = 0

    @classmethod
    def from_config(cls, config: ConversationConfig) -> TurnTaking:
        return cls(
            quiet_ns=config.barge_quiet_ms * _NS_PER_MS,
            barge_after_ns=config.barge_after_ms * _NS_PER_MS,
            timeout_ns=config.first_byte_timeout_ms * _NS_PER_MS,
            max_tail_ns=config.max_tail_ms * _NS_PER_MS,
            greeting_wait_ns=config.greeting_wait_ms * _NS_PER_MS,
            pause_ns=config.pause_between_turns_ms * _NS_PER_MS,
        )

    def quiet_at_ns(self, last_audio_ns: int | None, playback_end_ns: int) -> int:
        """From when the agent counts as quiet: no audio for ``quiet_ns``, buffer dry."""
        if last_audio_ns is None:
            return playback_end_ns
        return max(playback_end_ns, last_audio_ns + self.quiet_ns)

    def after_answer(
        self,
        first_ns: int,
        due_ns: int,
        *,
        barge_next: bool,
        quiet_at_ns: int,
        playback_end_ns: int,
        pause_ns: int = 0,
    ) -> Handoff | None:
        """Whether the answer whose first audio arrived at ``first_ns`` gives way at ``due_ns``
        (a normal turn ``pause_ns`` after the agent went quiet)."""
        if barge_next and due_ns >= first_ns + self.barge_after_ns and due_ns < quiet_at_ns:
            return Handoff(barge=True, ended_ns=due_ns)
        if due_ns >= quiet_at_ns + pause_ns:
            return Handoff(barge=False, ended_ns=playback_end_ns)
        return None

    def after_greeting(
        self,
        start_ns: int,
        first_ns: int | None,
        due_ns: int,
        *,
        barge_next: bool,
        quiet_at_ns: int,
        playback_end_ns: int,
    ) -> Handoff | None:
        """Whether turn 0 starts at ``due_ns`` (``first_ns``: the greeting's first audio)."""
        if first_ns is None:
            if due_ns >= start_ns + self.greeting_wait_ns:
                return Handoff(barge=False, ended_ns=due_ns)
            return None
        handoff = self.after_answer(
            first_ns,
            due_ns,
            barge_next=barge_next,
            quiet_at_ns=quiet_at_ns,
            playback_end_ns=playback_end_ns,
        )
        if handoff is None and due_ns >= first_ns + self.max_tail_ns:
            return Handoff(barge=False, ended_ns=due_ns, truncated=True)
        return handoff

    def after_turn(
        self,
        turn: TurnState,
        due_ns: int,
        *,
        barge_next: bool,
        quiet_at_ns: int,
        playback_end_ns: int,
    ) -> Handoff | None:
        """Whether the turn after ``turn`` (EOS sent) starts at ``due_ns``."""
        eos_ns = turn.eos_ns
        if eos_ns is None:
            return None
        handoff: Handoff | None = None
        if turn.answer is not None:
            handoff = self.after_answer(
                turn.answer.first_ns,
                due_ns,
                barge_next=barge_next,
                quiet_at_ns=quiet_at_ns,
                playback_end_ns=playback_end_ns,
                pause_ns=self.pause_ns,
            )
        elif turn.timed_out:
            timed_out_ns = eos_ns + self.timeout_ns
            if due_ns >= timed_out_ns + self.pause_ns:
                return Handoff(barge=False, ended_ns=timed_out_ns)
        elif turn.ambiguous and due_ns >= quiet_at_ns + self.pause_ns:
            return Handoff(barge=False, ended_ns=playback_end_ns)
        if handoff is None and due_ns >= eos_ns + self.max_tail_ns:
            return Handoff(barge=False, ended_ns=due_ns, truncated=True)
        return handoff
