"""Blob settings from the environment: the auth matrix, validation, no secrets shown."""

from __future__ import annotations

import pytest

from loadtest.errors import ConfigError
from loadtest.storage.settings import (
    DEFAULT_CONTAINER,
    BlobAuth,
    blob_settings_from_env,
    normalize_prefix,
)

KEY = "S3cr3tAccountKey0123456789=="
CONN = (
    f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={KEY};"
    "EndpointSuffix=core.windows.net"
)
URL = "https://acct.blob.core.windows.net"
SAS = "sv=2022-11-02&ss=b&srt=co&sp=rl&se=2030-01-01&sig=S1GNATUREsecret%3D"


def test_connection_string_wins_and_defaults_apply() -> None:
    settings = blob_settings_from_env(
        {"AZURE_STORAGE_CONNECTION_STRING": CONN, "AUDIO_BLOB_ACCOUNT_URL": URL}
    )
    assert settings.auth is BlobAuth.CONNECTION_STRING
    assert (settings.container, settings.prefix) == (DEFAULT_CONTAINER, "")
    assert KEY not in repr(settings) and KEY not in settings.describe()


def test_account_url_with_sas_token() -> None:
    settings = blob_settings_from_env(
        {"AUDIO_BLOB_ACCOUNT_URL": URL + "/", "AUDIO_BLOB_SAS": "?" + SAS,
         "AUDIO_BLOB_CONTAINER": "audio-v2", "AUDIO_BLOB_PREFIX": "/caches/v1"}
    )  # fmt: skip
    assert settings.auth is BlobAuth.SAS
    assert settings.sas_token == SAS
    assert (settings.account_url, settings.container, settings.prefix) == (
        URL, "audio-v2", "caches/v1/",
    )  # fmt: skip
    assert "S1GNATURE" not in repr(settings) + settings.describe()


def test_a_sas_on_the_url_itself_is_used_and_hidden() -> None:
    settings = blob_settings_from_env({"AUDIO_BLOB_ACCOUNT_URL": f"{URL}?{SAS}"})
    assert settings.auth is BlobAuth.SAS and settings.account_url == URL
    assert "S1GNATURE" not in repr(settings)


def test_account_url_alone_means_default_azure_credential() -> None:
    settings = blob_settings_from_env({"AUDIO_BLOB_ACCOUNT_URL": URL})
    assert settings.auth is BlobAuth.IDENTITY
    assert settings.sas_token is None and settings.connection_string is None


def test_flags_override_the_environment() -> None:
    env = {"AUDIO_BLOB_ACCOUNT_URL": URL, "AUDIO_BLOB_CONTAINER": "x-y", "AUDIO_BLOB_PREFIX": "a/"}
    settings = blob_settings_from_env(env, container="other", prefix="")
    assert (settings.container, settings.prefix) == ("other", "")


def test_nothing_set_names_every_option() -> None:
    with pytest.raises(ConfigError) as info:
        blob_settings_from_env({})
    message = str(info.value)
    for var in ("AZURE_STORAGE_CONNECTION_STRING", "AUDIO_BLOB_ACCOUNT_URL", "AUDIO_BLOB_SAS"):
        assert var in message


@pytest.mark.parametrize(
    ("env", "match"),
    [
        (
            {"AUDIO_BLOB_ACCOUNT_URL": URL, "AUDIO_BLOB_CONTAINER": "Bad_Name"},
            "AUDIO_BLOB_CONTAINER='Bad_Name'",
        ),
        ({"AUDIO_BLOB_ACCOUNT_URL": URL, "AUDIO_BLOB_CONTAINER": "ab"}, "3-63 lowercase"),
        ({"AUDIO_BLOB_ACCOUNT_URL": URL, "AUDIO_BLOB_PREFIX": "a/../b"}, "AUDIO_BLOB_PREFIX"),
        ({"AUDIO_BLOB_ACCOUNT_URL": "acct.blob.core.windows.net"}, "must be an http"),
        ({"AZURE_STORAGE_CONNECTION_STRING": "just-a-key"}, "not a connection string"),
        (
            {"AZURE_STORAGE_CONNECTION_STRING": "AccountName=a;AccountKey=just-a-key!"},
            "AccountKey is not base64",
        ),
    ],
)
def test_invalid_values_name_the_variable(env: dict[str, str], match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        blob_settings_from_env(env)
    assert "just-a-key" not in str(info.value)


def test_invalid_url_message_hides_its_sas() -> None:
    with pytest.raises(ConfigError) as info:
        blob_settings_from_env({"AUDIO_BLOB_ACCOUNT_URL": "ftp://acct/?sig=S1GNATURE"})
    assert "S1GNATURE" not in str(info.value)


@pytest.mark.parametrize(
    ("raw", "expected"), [("", ""), ("/", ""), ("caches/v1", "caches/v1/"), ("/a/b/", "a/b/")]
)
def test_normalize_prefix(raw: str, expected: str) -> None:
    assert normalize_prefix(raw) == expected
