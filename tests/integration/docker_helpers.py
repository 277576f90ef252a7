"""Docker for the integration tests: engine, base image, the image under test, compose.

No registry is reachable here, so the image is built the air-gapped way: the base is Debian
from debootstrap (``docker/base-image.sh``), the Python dependencies are wheels built on the
host (the host venv and the base are both Python 3.11), and the audio cache comes from the
build context. What is expensive is cached between runs under
``$VOICE_LOADTEST_DOCKER_CACHE`` (default ``~/.cache/voice-loadtest/docker``): one build
context per source digest, the dependency wheels (rebuilt when pyproject.toml changes) and
the audio cache; the base image and the built image stay in the engine (the image is tagged
with a hash of everything it is built from). Other test modules use these helpers too
(test_helm_wiring.py): keep ``ensure_engine``, ``ensure_image``, ``run``, ``inspect``,
``wait_until`` and ``scrape`` stable.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKER_DIR = REPO_ROOT / "docker"
BASE_IMAGE = "voice-loadtest-base:bookworm"
IMAGE_REPO = "voice-loadtest"
_CONTEXT_FILES = ("pyproject.toml", "README.md", "LICENSE")
_DOCKER_FILES = (
    "Dockerfile", "Dockerfile.dockerignore", "entrypoint.sh", "healthcheck.py", "build.sh",
)  # fmt: skip


class DockerSetupError(RuntimeError):
    """The engine, the base image or the image could not be made ready (message says why)."""


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "voice-loadtest" / "docker"
    path = Path(os.environ.get("VOICE_LOADTEST_DOCKER_CACHE", default))
    path.mkdir(parents=True, exist_ok=True)
    return path


def run(
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 300,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run ``command``, capturing text output; ``check`` raises with the output's tail."""
    done = subprocess.run(
        list(command), env={**os.environ, **(env or {})}, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    if check and done.returncode != 0:
        raise DockerSetupError(
            f"{' '.join(command)} exited {done.returncode}:\n"
            f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return done


# ------------------------------------------------------------------------------ engine


def ensure_engine() -> None:
    """Install Docker (and debootstrap) and start dockerd when no engine answers."""
    if run(["docker", "info"], check=False, timeout=30).returncode == 0:
        return
    run(["bash", str(REPO_ROOT / "scripts/deps/docker.sh")], timeout=900)


def compose_command() -> list[str]:
    """``docker compose`` (v2) when the plugin is there, else the v1 ``docker-compose``."""
    if run(["docker", "compose", "version"], check=False, timeout=30).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise DockerSetupError("neither `docker compose` nor `docker-compose` is installed")


def image_id(tag: str) -> str | None:
    done = run(["docker", "image", "inspect", "--format", "{{.Id}}", tag], check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def ensure_base_image() -> str:
    """The debootstrap base (built once; the script skips a tag that exists)."""
    run(["bash", str(DOCKER_DIR / "base-image.sh"), BASE_IMAGE], timeout=900)
    return BASE_IMAGE


# ------------------------------------------------------------------------------ the image


def _files(root: Path, names: Iterable[str]) -> Iterable[Path]:
    for name in names:
        path = root / name
        if path.is_dir():
            yield from sorted(
                p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts
            )
        elif path.is_file():
            yield path


def _sources_digest(extra: str) -> str:
    digest = hashlib.sha256(extra.encode())
    paths = [*_files(REPO_ROOT, (*_CONTEXT_FILES, "loadtest")), *_files(DOCKER_DIR, _DOCKER_FILES)]
    for path in paths:
        digest.update(str(path.relative_to(REPO_ROOT)).encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _python_minor(image: str) -> str:
    done = run(["docker", "run", "--rm", "--entrypoint", "python3", image, "-c",
                "import sys; print('%d.%d' % sys.version_info[:2])"])  # fmt: skip
    return done.stdout.strip()


def _atomic_dir(final: Path, make: Callable[[Path], None]) -> Path:
    """``final``, made by ``make(tmp)`` in a private folder renamed into place, so runs that
    share the cache (test modules, concurrent sessions) never see a half-made one."""
    if final.exists():
        return final
    tmp = final.with_name(f"{final.name}.tmp-{os.getpid()}-{time.monotonic_ns()}")
    try:
        make(tmp)
        try:
            tmp.rename(final)
        except OSError:  # another run got there first: theirs is as good
            if not final.exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _dependency_wheels() -> Path:
    """Wheels of every dependency, rebuilt only when pyproject.toml changes."""
    key = hashlib.sha256((REPO_ROOT / "pyproject.toml").read_bytes()).hexdigest()[:16]

    def make(tmp: Path) -> None:
        run([sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(tmp),
             str(REPO_ROOT)], timeout=900)  # fmt: skip
        for own in tmp.glob("voice_loadtest-*.whl"):
            own.unlink()

    return _atomic_dir(cache_dir() / f"wheels-{key}", make)


def _audio_cache() -> Path:
    """Both built-in scenarios synthesised offline with espeak, once."""

    def make(tmp: Path) -> None:
        run([sys.executable, "-m", "loadtest", "generate-audio", "--out", str(tmp)],
            timeout=300)  # fmt: skip

    return _atomic_dir(cache_dir() / "audio_cache", make)


def stage_context(digest: str) -> Path:
    """The build context for sources with ``digest``: the sources, ``wheels/`` (dependencies
    hard-linked from the cache plus the project's own wheel) and ``audio_cache/``.

    One folder per digest, made once: a rebuild from it hits BuildKit's cache.
    """
    deps, audio = _dependency_wheels(), _audio_cache()

    def make(context: Path) -> None:
        context.mkdir(parents=True)
        for name in _CONTEXT_FILES:
            shutil.copy2(REPO_ROOT / name, context / name)
        shutil.copytree(
            REPO_ROOT / "loadtest", context / "loadtest",
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )  # fmt: skip
        (context / "docker").mkdir()
        for name in _DOCKER_FILES:
            shutil.copy2(DOCKER_DIR / name, context / "docker" / name)
        shutil.copytree(audio, context / "audio_cache")
        wheels = context / "wheels"
        wheels.mkdir()
        for wheel in deps.glob("*.whl"):
            try:
                os.link(wheel, wheels / wheel.name)
            except OSError:
                shutil.copy2(wheel, wheels / wheel.name)
        run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir",
             str(wheels), str(context)], timeout=300)  # fmt: skip
        shutil.rmtree(context / "build", ignore_errors=True)

    return _atomic_dir(cache_dir() / f"context-{digest[:16]}", make)


def build_image(
    tag: str,
    context: Path,
    *,
    base_image: str,
    build_args: Mapping[str, str] | None = None,
    extra: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    timeout: float = 900,
) -> subprocess.CompletedProcess[str]:
    """``docker/build.sh`` (what ``make image`` runs) on a staged context; output captured."""
    command = ["bash", str(context / "docker" / "build.sh"), "--progress", "plain"]
    for key, value in (build_args or {}).items():
        command += ["--build-arg", f"{key}={value}"]
    command += list(extra)
    return run(
        command, env={"CONTEXT": str(context), "IMAGE": tag, "BASE_IMAGE": base_image,
                      **(env or {})}, timeout=timeout,
    )  # fmt: skip


def ensure_image() -> tuple[str, Path]:
    """The image under test and its staged context; built only when an input changed."""
    base = ensure_base_image()
    host = "{}.{}".format(*sys.version_info[:2])
    if (image := _python_minor(base)) != host:
        raise DockerSetupError(
            f"the base image has Python {image} but the host wheels are for {host}: "
            "compiled wheels (numpy, gevent, soxr, ...) would not install"
        )
    digest = _sources_digest(extra=image_id(base) or "")
    tag = f"{IMAGE_REPO}:test-{digest[:12]}"
    context = stage_context(digest)
    if image_id(tag) is not None:
        return tag, context
    build_image(tag, context, base_image=base)
    _remove_stale(keep_tag=tag, keep_context=context)
    return tag, context


def _remove_stale(keep_tag: str, keep_context: Path, older_than_s: float = 1800) -> None:
    """Old ``test-*`` images and build contexts only take space; recent ones may be in use
    by another test run (modules and sessions share them). ``docker rmi`` refuses images
    that containers use."""
    for folder in cache_dir().glob("context-*"):
        if folder != keep_context and time.time() - folder.stat().st_mtime > older_than_s:
            shutil.rmtree(folder, ignore_errors=True)
    listed = run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", IMAGE_REPO])
    for old in listed.stdout.split():
        if not old.startswith(f"{IMAGE_REPO}:test-") or old == keep_tag:
            continue
        created = run(["docker", "image", "inspect", "--format", "{{.Created}}", old],
                      check=False).stdout.strip()  # fmt: skip
        try:  # RFC 3339 with nanoseconds: keep seconds
            when = datetime.fromisoformat(created[:19]).replace(tzinfo=UTC)
        except ValueError:
            continue
        if (datetime.now(UTC) - when).total_seconds() > older_than_s:
            run(["docker", "rmi", old], check=False)


# ------------------------------------------------------------------------------ compose


# What docker-compose.yml reads from the shell, blanked so a developer's own settings (a
# WS_URL, Blob credentials) never leak into a test stack; blank means "the default" there.
# Every published port on a free one, so projects never collide.
CLEAN_COMPOSE_ENV = {
    name: ""
    for name in (
        "WS_URL", "TURNS_PER_USER", "BARGE_IN_RATE", "GREETING", "AUDIO_PULL", "USERS",
        "SPAWN_RATE", "RUN_TIME", "EXPECT_WORKERS", "STOP_TIMEOUT", "LOCUST_HEADLESS",
        "AZURE_STORAGE_CONNECTION_STRING", "AUDIO_BLOB_ACCOUNT_URL", "AUDIO_BLOB_SAS",
        "AUDIO_BLOB_CONTAINER", "AUDIO_BLOB_PREFIX", "AGENT_ARGS", "AGENT_HOST_PORT",
        "AGENT_METRICS_HOST_PORT", "WEB_HOST_PORT", "METRICS_HOST_PORT",
    )
}  # fmt: skip


class ComposeProject:
    """One compose project (a unique name) over docker/docker-compose.yml [+ overrides]."""

    def __init__(
        self, name: str, image: str, *, files: Sequence[str] = ("docker-compose.yml",),
        env: Mapping[str, str] | None = None,
    ) -> None:  # fmt: skip
        self.name = name
        self.command = compose_command()
        self.files = [str(DOCKER_DIR / f) for f in files]
        self.env = {
            **CLEAN_COMPOSE_ENV, "COMPOSE_PROJECT_NAME": name, "VOICE_LOADTEST_IMAGE": image,
            **(env or {}),
        }  # fmt: skip

    def __call__(
        self, *args: str, timeout: float = 300, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        command = [*self.command, "--project-name", self.name]
        for file in self.files:
            command += ["-f", file]
        return run([*command, *args], env=self.env, timeout=timeout, check=check)

    def containers(self, service: str) -> list[str]:
        return sorted(self("ps", "-q", service).stdout.split())

    def published(self, service: str, port: int) -> str:
        """``host:port`` where ``service``'s ``port`` is published."""
        return self("port", service, str(port)).stdout.strip().splitlines()[-1]

    def logs(self, *services: str) -> str:
        return self("logs", "--no-color", *services, check=False).stdout

    def down(self) -> None:
        self("down", "--volumes", "--remove-orphans", "--timeout", "5", check=False)


def compose_mounts(service: str) -> dict[Path, Path]:
    """Container path → host path of ``service``'s bind mounts in docker/docker-compose.yml."""
    import yaml

    compose = yaml.safe_load((DOCKER_DIR / "docker-compose.yml").read_text())
    mounts: dict[Path, Path] = {}
    for volume in compose["services"][service].get("volumes", []):
        host, container = volume.split(":")[:2]
        if host.startswith((".", "/")):
            mounts[Path(container)] = (DOCKER_DIR / host).resolve()
    return mounts


def assemble_mounts(service: str, folder: Path, dest: Path) -> Path:
    """``service``'s container folder ``folder`` rebuilt under ``dest`` from the host paths
    compose mounts into it (files and folders copied), so a tool on the host sees what the
    container sees."""
    for container, host in compose_mounts(service).items():
        if container.is_relative_to(folder):
            target = dest / container.relative_to(folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            if host.is_dir():
                shutil.copytree(host, target)
            else:
                shutil.copy2(host, target)
    return dest


def inspect(name: str) -> dict[str, Any]:
    """``docker inspect`` of one container or image."""
    return dict(json.loads(run(["docker", "inspect", name]).stdout)[0])


def wait_until(
    predicate: Callable[[], object], timeout_s: float, what: str, interval_s: float = 0.5
) -> None:
    """Poll ``predicate()`` until it is truthy; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last: object = None
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except OSError as exc:  # not listening yet
            last = exc
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what} (last: {last!r})")


def scrape(url: str) -> dict[str, float]:
    """A Prometheus text page as ``{'name{labels}': value}`` (comments skipped)."""
    with urllib.request.urlopen(url, timeout=3) as response:
        text = response.read().decode()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            samples[key] = float(value)
    return samples
