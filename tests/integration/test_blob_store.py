"""The Blob audio store against a real Azurite (started on 127.0.0.1 by the fixtures)."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from azure.storage.blob import ContainerClient

from loadtest.audio.cache import load_cache
from loadtest.audio.manifest import MANIFEST_NAME
from loadtest.errors import StorageError, StorageUnreachable
from loadtest.storage.base import StoredObject
from loadtest.storage.blob import BlobStore
from loadtest.storage.retry import RetryWindow
from loadtest.storage.settings import blob_settings_from_env
from loadtest.storage.sync import pull_cache, push_cache
from tests.integration.conftest import AZURITE_KEY, REPO_ROOT, Azurite

pytestmark = pytest.mark.integration

PREFIX = "caches/v1/"
BAD_SAS = "sv=2023-11-03&sp=rl&se=2030-01-01T00:00:00Z&sr=c&sig=Zm9vYmFyU0VDUkVU"
WRONG_KEY = base64.b64encode(b"not the azurite key, but valid base64 bytes!").decode()


def _env(azurite: Azurite, container: str, key: str = AZURITE_KEY) -> dict[str, str]:
    return {
        "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string(key),
        "AUDIO_BLOB_CONTAINER": container,
        "AUDIO_BLOB_PREFIX": PREFIX,
    }


@pytest.fixture
def container() -> str:
    return f"t{uuid.uuid4().hex[:16]}"


@pytest.fixture
def store(azurite: Azurite, container: str) -> Iterator[BlobStore]:
    store = BlobStore.from_settings(blob_settings_from_env(_env(azurite, container)))
    assert store.create_container() is True
    yield store
    store.close()


@pytest.fixture
def raw(azurite: Azurite, container: str) -> Iterator[ContainerClient]:
    """The container seen directly through the SDK, behind the store's back."""
    client = ContainerClient.from_connection_string(azurite.connection_string(), container)
    yield client
    client.close()


def _etags(client: ContainerClient) -> dict[str, str]:
    return {b.name: b.etag for b in client.list_blobs(name_starts_with=PREFIX)}


def _pcm_names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("*.pcm"))


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AUDIO_BLOB_", "AZURE_"))}
    return subprocess.run(
        [sys.executable, "-m", "loadtest", "audio", *args],
        cwd=REPO_ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


class RecordingStore:
    """A BlobStore that notes each put and what Azurite lists when the manifest is put."""

    def __init__(self, inner: BlobStore) -> None:
        self.inner = inner
        self.puts: list[str] = []
        self.listed_at_manifest: set[str] = set()

    @property
    def location(self) -> str:
        return self.inner.location

    def create_container(self) -> bool:
        return self.inner.create_container()

    def list_objects(self) -> list[StoredObject]:
        return self.inner.list_objects()

    def get(self, name: str) -> Iterator[bytes]:
        return self.inner.get(name)

    def put(self, name: str, source: Path, *, sha256: str) -> None:
        if name == MANIFEST_NAME:
            self.listed_at_manifest = {o.name for o in self.inner.list_objects()}
        self.puts.append(name)
        self.inner.put(name, source, sha256=sha256)

    def delete(self, name: str) -> None:
        self.inner.delete(name)


@pytest.mark.parametrize("source", ["espeak", "azure-legacy"])
def test_round_trip(
    source: str,
    store: BlobStore,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    fixture = "espeak_cache_dir" if source == "espeak" else "azure_sample_dir"
    cache_dir: Path = request.getfixturevalue(fixture)
    pushed = push_cache(store, cache_dir)
    assert pushed.plan.manifest_changed and len(pushed.plan.upload) == len(_pcm_names(cache_dir))
    target = tmp_path / "pulled"
    pulled = pull_cache(store, target, concurrency=4)
    assert len(pulled.plan.download) == len(_pcm_names(cache_dir))
    assert _pcm_names(target) == _pcm_names(cache_dir)
    for name in _pcm_names(cache_dir):
        assert (target / name).read_bytes() == (cache_dir / name).read_bytes()
    original, copy = load_cache(cache_dir), load_cache(target)
    assert copy.scenarios.keys() == original.scenarios.keys()
    again = pull_cache(store, target)
    assert again.plan.download == () and not again.manifest_written


def test_second_push_uploads_nothing(
    store: BlobStore, raw: ContainerClient, espeak_cache_dir: Path
) -> None:
    push_cache(store, espeak_cache_dir)
    before = _etags(raw)
    recorder = RecordingStore(store)
    again = push_cache(recorder, espeak_cache_dir)
    assert recorder.puts == [] and again.plan.upload == () and not again.plan.manifest_changed
    assert _etags(raw) == before  # not one blob rewritten


def test_manifest_is_uploaded_last(
    store: BlobStore, raw: ContainerClient, espeak_cache_dir: Path
) -> None:
    recorder = RecordingStore(store)
    push_cache(recorder, espeak_cache_dir, concurrency=8)
    assert recorder.puts[-1] == MANIFEST_NAME
    # At the moment the manifest was written, Azurite already listed every file it names.
    assert recorder.listed_at_manifest == set(_pcm_names(espeak_cache_dir))
    manifest = raw.get_blob_client(PREFIX + MANIFEST_NAME).get_blob_properties()
    assert manifest.metadata["sha256"] and manifest.content_settings.content_type == (
        "application/x-ndjson"
    )


def test_tampered_blob_is_detected_on_pull(
    store: BlobStore, raw: ContainerClient, espeak_cache_dir: Path, tmp_path: Path
) -> None:
    push_cache(store, espeak_cache_dir)
    victim = _pcm_names(espeak_cache_dir)[2]
    blob = raw.get_blob_client(PREFIX + victim)
    metadata = blob.get_blob_properties().metadata
    data = bytearray(blob.download_blob().readall())
    data[len(data) // 2] ^= 0x55
    blob.upload_blob(bytes(data), overwrite=True, metadata=metadata)  # bytes changed, sha kept

    target = tmp_path / "pulled"
    with pytest.raises(StorageError) as info:
        pull_cache(store, target)
    message = str(info.value)
    assert "\n" not in message
    assert f"1 file(s) failed ({victim}); first error: {victim}: sha256 mismatch" in message
    assert victim not in _pcm_names(target)
    assert len(_pcm_names(target)) == len(_pcm_names(espeak_cache_dir)) - 1
    assert not (target / MANIFEST_NAME).exists()
    assert [p.name for p in target.iterdir() if p.name.startswith(".")] == []


def test_interrupted_pull_leaves_no_partial_file(
    azurite_factory: Callable[[], Azurite], espeak_cache_dir: Path, tmp_path: Path
) -> None:
    server = azurite_factory()
    settings = blob_settings_from_env(_env(server, "interrupted"))
    store = BlobStore.from_settings(
        settings, retry_total=0, max_single_get_size=4096, max_chunk_get_size=4096
    )
    store.create_container()
    push_cache(store, espeak_cache_dir)

    class DyingServer(RecordingStore):
        """Azurite is stopped after the first chunk of the first PCM file."""

        def get(self, name: str) -> Iterator[bytes]:
            chunks = self.inner.get(name)
            if name != MANIFEST_NAME and server.process.poll() is None:
                yield next(chunks)
                server.stop()
            yield from chunks

    target = tmp_path / "pulled"
    with pytest.raises(StorageError) as info:
        pull_cache(DyingServer(store), target, concurrency=1)
    store.close()
    message = str(info.value)
    assert "\n" not in message and "cannot reach the storage account" in message
    first = _pcm_names(espeak_cache_dir)[0]
    assert f"file(s) failed ({first}, " in message and "first error: download " in message
    assert _pcm_names(target) == []
    assert sorted(p.name for p in target.iterdir()) == []  # no temp file, no manifest


def test_azurite_killed_mid_pull_is_retried_until_the_timeout_then_one_error(
    azurite_factory: Callable[[], Azurite], espeak_cache_dir: Path, tmp_path: Path
) -> None:
    server = azurite_factory()
    settings = blob_settings_from_env(_env(server, "killed"))
    BlobStore.from_settings(settings).create_container()
    push_cache(BlobStore.from_settings(settings), espeak_cache_dir)
    lines: list[str] = []
    window = RetryWindow(6.0, on_retry=lines.append)
    store = BlobStore.from_settings(settings, window=window)

    class KilledAfterTheFirstFile(RecordingStore):
        def get(self, name: str) -> Iterator[bytes]:
            if name != MANIFEST_NAME and server.process.poll() is None:
                yield from self.inner.get(name)
                server.process.kill()  # no goodbye: the next request finds nobody listening
                server.process.wait()
                return
            yield from self.inner.get(name)

    target = tmp_path / "pulled"
    started = time.monotonic()
    with pytest.raises(StorageUnreachable) as info:
        pull_cache(KilledAfterTheFirstFile(store), target, concurrency=1)
    elapsed = time.monotonic() - started
    store.close()
    assert elapsed < 6.0 + 11.0  # the window, plus at most one bounded attempt
    message = str(info.value)
    assert "\n" not in message and "gave up when --timeout (6 s) ran out" in message
    assert "cannot reach the storage account" in message
    assert lines and all(line.startswith("Blob unreachable (") for line in lines)
    assert [int(line.split("retry ")[1].split()[0]) for line in lines] == list(
        range(1, len(lines) + 1)
    )
    assert len(_pcm_names(target)) == 1  # the verified file is kept, nothing half-written
    assert sorted(p.name for p in target.iterdir()) == _pcm_names(target)  # no temp, manifest


def test_cli_pull_with_blob_down_gives_up_within_its_timeout(
    azurite_factory: Callable[[], Azurite], tmp_path: Path
) -> None:
    server = azurite_factory()
    env = _env(server, "down")
    server.stop()
    started = time.monotonic()
    run = _cli("pull", str(tmp_path / "pulled"), "--timeout", "5", env=env)
    elapsed = time.monotonic() - started
    assert run.returncode == 2, run.stderr
    errors = [line for line in run.stderr.splitlines() if "error:" in line]
    retries = [line for line in run.stderr.splitlines() if "Blob unreachable" in line]
    assert len(errors) == 1 and "gave up when --timeout (5 s) ran out" in errors[0], run.stderr
    assert retries and "retry 1 in " in retries[0] and "Traceback" not in run.stderr
    assert elapsed < 5 + 11 + 10  # the timeout, one bounded attempt, interpreter start-up


def test_delete_prunes_only_stale_blobs_under_the_prefix(
    store: BlobStore, raw: ContainerClient, espeak_cache_dir: Path
) -> None:
    raw.upload_blob(PREFIX + "stale_turn_1_of_1_old.pcm", b"\x00\x01")
    raw.upload_blob(PREFIX + "v0/other_cache.pcm", b"\x00\x01")  # a deeper "folder"
    raw.upload_blob("outside.pcm", b"\x00\x01")
    push_cache(store, espeak_cache_dir)
    assert PREFIX + "stale_turn_1_of_1_old.pcm" in _etags(raw)
    result = push_cache(store, espeak_cache_dir, delete=True)
    assert result.plan.delete == ("stale_turn_1_of_1_old.pcm",)
    names = {b.name for b in raw.list_blobs()}
    assert PREFIX + "stale_turn_1_of_1_old.pcm" not in names
    assert {PREFIX + "v0/other_cache.pcm", "outside.pcm"} <= names
    assert {PREFIX + n for n in [*_pcm_names(espeak_cache_dir), MANIFEST_NAME]} <= names


# --- through the CLI (needs `audio push|pull|ls` wired into loadtest/cli.py) ----------------


def test_cli_push_ls_pull(
    azurite: Azurite, container: str, espeak_cache_dir: Path, tmp_path: Path
) -> None:
    env = _env(azurite, container)
    push = _cli("push", str(espeak_cache_dir), "--create-container", env=env)
    assert push.returncode == 0, push.stderr
    assert "manifest uploaded" in push.stdout
    again = _cli("push", str(espeak_cache_dir), env=env)
    assert again.returncode == 0 and " 0 uploaded," in again.stdout, again.stderr
    listing = _cli("ls", env=env)
    assert listing.returncode == 0, listing.stderr
    assert MANIFEST_NAME in listing.stdout and "caches/v1/" in listing.stdout
    pull = _cli("pull", str(tmp_path / "pulled"), "--concurrency", "3", env=env)
    assert pull.returncode == 0, pull.stderr
    load_cache(tmp_path / "pulled")


@pytest.mark.parametrize(
    ("action", "env_of"),
    [
        ("ls", lambda a, c: _env(a, c, WRONG_KEY)),
        ("pull", lambda a, c: _env(a, c, WRONG_KEY)),
        (
            "ls",
            lambda a, c: {
                "AUDIO_BLOB_ACCOUNT_URL": a.account_url,
                "AUDIO_BLOB_SAS": BAD_SAS,
                "AUDIO_BLOB_CONTAINER": c,
            },
        ),
    ],
    ids=["wrong-key-ls", "wrong-key-pull", "bad-sas-ls"],
)
def test_bad_credentials_give_one_clear_line(
    action: str,
    env_of: Callable[[Azurite, str], dict[str, str]],
    azurite: Azurite,
    store: BlobStore,
    espeak_cache_dir: Path,
    container: str,
    tmp_path: Path,
) -> None:
    push_cache(store, espeak_cache_dir)
    env = env_of(azurite, container)
    args = [action] + ([str(tmp_path / "pulled")] if action == "pull" else [])
    run = _cli(*args, env=env)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("voice-loadtest: error: ") and "access denied" in lines[0]
    for secret in (WRONG_KEY, AZURITE_KEY, "Zm9vYmFyU0VDUkVU"):
        assert secret not in run.stderr + run.stdout
    assert not (tmp_path / "pulled" / MANIFEST_NAME).exists()
