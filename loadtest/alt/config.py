"""What an ALT export asks for, validated, and the ``alt-config.yaml`` it becomes (core).

Call order: :func:`check_request` turns the raw :class:`ExportRequest` (CLI values) into
frozen :class:`ExportOptions` plus warnings, or raises :class:`~loadtest.errors.ConfigError`
with one line naming the flag, the value and what is allowed. :func:`config_document` builds
the YAML test configuration (a plain dict in ALT's documented key order) from the options,
the file lists and the fail criteria; :func:`render_config` serialises it.

The format follows Microsoft Learn, *Azure Load Testing › Configure a load test in YAML*
(``reference-test-config-yaml``); ``alt-config.schema.json`` beside this module encodes it.
Load for a Locust test is set through Locust's own environment variables, which ALT passes
to every engine: ``LOCUST_USERS`` and ``LOCUST_SPAWN_RATE`` are the *overall* numbers across
engines (``how-to-high-scale-load``), ``LOCUST_RUN_TIME`` is seconds.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import yaml

from loadtest.alt.criteria import CriteriaMapping
from loadtest.alt.limits import (
    ALT_DEFAULT_MAX_DURATION_S,
    ALT_MAX_DESCRIPTION_CHARS,
    ALT_MAX_DISPLAY_NAME_CHARS,
    ALT_MAX_DURATION_S,
    ALT_MAX_ENGINES,
    ASSUMED_CALLERS_PER_ENGINE,
    HIGH_SCALE_ENGINES,
)
from loadtest.errors import ConfigError
from loadtest.settings import SETTINGS

__all__ = [
    "AutoStop",
    "ExportOptions",
    "ExportRequest",
    "KeyVaultSecret",
    "check_request",
    "config_document",
    "engine_environment",
    "parse_duration_s",
    "parse_secret",
    "render_config",
    "validate_test_id",
]

_TEST_ID = re.compile(r"^[a-z0-9_-]{2,50}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DURATION = re.compile(r"^(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?$")
_VAULT_SUFFIXES = (
    ".vault.azure.net",
    ".vault.azure.cn",
    ".vault.usgovcloudapi.net",
    ".vault.microsoftazure.de",
)
_VAULT_PATH = re.compile(r"^/secrets/[0-9A-Za-z-]{1,127}(?:/[0-9A-Za-z]*)?/?$")
_IDENTITY = re.compile(
    r"^/subscriptions/[a-f0-9-]+/resourceGroups/[^/]+/providers/"
    r"Microsoft\.ManagedIdentity/userAssignedIdentities/[A-Za-z0-9._-]+$",
    re.IGNORECASE,
)
_ENGINE_CONTROLLED = ("WS_URL", "PCM_DIR")  # set by the export itself, not passed through
_SECRET_QUERY = re.compile(r"(^|&)[^=&]*(key|token|secret|sig|password|code)[^=&]*=", re.I)


@dataclass(frozen=True, slots=True)
class KeyVaultSecret:
    """An ALT secret: the engine gets env var ``name`` with the Key Vault secret's value."""

    name: str
    uri: str


@dataclass(frozen=True, slots=True)
class AutoStop:
    """Stop the run when errors exceed ``error_percentage`` over ``time_window_s`` seconds."""

    error_percentage: float = 90.0
    time_window_s: int = 60


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """Raw export settings as the CLI gives them (strings where the user typed a value)."""

    ws_url: str
    test_id: str = "voice-agent-load"
    display_name: str = ""
    description: str = "Voice agent load test (voice-loadtest)"
    engines: int = 1
    users: int = 50
    spawn_rate: float = 5.0
    duration: str = "10m"
    knobs: Mapping[str, str] = field(default_factory=dict)
    secrets: Sequence[str] = ()
    key_vault_identity: str = ""
    autostop: AutoStop | None = field(default_factory=AutoStop)
    allow_insecure_url: bool = False


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """Validated export settings. ``users`` and ``spawn_rate`` are totals over all engines."""

    test_id: str
    display_name: str
    description: str
    engines: int
    users: int
    spawn_rate: float
    duration_s: int
    ws_url: str
    knobs: tuple[tuple[str, str], ...]
    secrets: tuple[KeyVaultSecret, ...]
    key_vault_identity: str
    autostop: AutoStop | None

    @property
    def users_per_engine(self) -> int:
        return math.ceil(self.users / self.engines)


def validate_test_id(raw: str) -> str:
    """ALT's rule: 2–50 characters of ``a-z``, ``0-9``, ``_`` and ``-``."""
    if not _TEST_ID.match(raw):
        hint = re.sub(r"[^a-z0-9_-]+", "-", raw.strip().lower()).strip("-")[:50]
        suggestion = f" (e.g. {hint!r})" if len(hint) >= 2 else ""
        raise ConfigError(
            f"--test-id {raw!r} is invalid: Azure Load Testing test IDs are 2-50 characters "
            f"of a-z, 0-9, _ and -{suggestion}"
        )
    return raw


def parse_duration_s(raw: str) -> int:
    """``600``, ``90s``, ``10m``, ``1h30m`` → seconds (1 s to ALT's 24 h maximum)."""
    text = raw.strip().lower()
    match = _DURATION.match(text) if text else None
    seconds = 0
    if text.isdigit():
        seconds = int(text)
    elif match is not None and any(match.groupdict().values()):
        parts = {k: int(v) for k, v in match.groupdict().items() if v}
        seconds = parts.get("h", 0) * 3600 + parts.get("m", 0) * 60 + parts.get("s", 0)
    if seconds < 1 or seconds > ALT_MAX_DURATION_S:
        raise ConfigError(
            f"--duration {raw!r} is invalid: expected 1s to 24h, e.g. 90s, 10m, 1h30m "
            "(Azure Load Testing runs at most 24 hours)"
        )
    return seconds


def parse_secret(raw: str) -> KeyVaultSecret:
    """``NAME=https://<vault>.vault.azure.net/secrets/<secret>[/<version>]``."""
    name, sep, uri = raw.partition("=")
    name, uri = name.strip(), uri.strip()
    parts = urlsplit(uri)
    host = (parts.hostname or "").lower()
    if not sep or not _ENV_NAME.match(name):
        raise ConfigError(
            f"--key-vault-secret {raw.partition('=')[0]!r}: expected NAME=URI where NAME is the "
            "environment variable the engine sees (e.g. WS_AUTH_TOKEN)"
        )
    if (
        parts.scheme != "https"
        or not host.endswith(_VAULT_SUFFIXES)
        or not _VAULT_PATH.match(parts.path)
        or parts.query
    ):
        raise ConfigError(  # the value is not echoed: it may be the secret itself
            f"--key-vault-secret {name}: the value is not a Key Vault secret identifier "
            "(https://<vault>.vault.azure.net/secrets/<name>[/<version>]); never pass the secret"
        )
    return KeyVaultSecret(name, uri)


def _check_url(raw: str, allow_insecure: bool) -> tuple[str, list[str]]:
    if not raw.strip():
        raise ConfigError("no target: pass --ws-url wss://HOST/PATH (or set WS_URL)")
    url: str = SETTINGS["WS_URL"].parse("WS_URL", raw)
    parts = urlsplit(url)
    if parts.scheme != "wss" and not allow_insecure:
        raise ConfigError(
            f"--ws-url {url!r} is not wss://: Azure Load Testing engines reach the agent over "
            "the internet, so use TLS (wss://), or --allow-insecure-url for a plain test endpoint"
        )
    warnings = []
    if parts.username or _SECRET_QUERY.search(parts.query):
        warnings.append(
            "--ws-url carries credentials, which alt-config.yaml would hold in clear: send them "
            "with --key-vault-secret WS_AUTH_TOKEN=… (or WS_HEADERS=…) instead"
        )
    host = parts.hostname or ""
    try:
        private = ipaddress.ip_address(host).is_private
    except ValueError:
        private = host == "localhost"
    if private:
        warnings.append(
            f"--ws-url host {host} is loopback/private: an ALT engine cannot reach it unless the "
            "test runs in your virtual network (subnetId)"
        )
    return url, warnings


def _check_knobs(knobs: Mapping[str, str]) -> tuple[tuple[tuple[str, str], ...], list[str]]:
    checked, warnings = [], []
    for env, raw in knobs.items():
        knob = SETTINGS.get(env)
        if knob is None or env in _ENGINE_CONTROLLED:
            raise ConfigError(f"{env} cannot be passed to the engines this way")
        if knob.secret:
            raise ConfigError(
                f"{env} is a secret and must not be written into alt-config.yaml: pass "
                f"--key-vault-secret {env}=https://<vault>.vault.azure.net/secrets/<name>"
            )
        knob.parse(env, raw)  # one clear line on a bad value
        checked.append((env, raw.strip()))
        if env == "WS_HEADERS":
            warnings.append(
                "WS_HEADERS is written into alt-config.yaml in clear; if a header carries a key, "
                "pass --key-vault-secret WS_HEADERS=<secret identifier> instead"
            )
    return tuple(sorted(checked)), warnings


def _check_load(request: ExportRequest) -> list[str]:
    if not 1 <= request.engines <= ALT_MAX_ENGINES:
        raise ConfigError(
            f"--engines {request.engines} is invalid: Azure Load Testing runs 1-{ALT_MAX_ENGINES} "
            "engine instances per test run"
        )
    if request.users < 1:
        raise ConfigError(f"--users {request.users} is invalid: expected at least 1 caller")
    if not request.spawn_rate > 0:
        raise ConfigError(f"--spawn-rate {request.spawn_rate:g} is invalid: expected > 0")
    warnings = []
    if request.engines > HIGH_SCALE_ENGINES:
        warnings.append(
            f"{request.engines} engines is high scale: the default quota may refuse it "
            "(request an increase in the Azure portal)"
        )
    if request.users < request.engines:
        warnings.append(
            f"{request.users} callers over {request.engines} engines leaves some engines idle"
        )
    per_engine = math.ceil(request.users / request.engines)
    if per_engine > ASSUMED_CALLERS_PER_ENGINE:
        cap = ASSUMED_CALLERS_PER_ENGINE
        needed = math.ceil(request.users / cap)
        warnings.append(
            f"{per_engine} real-time callers per engine exceeds the {cap} "
            f"one engine is assumed to carry (one Locust process, one core): use --engines "
            f"{needed} or more, and watch Engine health in the portal"
        )
    return warnings


def check_request(request: ExportRequest) -> tuple[ExportOptions, tuple[str, ...]]:
    """Validate ``request``; returns the options and warnings, or raises :class:`ConfigError`."""
    test_id = validate_test_id(request.test_id)
    display = request.display_name.strip() or f"Voice load {test_id}"[:ALT_MAX_DISPLAY_NAME_CHARS]
    if not 2 <= len(display) <= ALT_MAX_DISPLAY_NAME_CHARS:
        raise ConfigError(f"--display-name {display!r} is invalid: expected 2-50 characters")
    if len(request.description) > ALT_MAX_DESCRIPTION_CHARS:
        raise ConfigError(
            f"--description is {len(request.description)} characters: ALT allows "
            f"{ALT_MAX_DESCRIPTION_CHARS}"
        )
    url, warnings = _check_url(request.ws_url, request.allow_insecure_url)
    warnings += _check_load(request)
    duration_s = parse_duration_s(request.duration)
    if duration_s > ALT_DEFAULT_MAX_DURATION_S:
        warnings.append(
            f"--duration {request.duration} is over 3 h, the default ALT limit (raise it with a "
            "quota request; 24 h at most)"
        )
    knobs, knob_warnings = _check_knobs(request.knobs)
    warnings += knob_warnings
    secrets = tuple(parse_secret(raw) for raw in request.secrets)
    names = [secret.name for secret in secrets]
    env_names = {name for name, _ in _base_environment(url, 1, 1.0, 1)} | dict(knobs).keys()
    for name in names:
        if names.count(name) > 1 or name in env_names:
            raise ConfigError(f"--key-vault-secret {name} is given twice or is also an env value")
    identity = request.key_vault_identity.strip()
    if identity and not _IDENTITY.match(identity):
        raise ConfigError(
            f"--key-vault-identity {identity!r} is not a user-assigned managed identity "
            "resource ID (/subscriptions/…/providers/Microsoft.ManagedIdentity/"
            "userAssignedIdentities/NAME)"
        )
    if request.autostop is not None:
        stop = request.autostop
        if not 0 <= stop.error_percentage <= 100 or stop.time_window_s < 1:
            raise ConfigError(
                f"auto-stop {stop.error_percentage:g} % over {stop.time_window_s} s is invalid: "
                "expected a percentage 0-100 and a window of at least 1 s"
            )
    options = ExportOptions(
        test_id=test_id, display_name=display, description=request.description,
        engines=request.engines, users=request.users, spawn_rate=request.spawn_rate,
        duration_s=duration_s, ws_url=url, knobs=knobs, secrets=secrets,
        key_vault_identity=identity, autostop=request.autostop,
    )  # fmt: skip
    return options, tuple(warnings)


def _base_environment(
    ws_url: str, users: int, spawn_rate: float, duration_s: int
) -> list[tuple[str, str]]:
    """The variables every export sets (values are strings, as ALT passes them)."""
    return [
        ("WS_URL", ws_url),
        ("PCM_DIR", "./"),  # the audio sits beside the locustfile on the engine
        ("LOCUST_USERS", str(users)),  # overall callers, ALT spreads them over the engines
        ("LOCUST_SPAWN_RATE", f"{spawn_rate:g}"),
        ("LOCUST_RUN_TIME", str(duration_s)),  # a bare number is seconds for Locust
        ("LOCUST_STOP_TIMEOUT", "10"),  # let calls in flight finish, as `voice-loadtest run`
        ("METRICS_PORT", "0"),  # no Prometheus endpoint on ALT engines
    ]


def engine_environment(options: ExportOptions) -> list[tuple[str, str]]:
    """All ``env`` entries: the export's own, then the caller knobs that were given."""
    base = _base_environment(options.ws_url, options.users, options.spawn_rate, options.duration_s)
    return base + list(options.knobs)


def config_document(
    options: ExportOptions,
    *,
    test_plan: str,
    configuration_files: Sequence[str],
    zip_artifacts: Sequence[str],
    criteria: CriteriaMapping,
) -> dict[str, Any]:
    """The ``alt-config.yaml`` content; file names are relative to the YAML's folder."""
    doc: dict[str, Any] = {
        "version": "v0.1",
        "testId": options.test_id,
        "displayName": options.display_name,
        "description": options.description,
        "testType": "Locust",
        "testPlan": test_plan,
        "engineInstances": options.engines,
        "configurationFiles": list(configuration_files),
    }
    if zip_artifacts:
        doc["zipArtifacts"] = list(zip_artifacts)
    doc["env"] = [{"name": name, "value": value} for name, value in engine_environment(options)]
    if options.secrets:
        doc["secrets"] = [{"name": s.name, "value": s.uri} for s in options.secrets]
    if options.key_vault_identity:
        doc["keyVaultReferenceIdentity"] = options.key_vault_identity
    if criteria.criteria:
        doc["failureCriteria"] = {"clientMetrics": [c.yaml_item() for c in criteria.criteria]}
    if options.autostop is None:
        doc["autoStop"] = "disable"
    else:
        percent = options.autostop.error_percentage
        doc["autoStop"] = {
            "errorPercentage": int(percent) if float(percent).is_integer() else percent,
            "timeWindow": options.autostop.time_window_s,
        }
    return doc


def render_config(doc: Mapping[str, Any], *, generator: str) -> str:
    """YAML text with a short header; keys stay in ALT's documented order."""
    header = (
        f"# Azure Load Testing test configuration, generated by {generator}.\n"
        "# Create/update and run it with scripts/azure-load-test.sh (or\n"
        "# `az load test create --load-test-config-file alt-config.yaml ...`).\n"
        "# Secrets are Key Vault references only; never put a secret value here.\n"
    )
    body = yaml.safe_dump(dict(doc), sort_keys=False, default_flow_style=False, width=100)
    return header + body
