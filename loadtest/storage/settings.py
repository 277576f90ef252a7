"""Where the Blob audio store is and how to authenticate (core: parses a mapping, no I/O).

Read once from the environment mapping passed to :func:`blob_settings_from_env` (the CLI
passes ``os.environ``); the first that applies wins:

1. ``AZURE_STORAGE_CONNECTION_STRING`` — account key or SAS connection string (also Azurite);
2. ``AUDIO_BLOB_ACCOUNT_URL`` + ``AUDIO_BLOB_SAS`` — a SAS token (a ``?``-query on the URL
   itself is taken as the token too);
3. ``AUDIO_BLOB_ACCOUNT_URL`` alone — Microsoft Entra ID through azure-identity's
   ``DefaultAzureCredential`` (workload identity, managed identity, ``az login``...); the
   identity needs *Storage Blob Data Contributor* to push, *Reader* to pull.

``AUDIO_BLOB_CONTAINER`` (default ``voice-audio``) and ``AUDIO_BLOB_PREFIX`` (default empty,
e.g. ``caches/v1/``) say where the cache lives. Secrets never appear in ``repr`` or messages.
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from loadtest.errors import ConfigError
from loadtest.storage.base import safe_url

__all__ = [
    "ACCOUNT_URL_VAR",
    "CONNECTION_STRING_VAR",
    "CONTAINER_VAR",
    "DEFAULT_CONTAINER",
    "PREFIX_VAR",
    "SAS_VAR",
    "BlobAuth",
    "BlobSettings",
    "blob_settings_from_env",
    "normalize_prefix",
]

CONNECTION_STRING_VAR = "AZURE_STORAGE_CONNECTION_STRING"
ACCOUNT_URL_VAR = "AUDIO_BLOB_ACCOUNT_URL"
SAS_VAR = "AUDIO_BLOB_SAS"
CONTAINER_VAR = "AUDIO_BLOB_CONTAINER"
PREFIX_VAR = "AUDIO_BLOB_PREFIX"
DEFAULT_CONTAINER = "voice-audio"

_CONTAINER_RE = re.compile(r"^(?=.{3,63}$)[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9]))*$")
_HOW_TO = (
    f"set {CONNECTION_STRING_VAR}, or {ACCOUNT_URL_VAR} with {SAS_VAR} or an Azure identity "
    "(managed/workload identity, az login)"
)


class BlobAuth(enum.Enum):
    """How the Blob store authenticates."""

    CONNECTION_STRING = "connection string"
    SAS = "SAS token"
    IDENTITY = "DefaultAzureCredential"


@dataclass(frozen=True, slots=True)
class BlobSettings:
    """A validated Blob location and credential. Secrets are excluded from ``repr``."""

    auth: BlobAuth
    container: str
    prefix: str  # "" or ending in "/"
    account_url: str | None = None  # without query string
    connection_string: str | None = field(default=None, repr=False)
    sas_token: str | None = field(default=None, repr=False)

    def describe(self) -> str:
        """Auth mode and target, without secrets."""
        where = safe_url(self.account_url) if self.account_url else "connection string account"
        return f"{self.auth.value}, {where}, container {self.container!r}, prefix {self.prefix!r}"


def normalize_prefix(prefix: str, *, source: str = PREFIX_VAR) -> str:
    """``prefix`` without leading slashes and with exactly one trailing ``/`` (or ``""``)."""
    cleaned = prefix.strip().strip("/")
    if not cleaned:
        return ""
    parts = cleaned.split("/")
    if any(part in ("", ".", "..") for part in parts) or "\\" in cleaned:
        raise ConfigError(
            f"{source}={prefix!r}: must be folder names separated by '/', e.g. 'caches/v1/'"
        )
    return cleaned + "/"


def _check_container(name: str, source: str) -> str:
    if not _CONTAINER_RE.match(name):
        raise ConfigError(
            f"{source}={name!r}: container names are 3-63 lowercase letters, digits and "
            "single hyphens"
        )
    return name


def _check_connection_string(connection: str) -> None:
    """Catch what the SDK would only fail on mid-request (a key that is not base64)."""
    fields = dict(part.split("=", 1) for part in connection.split(";") if "=" in part)
    if not fields:
        raise ConfigError(f"{CONNECTION_STRING_VAR}: not a connection string (Key=Value;...)")
    key = fields.get("AccountKey")
    if key is not None:
        try:
            base64.b64decode(key, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ConfigError(
                f"{CONNECTION_STRING_VAR}: AccountKey is not base64 (copy the whole key)"
            ) from exc


def _split_account_url(raw: str) -> tuple[str, str | None]:
    """(URL without query, query as a SAS token or None); raises :class:`ConfigError`."""
    value = raw.strip()
    try:
        parts = urlsplit(value)
        valid = parts.scheme in ("https", "http") and bool(parts.hostname)
    except ValueError:
        valid = False
    if not valid:
        raise ConfigError(
            f"{ACCOUNT_URL_VAR}={safe_url(value)!r}: must be an http(s) URL such as "
            "https://<account>.blob.core.windows.net"
        )
    base = value.split("?", 1)[0].split("#", 1)[0].rstrip("/")
    return base, (parts.query or None)


def blob_settings_from_env(
    env: Mapping[str, str], *, container: str | None = None, prefix: str | None = None
) -> BlobSettings:
    """Parse the Blob settings from ``env``; ``container``/``prefix`` (CLI flags) override it.

    Raises :class:`ConfigError` naming the variable when nothing usable is set or a value is
    invalid (never echoing a secret).
    """
    container_source = "--container" if container is not None else CONTAINER_VAR
    container_name = _check_container(
        container if container is not None else env.get(CONTAINER_VAR) or DEFAULT_CONTAINER,
        container_source,
    )
    prefix_source = "--prefix" if prefix is not None else PREFIX_VAR
    prefix_value = normalize_prefix(
        prefix if prefix is not None else env.get(PREFIX_VAR, ""), source=prefix_source
    )
    connection = (env.get(CONNECTION_STRING_VAR) or "").strip()
    if connection:
        _check_connection_string(connection)
        return BlobSettings(
            BlobAuth.CONNECTION_STRING, container_name, prefix_value, connection_string=connection
        )
    raw_url = (env.get(ACCOUNT_URL_VAR) or "").strip()
    if not raw_url:
        raise ConfigError(f"no Blob Storage credentials: {_HOW_TO}")
    account_url, url_sas = _split_account_url(raw_url)
    sas = (env.get(SAS_VAR) or "").strip().lstrip("?") or url_sas
    if sas:
        return BlobSettings(
            BlobAuth.SAS, container_name, prefix_value, account_url=account_url, sas_token=sas
        )
    return BlobSettings(BlobAuth.IDENTITY, container_name, prefix_value, account_url=account_url)
