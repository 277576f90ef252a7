"""One espeak-ng synthesis in a fresh process: the child side of :mod:`loadtest.audio.tts_espeak`.

Why a process per synthesis: libespeak-ng keeps synthesis state in C statics that neither
``espeak_Terminate`` + ``espeak_Initialize`` nor ``espeak_ng_SetRandSeed`` reset (the pitch
flutter index in ``wavegen.c`` and the glottal cycle counter). The second synthesis of a text in
a process therefore differs from the first by a few samples, while the *first* synthesis of a
fresh process is the same bytes every time. A fresh interpreter costs ~15 ms.

Run as a script with the standard library only (``python -I -S tts_espeak_worker.py LIB DATA
VOICE WPM``), UTF-8 text on stdin. On success it writes a 4-byte little-endian sample rate in Hz
followed by PCM16 little-endian mono to stdout and exits 0. On failure it writes one line to
stderr and exits with :data:`EXIT_UNKNOWN_VOICE` or :data:`EXIT_FAILED`.

Values below are from espeak-ng's ``speak_lib.h`` (API revision 12).
"""

from __future__ import annotations

import ctypes
import struct
import sys
from array import array

__all__ = ["EXIT_FAILED", "EXIT_UNKNOWN_VOICE", "main", "synthesize_once"]

EXIT_FAILED = 1
EXIT_UNKNOWN_VOICE = 3

_AUDIO_OUTPUT_SYNCHRONOUS = 2  # enum espeak_AUDIO_OUTPUT: PLAYBACK=0, RETRIEVAL=1, SYNCHRONOUS=2
_INITIALIZE_DONT_EXIT = 0x8000  # without it a missing data directory calls exit() in the library
_CHARS_UTF8 = 1  # espeakCHARS_UTF8
_ENDPAUSE = 0x1000  # espeakENDPAUSE: end with a sentence pause, not mid-waveform
_POS_CHARACTER = 1
_PARAM_RATE = 1  # espeak_PARAMETER espeakRATE, words per minute (80..450)
_EE_OK = 0

_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p)


class _Voice(ctypes.Structure):
    """``espeak_VOICE``: only ``languages`` is set, to select a voice by language."""

    _fields_ = (
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_char_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    )


class WorkerError(Exception):
    """A failure with the exit code that reports it to the parent."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def synthesize_once(
    lib_path: str, data_path: str, voice: str, wpm: int, text: bytes
) -> tuple[int, bytes]:
    """Synthesise UTF-8 ``text`` and return ``(sample_rate_hz, pcm16le_mono)``.

    Call at most once per process (see the module docstring).
    """
    lib = ctypes.CDLL(lib_path)
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.restype = ctypes.c_int
    lib.espeak_SetVoiceByProperties.argtypes = [ctypes.POINTER(_Voice)]
    lib.espeak_SetVoiceByProperties.restype = ctypes.c_int
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_SetParameter.restype = ctypes.c_int
    lib.espeak_Synth.argtypes = [
        ctypes.c_char_p,  # text
        ctypes.c_size_t,  # size in bytes, including the terminating NUL
        ctypes.c_uint,  # position
        ctypes.c_int,  # position_type
        ctypes.c_uint,  # end_position
        ctypes.c_uint,  # flags
        ctypes.c_void_p,  # unique_identifier
        ctypes.c_void_p,  # user_data
    ]
    lib.espeak_Synth.restype = ctypes.c_int
    lib.espeak_Synchronize.restype = ctypes.c_int

    # buflength 0 = the library's default of 60 ms per callback; the return value is the
    # native sample rate in Hz, or <= 0 when the data directory is unusable.
    sample_rate = lib.espeak_Initialize(
        _AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(), _INITIALIZE_DONT_EXIT
    )
    if sample_rate <= 0:
        raise WorkerError(f"espeak-ng could not initialise with data directory {data_path}")

    chunks: list[bytes] = []

    def on_audio(wav: int | None, n_samples: int, _events: int | None) -> int:
        if wav and n_samples > 0:
            chunks.append(ctypes.string_at(wav, n_samples * 2))
        return 0  # 0 = continue synthesis

    callback = _SynthCallback(on_audio)  # kept referenced until synthesis has finished
    lib.espeak_SetSynthCallback(callback)

    # Like the espeak-ng command line: a voice file name ("en-us", "gmw/en-US") first, then a
    # language ("en-gb", "fr-fr": their voice files are named "en" and "fr").
    if lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
        wanted = _Voice(languages=voice.encode())
        if lib.espeak_SetVoiceByProperties(ctypes.byref(wanted)) != _EE_OK:
            raise WorkerError(f"unknown espeak voice {voice!r}", EXIT_UNKNOWN_VOICE)
    if lib.espeak_SetParameter(_PARAM_RATE, wpm, 0) != _EE_OK:
        raise WorkerError(f"espeak-ng rejected a rate of {wpm} words per minute")
    buffer = text + b"\0"
    flags = _CHARS_UTF8 | _ENDPAUSE
    status = lib.espeak_Synth(buffer, len(buffer), 0, _POS_CHARACTER, 0, flags, None, None)
    if status != _EE_OK:
        raise WorkerError(f"espeak_Synth failed with status {status}")
    lib.espeak_Synchronize()

    pcm = b"".join(chunks)
    if sys.byteorder != "little":
        samples = array("h", pcm)
        samples.byteswap()
        pcm = samples.tobytes()
    return sample_rate, pcm


def main(argv: list[str]) -> int:
    """Entry point: ``argv`` is ``[lib_path, data_path, voice, wpm]``; text comes on stdin."""
    try:
        lib_path, data_path, voice, wpm_text = argv
        sample_rate, pcm = synthesize_once(
            lib_path, data_path, voice, int(wpm_text), sys.stdin.buffer.read()
        )
    except WorkerError as exc:
        print(exc, file=sys.stderr)
        return exc.exit_code
    except (ValueError, OSError) as exc:
        print(f"espeak-ng worker failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    sys.stdout.buffer.write(struct.pack("<I", sample_rate) + pcm)
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
