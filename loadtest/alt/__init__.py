"""Azure Load Testing (ALT): export the voice harness as a ready-to-upload Locust test.

Core (pure): :mod:`~loadtest.alt.limits` (ALT's documented limits),
:mod:`~loadtest.alt.criteria` (SLO checks → fail criteria), :mod:`~loadtest.alt.config`
(validation and ``alt-config.yaml``), :mod:`~loadtest.alt.audio_plan` (plain files vs ZIP
artifacts; reassembly on the engine). Edge: :mod:`~loadtest.alt.package` (the harness
archive and ``requirements.txt``), :mod:`~loadtest.alt.export` (writes the folder),
:mod:`~loadtest.alt.bootstrap` (runs on the engine), :mod:`~loadtest.alt.cli`.
``alt-config.schema.json`` is the JSON schema of ALT's YAML format the tests validate
against. See ``docs/azure-load-testing.md``.
"""

__all__: list[str] = []
