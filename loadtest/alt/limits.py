"""Azure Load Testing (ALT) service limits the export checks against (core: constants only).

Every number cites the ALT documentation it comes from (Microsoft Learn, *Azure Load Testing*):

* ``reference-test-config-yaml`` — ``testId`` 2–50 characters of ``[a-z0-9_-]``;
  ``description`` at most 100 characters; ``zipArtifacts``: "if the file size exceeds 50 MB,
  compress them into a ZIP file … below 50 MB … Only 5 ZIP artifacts are allowed with a
  maximum of 1000 files in each and uncompressed size of 1 GB", for JMX *and Locust* tests.
* ``resource-limits-quotas-capacity`` — engine instances per test run 1–400; test duration
  3 h by default, 24 h at most; 1000 file uploads per test; 50 test criteria per test.
* ``how-to-define-test-criteria`` — the client metrics and aggregates a criterion may use
  (:data:`RESPONSE_TIME_AGGREGATES`); ``error`` takes ``percentage`` with ``>`` only.
* ``how-to-high-scale-load`` — "We recommend running up to 500 users from a test engine
  instance" (generic HTTP Locust users; see :data:`ASSUMED_CALLERS_PER_ENGINE`).
* The Azure CLI ``load`` extension (``HighScaleThreshold``) warns above 45 engines or 3 hours.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ALT_DEFAULT_MAX_DURATION_S",
    "ALT_MAX_DESCRIPTION_CHARS",
    "ALT_MAX_DISPLAY_NAME_CHARS",
    "ALT_MAX_DURATION_S",
    "ALT_MAX_ENGINES",
    "ALT_MAX_TEST_CRITERIA",
    "ALT_RECOMMENDED_USERS_PER_ENGINE",
    "ASSUMED_CALLERS_PER_ENGINE",
    "DEFAULT_LIMITS",
    "ERROR_AGGREGATES",
    "HIGH_SCALE_ENGINES",
    "RESPONSE_TIME_AGGREGATES",
    "AltLimits",
]

_MB = 1024 * 1024

ALT_MAX_ENGINES = 400
"""Engine instances per test run (hard maximum; the default quota may be lower)."""

HIGH_SCALE_ENGINES = 45
"""Above this the Azure CLI warns about high scale (subscription quota may refuse it)."""

ALT_MAX_DURATION_S = 24 * 3600
"""Longest test run ALT allows at all."""

ALT_DEFAULT_MAX_DURATION_S = 3 * 3600
"""Longest test run under the default quota (a support request raises it to 24 h)."""

ALT_MAX_TEST_CRITERIA = 50
"""Fail criteria per test."""

ALT_MAX_DESCRIPTION_CHARS = 100
ALT_MAX_DISPLAY_NAME_CHARS = 50

ALT_RECOMMENDED_USERS_PER_ENGINE = 500
"""ALT's own recommendation for (HTTP) Locust users per engine instance."""

ASSUMED_CALLERS_PER_ENGINE = 250
"""Real-time callers one ALT engine is assumed to carry (the export warns above it).

ALT runs Locust in local (standalone) mode: one Python process, so effectively one core per
engine whatever the VM has. Each caller streams a 20 ms frame every 20 ms and keeps a
real-time schedule, which costs far more than an HTTP user, so ALT's 500-user advice does not
apply. 250 is a conservative share of what one core carries in ``docs/benchmarks.md``
(``make bench``); an engine's CPU is not the benchmark machine's, so it stays an assumption
that the portal's Engine health confirms or refutes.
"""

RESPONSE_TIME_AGGREGATES = frozenset(
    {"avg", "min", "max", "p50", "p75", "p90", "p95", "p96", "p97", "p98", "p99", "p999", "p9999"}
)
"""Aggregates ALT accepts on ``response_time_ms``."""

ERROR_AGGREGATES = frozenset({"percentage"})
"""Aggregates ALT accepts on ``error`` (condition ``>`` only, threshold 0–100)."""


@dataclass(frozen=True, slots=True)
class AltLimits:
    """File limits of one ALT test, in bytes and counts (tests lower them to exercise zipping).

    Attributes:
        max_file_bytes: largest plain file to upload; a larger one, or an audio set whose
            total is larger, goes into ``zipArtifacts`` (also the largest ZIP).
        max_zip_artifacts: ZIP artifacts per test.
        max_files_per_zip: files inside one ZIP.
        max_zip_uncompressed_bytes: uncompressed size of one ZIP's content.
        max_files_per_test: all uploaded files of a test (test plan included).
    """

    max_file_bytes: int = 50 * _MB
    max_zip_artifacts: int = 5
    max_files_per_zip: int = 1000
    max_zip_uncompressed_bytes: int = 1024 * _MB
    max_files_per_test: int = 1000


DEFAULT_LIMITS = AltLimits()
