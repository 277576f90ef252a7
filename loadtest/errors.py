"""The one exception tree of voice-loadtest.

Every error a user can cause or meet derives from :class:`LoadtestError`; its message is one
line that names what was wrong and what to do. The CLI prints that line and exits with the
error's :attr:`~LoadtestError.exit_code`; it never shows a traceback for these.

Exit codes mean one thing on every entry point (``run``, ``locust``, ``agent``, ``alt``,
``audio``, ``generate-audio``, ``report``, ``compare``, ``reports``)::

    0  pass (or warn)                   the run met its SLO, or the command did its job
    1  judged and failed                only a judged run exits 1: an SLO missed, or a
                                        ``--fail-on`` regression against a baseline
    2  invalid run or configuration     nothing was judged: a bad setting, flag or file, an
       or usage error                   unusable audio cache, an unreachable target or store

::

    LoadtestError
    ├── ConfigError            a setting, flag, env value or scenario file is invalid
    ├── AudioError             PCM or a manifest is unusable
    │   ├── AudioFormatError   odd length, empty, unsupported sample rate, all silence
    │   └── ManifestError      malformed line, missing field, names a missing file
    ├── TtsError               a TTS engine failed (credentials, network, cancelled synthesis)
    ├── StorageError           the audio store could not be read or written
    │   ├── ObjectNotFound     the named object is not in the store
    │   └── StorageUnreachable the store did not answer within --timeout (exit code 2)
    ├── ProtocolError          a peer sent a message that does not fit the wire protocol
    ├── ReportsError           the reports folder cannot take a run's reports (exit code 2,
    │                          found before any caller starts)
    └── TargetUnreachable      the agent under test cannot be reached (exit code 2: the run
                               is invalid, not failed)

Edges translate third-party exceptions into this tree with ``raise ... from exc``. A slow or
broken *agent* is not an exception: it is a measurement (a failed request event).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable

__all__ = [
    "EXIT_INVALID",
    "EXIT_PASS",
    "EXIT_SLO_FAIL",
    "AudioError",
    "AudioFormatError",
    "ConfigError",
    "LoadtestError",
    "ManifestError",
    "ObjectNotFound",
    "ProtocolError",
    "ReportsError",
    "StorageError",
    "StorageUnreachable",
    "TargetUnreachable",
    "TtsError",
    "run_command",
]


EXIT_PASS = 0
EXIT_SLO_FAIL = 1
EXIT_INVALID = 2


class LoadtestError(Exception):
    """Base of every error voice-loadtest raises on purpose; ``str(exc)`` is one line.

    ``exit_code`` is what the CLI exits with: :data:`EXIT_INVALID`, as nothing was judged
    (1 belongs to a failed SLO alone).
    """

    exit_code = EXIT_INVALID


class ConfigError(LoadtestError):
    """A setting, CLI flag, environment value or scenario file is invalid."""


class AudioError(LoadtestError):
    """Audio or its manifest cannot be used."""


class AudioFormatError(AudioError):
    """PCM bytes are malformed: odd length, empty, wrong rate, or contain no speech."""


class ManifestError(AudioError):
    """A manifest line is not JSON, lacks a required field, or names a missing file."""


class TtsError(LoadtestError):
    """A text-to-speech engine failed to synthesise."""


class StorageError(LoadtestError):
    """The audio store could not be read or written."""


class ObjectNotFound(StorageError):
    """The named object is not in the store (the container exists)."""


class StorageUnreachable(StorageError):
    """The store kept failing transiently (unreachable, 5xx) until the command's timeout."""

    exit_code = 2


class ProtocolError(LoadtestError):
    """A peer sent a message that does not fit the wire protocol."""


class ReportsError(LoadtestError):
    """The reports folder is missing and cannot be made, is not writable or has no room."""

    exit_code = 2


class TargetUnreachable(LoadtestError):
    """The agent under test could not be reached; nothing was measured (an invalid run)."""


def run_command(
    prog: str, handler: Callable[[argparse.Namespace], int], args: argparse.Namespace
) -> int:
    """Run a command's handler with the project's exit codes: a :class:`LoadtestError` is one
    line (``prog: error: …``) and its code; anything else is a bug, shown with its traceback,
    and exits :data:`EXIT_INVALID` (1 would read as a failed SLO)."""
    try:
        return int(handler(args))
    except LoadtestError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception:
        traceback.print_exc()
        print(f"{prog}: internal error (a bug; the traceback above helps fix it)", file=sys.stderr)
        return EXIT_INVALID
