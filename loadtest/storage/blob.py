"""Azure Blob Storage as an :class:`~loadtest.storage.base.AudioStore` (edge: azure SDK).

Objects are block blobs named ``<prefix><name>`` in one container, with the sha256 of their
bytes in the ``sha256`` metadata entry. Authentication is chosen by
:mod:`loadtest.storage.settings`. Every Azure error is translated into one
:class:`~loadtest.errors.StorageError` line that names the object and the likely fix; SDK
messages pass through :func:`~loadtest.storage.base.redact` first, so neither account keys
nor SAS tokens can reach a message. The SDK's clients are thread-safe, so one store serves a
thread pool.

With a :class:`~loadtest.storage.retry.RetryWindow` (the CLI's ``--timeout``) the SDK's own
retries are off, each HTTP attempt is bounded (connect 10 s, read 30 s), and a call that fails
transiently — the account unreachable, a connection dropped mid-download, HTTP 408, 429 or
5xx — is retried whole within the window (a download is read completely before its bytes are
handed on, so a retry never repeats a chunk).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import ContainerClient, ContentSettings

from loadtest.audio.manifest import MANIFEST_NAME
from loadtest.errors import ConfigError, StorageError
from loadtest.storage.base import (
    METADATA_SHA256,
    ObjectNotFound,
    StoredObject,
    check_name,
    redact,
    safe_url,
)
from loadtest.storage.retry import RetryWindow
from loadtest.storage.settings import BlobAuth, BlobSettings

__all__ = ["BlobStore", "describe_azure_error"]

_USER_AGENT = "voice-loadtest"
_AUTH_HINTS = {
    BlobAuth.CONNECTION_STRING: "check the key or SAS in AZURE_STORAGE_CONNECTION_STRING",
    BlobAuth.SAS: "check AUDIO_BLOB_SAS: expiry and permissions (rl to pull, racwdl to push)",
    BlobAuth.IDENTITY: (
        "give the identity 'Storage Blob Data Reader' (pull) or 'Storage Blob Data "
        "Contributor' (push) on the container"
    ),
}
_AUTH_HINT = "check the storage credentials"
_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_ATTEMPT_TIMEOUTS = {"retry_total": 0, "connection_timeout": 10, "read_timeout": 30}
T = TypeVar("T")


def _transient(exc: BaseException) -> bool:
    """Worth retrying: no answer, a dropped connection, or a busy or failing service."""
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return True
    return isinstance(exc, HttpResponseError) and exc.status_code in _TRANSIENT_STATUS


def _first_line(text: str, limit: int = 160) -> str:
    line = redact(text.strip().splitlines()[0] if text.strip() else "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def describe_azure_error(
    exc: AzureError, what: str, container: str, auth_hint: str = _AUTH_HINT
) -> str:
    """One line for ``exc`` raised while doing ``what``; never contains a secret."""
    raw_code = getattr(exc, "error_code", None)
    code = str(getattr(raw_code, "value", raw_code)) if raw_code is not None else None
    status = getattr(exc, "status_code", None)
    if code == "ContainerNotFound":
        return (
            f"{what}: container {container!r} not found (create it, or push with "
            "--create-container)"
        )
    if isinstance(exc, ResourceNotFoundError):
        return f"{what}: not found"
    if status in (401, 403):
        return f"{what}: access denied ({code or status}); {auth_hint}"
    if isinstance(exc, ClientAuthenticationError):
        # No HTTP status: the credential itself failed (DefaultAzureCredential found nothing).
        return (
            f"{what}: no usable Azure identity ({_first_line(exc.message or str(exc))}); "
            "run `az login`, use workload/managed identity, or set AUDIO_BLOB_SAS or "
            "AZURE_STORAGE_CONNECTION_STRING"
        )
    if isinstance(exc, ServiceRequestError):
        return f"{what}: cannot reach the storage account ({_first_line(str(exc))})"
    if isinstance(exc, HttpResponseError) and status is not None:
        return f"{what}: HTTP {status} {code or ''}".rstrip()
    return f"{what}: {type(exc).__name__}: {_first_line(str(exc))}"


def _client(settings: BlobSettings, options: dict[str, Any]) -> ContainerClient:
    options = {"user_agent": _USER_AGENT, **options}
    if settings.auth is BlobAuth.CONNECTION_STRING:
        assert settings.connection_string is not None
        try:
            return ContainerClient.from_connection_string(
                settings.connection_string, settings.container, **options
            )
        except ValueError as exc:
            # The SDK's message may quote the string; ours never does.
            raise ConfigError(
                "AZURE_STORAGE_CONNECTION_STRING: not a valid storage connection string "
                "(needs AccountName/AccountKey or BlobEndpoint/SharedAccessSignature)"
            ) from exc
    assert settings.account_url is not None
    credential: Any
    if settings.auth is BlobAuth.SAS:
        credential = settings.sas_token
    else:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    try:
        return ContainerClient(settings.account_url, settings.container, credential, **options)
    except ValueError as exc:
        raise ConfigError(
            f"AUDIO_BLOB_ACCOUNT_URL={safe_url(settings.account_url)!r}: {_first_line(str(exc))}"
        ) from exc


class BlobStore:
    """The audio cache under ``prefix`` in one Blob container.

    Build it with :meth:`from_settings`; constructing never touches the network.
    """

    def __init__(
        self,
        client: ContainerClient,
        *,
        prefix: str,
        auth_hint: str = _AUTH_HINT,
        window: RetryWindow | None = None,
    ) -> None:
        self._client = client
        self._auth_hint = auth_hint
        self._window = window
        self._prefix = prefix
        self._container = client.container_name
        self._url = safe_url(client.url).rstrip("/")

    @classmethod
    def from_settings(
        cls, settings: BlobSettings, *, window: RetryWindow | None = None, **client_options: Any
    ) -> BlobStore:
        """A store for ``settings``; ``client_options`` go to ``ContainerClient`` (e.g.
        ``retry_total``, ``max_single_get_size``, ``max_chunk_get_size``, ``connection_timeout``).
        With ``window``, retries are the window's (see the module docstring).

        Raises :class:`ConfigError` for a malformed connection string or URL.
        """
        options = {**(_ATTEMPT_TIMEOUTS if window is not None else {}), **client_options}
        client = _client(settings, options)
        return cls(
            client, prefix=settings.prefix, auth_hint=_AUTH_HINTS[settings.auth], window=window
        )

    def _call(self, what: str, attempt: Callable[[], T]) -> T:
        """``attempt()``, retried within the window (if any); Azure errors translated."""
        try:
            if self._window is None:
                return attempt()
            return self._window.run(
                what,
                attempt,
                transient=_transient,
                describe=lambda exc: describe_azure_error(
                    exc,  # type: ignore[arg-type]
                    what,
                    self._container,
                    self._auth_hint,
                ).removeprefix(f"{what}: "),
            )
        except AzureError as exc:
            raise self._error(exc, what) from exc

    @property
    def location(self) -> str:
        return f"{self._url}/{self._prefix}"

    def _key(self, name: str) -> str:
        return self._prefix + check_name(name)

    def _error(self, exc: AzureError, what: str) -> StorageError:
        message = describe_azure_error(exc, what, self._container, self._auth_hint)
        if (
            isinstance(exc, ResourceNotFoundError)
            and getattr(exc, "error_code", None) != "ContainerNotFound"
        ):
            return ObjectNotFound(message)
        return StorageError(message)

    def create_container(self) -> bool:
        def create() -> bool:
            try:
                self._client.create_container()
            except ResourceExistsError:
                return False
            return True

        return self._call(f"create container {self._url}", create)

    def list_objects(self) -> list[StoredObject]:
        return self._call(f"list {self.location}", self._list)

    def _list(self) -> list[StoredObject]:
        objects = []
        blobs = self._client.list_blobs(name_starts_with=self._prefix or None, include=["metadata"])
        for blob in blobs:
            name = str(blob.name)[len(self._prefix) :]
            if not name or "/" in name:
                continue  # a deeper "folder": another cache, never ours to touch
            metadata = blob.metadata or {}
            objects.append(
                StoredObject(
                    name=name,
                    size=int(blob.size),
                    sha256=metadata.get(METADATA_SHA256),
                    last_modified=blob.last_modified,
                )
            )
        return sorted(objects, key=lambda o: o.name)

    def get(self, name: str) -> Iterator[bytes]:
        key = self._key(name)
        what = f"download {self._url}/{key}"
        if self._window is not None:  # whole, so that a retry starts from the first byte
            yield from self._call(
                what, lambda: list(self._client.download_blob(key, max_concurrency=1).chunks())
            )
            return
        try:
            downloader = self._client.download_blob(key, max_concurrency=1)
            yield from downloader.chunks()
        except AzureError as exc:
            raise self._error(exc, what) from exc

    def put(self, name: str, source: Path, *, sha256: str) -> None:
        key = self._key(name)
        content_type = (
            "application/x-ndjson" if name == MANIFEST_NAME else "application/octet-stream"
        )

        def upload() -> None:
            with source.open("rb") as handle:
                self._client.upload_blob(
                    key,
                    handle,
                    length=source.stat().st_size,
                    overwrite=True,
                    metadata={METADATA_SHA256: sha256},
                    content_settings=ContentSettings(content_type=content_type),
                )

        try:
            self._call(f"upload {self._url}/{key}", upload)
        except OSError as exc:
            raise StorageError(f"cannot read {source}: {exc.strerror or exc}") from exc

    def delete(self, name: str) -> None:
        key = self._key(name)

        def remove() -> None:
            try:
                self._client.delete_blob(key)
            except ResourceNotFoundError as exc:
                if getattr(exc, "error_code", None) == "ContainerNotFound":
                    raise

        self._call(f"delete {self._url}/{key}", remove)

    def close(self) -> None:
        """Release the HTTP connections."""
        self._client.close()

    def __repr__(self) -> str:
        return f"BlobStore({self.location!r})"
