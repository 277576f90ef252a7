"""The one exception tree of voice-loadtest.

Every error a user can cause or meet derives from :class:`LoadtestError`; its message is one
line that names what was wrong and what to do. The CLI prints that line and exits non-zero;
it never shows a traceback for these.

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

__all__ = [
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
]


class LoadtestError(Exception):
    """Base of every error voice-loadtest raises on purpose; ``str(exc)`` is one line.

    ``exit_code`` is what the CLI exits with (1 unless a subclass says otherwise).
    """

    exit_code = 1


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

    exit_code = 2
