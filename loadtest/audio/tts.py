"""Text-to-speech engines behind one small interface.

Two engines implement :class:`TtsEngine`:

* ``espeak`` (default, offline) — espeak-ng from the ``espeakng-loader`` wheel,
  :mod:`loadtest.audio.tts_espeak`;
* ``azure`` — Azure AI Speech neural voices, :mod:`loadtest.audio.tts_azure`.

Both return signed 16-bit little-endian mono PCM at one of
:data:`loadtest.audio.pcm.SUPPORTED_RATES`. Pick one with :func:`make_engine`, passing the
environment in (the CLI passes ``os.environ``; this package never reads it itself), and check
it end to end with :func:`test_connection`.

Engine modules are imported on demand, so choosing ``espeak`` never loads the Azure Speech SDK.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Protocol

from loadtest.audio.pcm import SUPPORTED_RATES, duration_ms, rms_dbfs
from loadtest.errors import ConfigError, LoadtestError, TtsError

__all__ = [
    "DEFAULT_ENGINE",
    "ENGINE_NAMES",
    "MAX_RATE",
    "MIN_RATE",
    "TtsEngine",
    "check_request",
    "make_engine",
    "test_connection",
]

DEFAULT_ENGINE = "espeak"
ENGINE_NAMES = ("espeak", "azure")
MIN_RATE = 0.5
"""Slowest speaking-rate multiplier accepted (half the engine's normal rate)."""
MAX_RATE = 2.0
"""Fastest speaking-rate multiplier accepted (twice the engine's normal rate)."""

_TEST_PHRASE = "Hello, this is a voice load test connection check."
_SILENT_DBFS = -60.0


class TtsEngine(Protocol):
    """A speech synthesiser. Implementations must be safe to call from several threads.

    Attributes:
        name: engine name as :func:`make_engine` knows it (``"espeak"`` or ``"azure"``).
        default_voice: voice used when :meth:`synthesize` is called without one.
    """

    name: str
    default_voice: str

    def synthesize(
        self,
        text: str,
        *,
        voice: str | None = None,
        rate: float = 1.0,
        style: str | None = None,
        sample_rate: int = 16000,
    ) -> bytes:
        """Speak ``text`` and return PCM16 little-endian mono at ``sample_rate`` Hz.

        ``rate`` multiplies the engine's normal speaking rate (:data:`MIN_RATE` ..
        :data:`MAX_RATE`); ``style`` is a speaking style (e.g. ``"cheerful"``) for engines
        that have styles and is ignored by the others. Raises :class:`ConfigError` for a bad
        argument or unknown voice and :class:`TtsError` when synthesis fails.
        """
        ...

    def describe(self) -> str:
        """One line for logs: engine, target and default voice — never a secret."""
        ...


def check_request(text: str, rate: float, sample_rate: int) -> str:
    """Validate the arguments every engine shares; return ``text`` stripped.

    Raises :class:`ConfigError` for empty text, a rate outside :data:`MIN_RATE` ..
    :data:`MAX_RATE`, or a sample rate (Hz) not in :data:`SUPPORTED_RATES`.
    """
    stripped = text.strip()
    if not stripped:
        raise ConfigError("TTS text is empty; give each turn some words to speak")
    if "\x00" in stripped:
        raise ConfigError("TTS text contains a NUL character")
    if (
        isinstance(rate, bool)
        or not isinstance(rate, int | float)
        or not math.isfinite(rate)
        or not MIN_RATE <= rate <= MAX_RATE
    ):
        raise ConfigError(
            f"TTS rate {rate!r} is out of range (a multiplier from {MIN_RATE} to {MAX_RATE}; "
            "1.0 is the voice's normal speed)"
        )
    if sample_rate not in SUPPORTED_RATES:
        allowed = ", ".join(str(r) for r in SUPPORTED_RATES)
        raise ConfigError(f"TTS sample rate {sample_rate!r} Hz is not supported ({allowed})")
    return stripped


def make_engine(name: str, env: Mapping[str, str]) -> TtsEngine:
    """Build the engine called ``name`` (case-insensitive) from settings in ``env``.

    ``env`` is the environment to read credentials from (the CLI passes ``os.environ``).
    Construction never touches the network; credentials are used on first synthesis.
    Raises :class:`ConfigError` for an unknown name or missing/invalid settings.
    """
    key = name.strip().lower()
    if key == "espeak":
        from loadtest.audio.tts_espeak import EspeakEngine

        return EspeakEngine()
    if key == "azure":
        from loadtest.audio.tts_azure import AzureEngine

        return AzureEngine.from_env(env)
    raise ConfigError(f"unknown TTS engine {name!r} (allowed: {', '.join(ENGINE_NAMES)})")


def test_connection(engine: TtsEngine) -> str:
    """Synthesise one short phrase and return a one-line success message.

    Raises :class:`TtsError` with the reason when synthesis fails or returns silence, and
    lets :class:`ConfigError` (bad settings, unknown voice) through unchanged.
    """
    started_ns = time.perf_counter_ns()
    try:
        pcm = engine.synthesize(_TEST_PHRASE, sample_rate=16000)
    except (ConfigError, TtsError):
        raise
    except LoadtestError as exc:
        raise TtsError(f"{engine.name}: {exc}") from exc
    elapsed_ms = (time.perf_counter_ns() - started_ns) / 1e6
    if not pcm or len(pcm) % 2:
        raise TtsError(f"{engine.name}: returned {len(pcm)} bytes, not 16-bit PCM audio")
    level = rms_dbfs(pcm)
    if level < _SILENT_DBFS:
        raise TtsError(
            f"{engine.name}: the test phrase came back silent ({level:.1f} dBFS RMS); "
            "check the voice and the engine settings"
        )
    return (
        f"{engine.name} OK: {duration_ms(pcm, 16000):.0f} ms of speech at 16000 Hz "
        f"in {elapsed_ms:.0f} ms, {level:.1f} dBFS RMS — {engine.describe()}"
    )


# Not a pytest test despite the name.
test_connection.__test__ = False  # type: ignore[attr-defined]
