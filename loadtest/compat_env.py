"""The accelerator's load-test variables: honoured with their meaning, or refused (core: pure).

Users come from the Locust files of Azure-Samples/art-voice-agent-accelerator with their
environment set up. Most of its variables are this tool's own settings under the same name
(``WS_URL``, ``PCM_DIR``, ``CHUNK_MS``, ``TURN_TIMEOUT_SEC``, ``PAUSE_BETWEEN_TURNS_SEC``,
``SAMPLE_RATE``…, in :data:`loadtest.settings.SETTINGS`). The others are listed here: each
either sets the setting that means the same (:attr:`CompatVariable.sets`, converted to its
unit), or — where this tool works differently — stops the run with one line that says what to
use instead. None is ignored in silence: a user who set one expects it to do something.

:func:`translate_compat` takes the raw name → string mapping the settings are parsed from.
A variable and the setting it sets may both be given only with the same value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from loadtest.errors import ConfigError

__all__ = ["COMPAT_VARIABLES", "CompatVariable", "translate_compat"]


@dataclass(frozen=True, slots=True)
class CompatVariable:
    """One accelerator variable that is not a setting of this tool under its own name.

    ``sets``: the setting it becomes, its value × ``scale`` (``None``: refused, unless it has
    the ``only`` value — the one thing this tool does anyway). ``instead``: what to use.
    """

    name: str
    sets: str | None = None
    scale: int = 1
    only: str | None = None
    instead: str = ""


COMPAT_VARIABLES: dict[str, CompatVariable] = {
    v.name: v
    for v in (
        # The accelerator retried only TLS and close errors this often; RECONNECT_MAX retries
        # any failed connect, the same number of times after the first.
        CompatVariable("WS_MAX_SSL_FAILS", sets="RECONNECT_MAX"),
        CompatVariable("WS_RECONNECT_BACKOFF_BASE_SEC", sets="RECONNECT_BASE_DELAY_MS", scale=1000),
        CompatVariable("WS_RECONNECT_BACKOFF_MAX_SEC", sets="RECONNECT_MAX_DELAY_MS", scale=1000),
        CompatVariable("BARGE_REENTRY_MS", sets="BARGE_AFTER_MS"),
        CompatVariable(
            "WS_RECONNECT_BACKOFF_FACTOR",
            instead="the reconnect wait doubles (with jitter) from RECONNECT_BASE_DELAY_MS up "
            "to RECONNECT_MAX_DELAY_MS; set those",
        ),
        CompatVariable(
            "BYTES_PER_SAMPLE", only="2", instead="the caller audio is 16-bit PCM (use 2)"
        ),
        CompatVariable("CHANNELS", only="1", instead="the caller audio is mono (use 1)"),
        CompatVariable(
            "BARGE_CHUNKS",
            instead="a barge-in turn streams its whole utterance; CHUNKS_PER_TURN caps every "
            "turn's speech frames",
        ),
        CompatVariable(
            "TURN_DURATION_SEC",
            instead="a turn is its recorded utterance; CHUNKS_PER_TURN caps its speech frames",
        ),
        CompatVariable(
            "MIN_CONVERSATION_DURATION_SEC",
            instead="a call lasts TURNS_PER_USER turns (0: every turn of its scenario)",
        ),
        CompatVariable(
            "WS_OPERATION_TIMEOUT_SEC",
            instead="FIRST_BYTE_TIMEOUT_SEC bounds the wait for an answer and TURN_TIMEOUT_SEC "
            "a whole turn",
        ),
    )
}


def _converted(variable: CompatVariable, raw: str) -> str:
    if variable.scale == 1:
        return raw.strip()
    try:
        value = float(raw.strip()) * variable.scale
    except ValueError:
        raise ConfigError(
            f"{variable.name}={raw!r} is invalid: expected a number (it sets {variable.sets})"
        ) from None
    return str(round(value))


def translate_compat(
    raw: Mapping[str, str | None],
) -> tuple[dict[str, str | None], dict[str, str]]:
    """``raw`` with each accelerator variable in it turned into the setting it sets, and
    setting → the ``NAME=value`` it came from (for error messages).

    Raises :class:`ConfigError` (one line) for a refused variable, or for a variable whose
    setting is also given with another value.
    """
    out = dict(raw)
    origins: dict[str, str] = {}
    for name, variable in COMPAT_VARIABLES.items():
        text = out.pop(name, None)
        if text is None:
            continue
        if variable.sets is None:
            if variable.only is not None and text.strip() == variable.only:
                continue
            raise ConfigError(f"{name}={text!r} is not supported here: {variable.instead}")
        value = _converted(variable, text)
        given = out.get(variable.sets)
        if given is not None and given.strip() != value:
            raise ConfigError(
                f"{name}={text!r} and {variable.sets}={given!r} disagree; set only {variable.sets}"
            )
        out[variable.sets] = value
        origins[variable.sets] = f"{name}={text!r}"
    return out, origins
