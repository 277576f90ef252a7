"""Blob store construction and error translation (no network; Azurite tests do the I/O)."""

from __future__ import annotations

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
)

from loadtest.errors import ConfigError
from loadtest.storage.blob import BlobStore, describe_azure_error
from loadtest.storage.settings import blob_settings_from_env

KEY = "S3cr3tKeyS3cr3tKeyS3cr3tKey0000"  # valid base64, 31 chars + padding below
CONN = (
    "DefaultEndpointsProtocol=https;AccountName=acct;"
    f"AccountKey={KEY}=;EndpointSuffix=core.windows.net"
)
SAS = "sv=2022-11-02&sp=rl&se=2030-01-01&sig=S1GNATUREsecret%3D"


def _http_error(
    cls: type[HttpResponseError], status: int | None, code: str | None
) -> HttpResponseError:
    exc = cls(message=f"boom https://acct.blob.core.windows.net/c?{SAS}\nRequestId:1")
    exc.status_code = status
    exc.error_code = code  # type: ignore[attr-defined]
    return exc


def test_building_a_store_touches_no_network_and_shows_no_secret() -> None:
    store = BlobStore.from_settings(
        blob_settings_from_env({"AZURE_STORAGE_CONNECTION_STRING": CONN, "AUDIO_BLOB_PREFIX": "v1"})
    )
    assert store.location == "https://acct.blob.core.windows.net/voice-audio/v1/"
    assert KEY not in repr(store)
    sas_store = BlobStore.from_settings(
        blob_settings_from_env(
            {"AUDIO_BLOB_ACCOUNT_URL": "https://acct.blob.core.windows.net", "AUDIO_BLOB_SAS": SAS}
        )
    )
    assert "S1GNATURE" not in sas_store.location + repr(sas_store)


def test_identity_auth_builds_without_credentials_present() -> None:
    store = BlobStore.from_settings(
        blob_settings_from_env({"AUDIO_BLOB_ACCOUNT_URL": "https://acct.blob.core.windows.net"})
    )
    assert store.location.startswith("https://acct.blob.core.windows.net/voice-audio/")
    store.close()


def test_a_connection_string_the_sdk_rejects_is_a_config_error() -> None:
    settings = blob_settings_from_env({"AZURE_STORAGE_CONNECTION_STRING": "Foo=bar;Baz=" + KEY})
    with pytest.raises(ConfigError, match="not a valid storage connection string") as info:
        BlobStore.from_settings(settings)
    assert KEY not in str(info.value)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (_http_error(ResourceNotFoundError, 404, "ContainerNotFound"), "container 'c' not found"),
        (_http_error(ResourceNotFoundError, 404, "BlobNotFound"), "x: not found"),
        (
            _http_error(ClientAuthenticationError, 403, "AuthenticationFailed"),
            "access denied (AuthenticationFailed); HINT",
        ),
        (_http_error(HttpResponseError, 403, "AuthorizationPermissionMismatch"), "access denied"),
        (_http_error(HttpResponseError, 503, "ServerBusy"), "x: HTTP 503 ServerBusy"),
        (
            ClientAuthenticationError(
                "DefaultAzureCredential failed to retrieve a token.\nAttempted: ..."
            ),
            "no usable Azure identity (DefaultAzureCredential failed to retrieve a token.)",
        ),
        (
            ServiceRequestError(f"Max retries exceeded with url: /c?{SAS}"),
            "cannot reach the storage account",
        ),
    ],
)
def test_azure_errors_become_one_clean_line(exc: Exception, expected: str) -> None:
    assert isinstance(exc, (HttpResponseError, ClientAuthenticationError, ServiceRequestError))
    message = describe_azure_error(exc, "x", "c", "HINT")
    assert expected in message
    assert "\n" not in message and "S1GNATURE" not in message
