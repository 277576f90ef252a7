"""The image and docker compose against a real dockerd (started by the test set-up).

The image is built the air-gapped way (debootstrap base, host-built wheels; see
docker_helpers). Containers only talk to each other, and to 127.0.0.1 with ``--network host``
where a test needs Azurite on the host.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tarfile
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from loadtest.procutil import free_port
from tests.integration import docker_helpers as dh
from tests.integration.conftest import start_azurite
from tests.integration.test_packaging import BUILD_TOOLING

pytestmark = [pytest.mark.integration, pytest.mark.slow]

AGENT_PATH = "/api/v1/media/stream"
# A fast agent that passes the default SLO (the tests turn the callers' greeting wait off).
FAST_AGENT = "--latency-ms 700 --barge-latency-ms 200 --log-level warning"


@pytest.fixture(scope="module")
def built() -> tuple[str, Path]:
    """(image tag, staged build context): dockerd running, base image and image built."""
    try:
        dh.ensure_engine()
        return dh.ensure_image()
    except dh.DockerSetupError as exc:
        pytest.fail(f"docker set-up failed: {exc}")


@pytest.fixture(scope="module")
def image(built: tuple[str, Path]) -> str:
    return built[0]


Project = Callable[..., dh.ComposeProject]


@pytest.fixture
def project(image: str) -> Iterator[Project]:
    """Makes compose projects with unique names; each is taken down (volume too) after."""
    made: list[dh.ComposeProject] = []

    def make(**kwargs: Any) -> dh.ComposeProject:
        stack = dh.ComposeProject(f"vlt{uuid.uuid4().hex[:10]}", image, **kwargs)
        made.append(stack)
        return stack

    yield make
    for stack in made:
        stack.down()


# The plumbing is under test, not the harness's capacity: other tests may share the 2 cores,
# and a load generator that falls behind makes a run invalid (2) by default.
RELAXED_SLO = (
    "harness: {max_lateness_p99_ms: 1000, max_receive_lag_p99_ms: 1000,"
    " max_worker_cpu_percent: 100}\n"
)


@pytest.fixture
def slo_override(tmp_path: Path) -> Path:
    """A compose override that mounts RELAXED_SLO into the master (SLO_FILE)."""
    slo = tmp_path / "slo.yaml"
    slo.write_text(RELAXED_SLO)
    slo.chmod(0o644)
    override = tmp_path / "docker-compose.slo.yml"
    override.write_text(
        "services:\n  master:\n    environment:\n      SLO_FILE: /slo/slo.yaml\n"
        f"    volumes:\n      - {slo}:/slo/slo.yaml:ro\n"
    )
    return override


def _read_reports(container: str, dest: Path) -> dict[str, Any]:
    dh.run(["docker", "cp", f"{container}:/reports/.", str(dest)])
    return dict(json.loads((dest / "summary.json").read_text()))


# ---------------------------------------------------------------------------- (a) headless


def test_headless_compose_run_exits_0_with_a_summary(
    image: str, tmp_path: Path, slo_override: Path
) -> None:
    """`make compose-test`: 1 master + 2 workers + agent, each in its own container."""
    out = tmp_path / "reports"
    name = f"vlt{uuid.uuid4().hex[:10]}"
    env = {
        **dh.CLEAN_COMPOSE_ENV, "VOICE_LOADTEST_IMAGE": image, "COMPOSE_PROJECT_NAME": name,
        "WORKERS": "2", "USERS": "4", "SPAWN_RATE": "4", "RUN_TIME": "15s", "GREETING": "off",
        "AGENT_ARGS": FAST_AGENT, "REPORTS_OUT": str(out),
        "EXTRA_COMPOSE_FILES": str(slo_override),
    }  # fmt: skip
    try:
        done = dh.run(["bash", str(dh.DOCKER_DIR / "compose-test.sh")], env=env, timeout=240,
                      check=False)  # fmt: skip
    finally:
        dh.ComposeProject(name, image).down()
    summary = json.loads((out / "summary.json").read_text())
    assert done.returncode == 0, summary["slo"]
    assert summary["slo"]["verdict"] == "pass"
    assert summary["run"]["role"] == "master" and summary["run"]["workers"] == 2
    assert summary["run"]["target"] == f"ws://agent:8010{AGENT_PATH}"
    assert summary["metrics"]["ttfb_ms"]["count"] >= 4
    assert abs(summary["metrics"]["ttfb_ms"]["p50"] - 700) <= 25
    assert summary["rates"]["connection_success"] == 1.0
    for report in ("locust.html", "locust_stats.csv", "summary.html"):
        assert (out / report).stat().st_size > 0, report
    assert "verdict: PASS (exit code 0)" in done.stdout


def test_exit_code_from_master_is_the_slo_verdict(
    project: Project, tmp_path: Path, slo_override: Path
) -> None:
    """`up --exit-code-from master` returns the verdict: a slow agent fails the SLO (1)."""
    stack: dh.ComposeProject = project(
        files=("docker-compose.yml", "docker-compose.headless.yml", str(slo_override)),
        env={"USERS": "4", "SPAWN_RATE": "4", "RUN_TIME": "20s", "EXPECT_WORKERS": "1",
             "GREETING": "off", "BARGE_IN_RATE": "0",
             "AGENT_ARGS": "--latency-ms 3300 --response-ms 600 --log-level warning"},
    )  # fmt: skip
    done = stack("up", "--scale", "worker=1", "--exit-code-from", "master", timeout=240,
                 check=False)  # fmt: skip
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    summary = _read_reports(stack.containers("master")[0], tmp_path)
    checks = {c["name"]: c for c in summary["slo"]["checks"]}
    assert summary["slo"]["verdict"] == "fail"
    assert checks["ttfb_p95_ms"]["status"] == "fail"


# ---------------------------------------------------------------------------- (b) lost workers


def _users_and_workers(metrics_url: str) -> tuple[float, dict[str, float]]:
    samples = dh.scrape(metrics_url)
    users = sum(v for k, v in samples.items() if k.startswith("voice_loadtest_users{"))
    workers = {
        k.split('state="')[1].split('"')[0]: v
        for k, v in samples.items()
        if k.startswith("voice_loadtest_workers{")
    }
    return users, workers


def test_losing_workers_mid_run_redispatches_their_callers_and_still_reports(
    project: Project, tmp_path: Path, slo_override: Path
) -> None:
    """SIGTERM one worker (it quits; the master hands its callers to the others), SIGKILL
    another (missed heartbeats; same): the master keeps the user count, ends the run and
    reports with a verdict. All of it runs as uid 10001; workers pass their health check."""
    users = 6
    stack: dh.ComposeProject = project(
        files=("docker-compose.yml", "docker-compose.headless.yml", str(slo_override)),
        env={"USERS": str(users), "SPAWN_RATE": "6", "RUN_TIME": "35s", "STOP_TIMEOUT": "3",
             "EXPECT_WORKERS": "3", "GREETING": "off", "AGENT_ARGS": FAST_AGENT},
    )  # fmt: skip
    stack("up", "--detach", "--scale", "worker=3", timeout=180)
    master = stack.containers("master")[0]
    workers = stack.containers("worker")
    assert len(workers) == 3
    metrics = f"http://{stack.published('master', 9646)}/metrics"

    def settled(running: int) -> bool:
        count, states = _users_and_workers(metrics)
        return count == users and states.get("running", 0) == running

    dh.wait_until(lambda: settled(3), 45, "6 callers on 3 running workers")

    # (c) every process of the running master is uid 10001, not root.
    top = dh.run(["docker", "top", master, "-eo", "uid,pid,args"]).stdout.splitlines()[1:]
    assert top and all(line.split()[0] == "10001" for line in top), top

    # SIGTERM: the worker gives its calls STOP_TIMEOUT (3 s) to end, tells the master it quits
    # and exits 0 well before docker's SIGKILL.
    dh.run(["docker", "stop", "--time", "20", workers[0]], timeout=60)
    assert dh.inspect(workers[0])["State"]["ExitCode"] == 0
    dh.wait_until(lambda: settled(2), 20, "callers re-dispatched to 2 workers after SIGTERM")

    dh.run(["docker", "kill", workers[1]])  # SIGKILL: no goodbye, only missed heartbeats
    dh.wait_until(lambda: settled(1), 30, "callers re-dispatched to 1 worker after SIGKILL")
    dh.wait_until(
        lambda: dh.inspect(workers[2])["State"]["Health"]["Status"] == "healthy",
        30, "the surviving worker's health check",
    )  # fmt: skip

    code = int(dh.run(["docker", "wait", master], timeout=120).stdout.strip())
    logs = stack.logs("master")
    summary = _read_reports(master, tmp_path)
    assert code == summary["slo"]["exit_code"], logs[-3000:]  # the verdict, not a crash
    assert code == 0, summary["slo"]  # calls cut short by the stops are not failures
    # The worker that quit is gone by the rules; the killed one is reported, and the run
    # that lost it is a warn, not a pass.
    (lost,) = summary["workers_lost"]
    assert summary["slo"]["verdict"] == "warn"
    assert summary["counts"]["worker_lost"] == lost["calls_in_flight"]
    assert summary["metrics"]["ttfb_ms"]["count"] > 0
    assert "Traceback" not in logs
    assert (tmp_path / "locust.html").is_file()


# ---------------------------------------------------------------------------- Prometheus


def _start_prometheus(config: Path, data: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("prometheus")
    if binary is None:
        dh.run(["bash", str(dh.REPO_ROOT / "scripts/deps/prometheus.sh")], timeout=600)
        binary = shutil.which("prometheus")
    assert binary is not None, "prometheus not installed"
    address = f"127.0.0.1:{free_port()}"
    log = (data.parent / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={data}",
         f"--web.listen-address={address}"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    log.close()
    return process, f"http://{address}"


def _api(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=3) as response:
        return json.loads(response.read())["data"]


def test_web_ui_stack_is_scraped_by_prometheus_as_compose_wires_it(
    project: Project, tmp_path: Path
) -> None:
    """/etc/prometheus as compose mounts it (docker/prometheus/prometheus.yml and the chart's
    rules), run by the host's Prometheus with each compose target (service:port) replaced by
    where compose published it: every job is up, the alert rules load, and callers started
    from the web UI show up in Prometheus."""
    stack: dh.ComposeProject = project(env={"GREETING": "off", "AGENT_ARGS": FAST_AGENT})
    stack("up", "--detach", "--scale", "worker=2", timeout=180)
    published = {
        "master:9646": stack.published("master", 9646),
        "agent:9647": stack.published("agent", 9647),
    }
    etc = dh.assemble_mounts("prometheus", Path("/etc/prometheus"), tmp_path / "etc")
    config = yaml.safe_load((etc / "prometheus.yml").read_text())
    for job in config["scrape_configs"]:
        for group in job["static_configs"]:
            unknown = set(group["targets"]) - set(published)
            assert not unknown, f"{job['job_name']}: compose does not publish {unknown}"
            group["targets"] = [published[t] for t in group["targets"]]
    (etc / "prometheus.yml").write_text(yaml.safe_dump(config))  # rule_files stay relative
    process, prometheus = _start_prometheus(etc / "prometheus.yml", tmp_path / "data")
    try:
        web = f"http://{stack.published('master', 8089)}"
        dh.wait_until(lambda: dh.scrape(f"http://{published['master:9646']}/metrics").get(
            'voice_loadtest_workers{state="ready"}') == 2, 30, "2 workers ready")  # fmt: skip
        body = urllib.parse.urlencode({"user_count": 2, "spawn_rate": 2}).encode()
        with urllib.request.urlopen(f"{web}/swarm", data=body, timeout=5) as response:
            assert json.loads(response.read())["success"] is True

        def all_up() -> bool:
            targets = _api(f"{prometheus}/api/v1/targets")["activeTargets"]
            return len(targets) == len(published) and all(t["health"] == "up" for t in targets)

        dh.wait_until(all_up, 40, "every scrape target up")
        assert _api(f"{prometheus}/api/v1/rules")["groups"], "alerts.yml did not load"
        query = urllib.parse.quote("sum(voice_loadtest_users)")
        dh.wait_until(
            lambda: [float(r["value"][1]) for r in
                     _api(f"{prometheus}/api/v1/query?query={query}")["result"]] == [2.0],
            30, "2 callers in Prometheus",
        )  # fmt: skip
    finally:
        process.terminate()
        process.wait(timeout=20)


# ---------------------------------------------------------------------------- (c) non-root


def test_image_runs_as_non_root_with_labels_and_a_health_check(image: str) -> None:
    assert dh.run(["docker", "run", "--rm", image, "id", "-u"]).stdout.strip() == "10001"
    config = dh.inspect(image)["Config"]
    assert config["User"] == "10001:10001"
    assert "PYTHONUNBUFFERED=1" in config["Env"]
    assert config["Healthcheck"]["Test"][0] == "CMD"
    assert {"5557/tcp", "8089/tcp", "9646/tcp", "8010/tcp"} <= set(config["ExposedPorts"])
    labels = config["Labels"]
    assert labels["org.opencontainers.image.title"] == "voice-loadtest"
    assert labels["org.opencontainers.image.version"] == "0.1.0"
    # The baked-in cache passes the audit, as the user the harness runs as.
    done = dh.run(["docker", "run", "--rm", image, "voice-loadtest", "audio", "inspect"])
    assert "0 problem(s)" in done.stdout
    # Only the runtime ships: the generators and the benchmark stay in the repository.
    done = dh.run(["docker", "run", "--rm", image, "python", "-c", "import loadtest.k8s_manifests"],
                  check=False)  # fmt: skip
    assert done.returncode == 1 and "No module named 'loadtest.k8s_manifests'" in done.stderr
    listing = (
        "import importlib.util as u, pathlib, loadtest; "
        "site = pathlib.Path(loadtest.__file__).parents[1]; "
        "print(*sorted(str(p.relative_to(site)) for p in site.joinpath('loadtest').rglob('*')), "
        "*[f'{m}/' for m in ('tools', 'bench') if u.find_spec(m)])"
    )
    files = dh.run(["docker", "run", "--rm", image, "python", "-c", listing]).stdout.split()
    assert {"loadtest/cli.py", "loadtest/runtime/caller.py"} <= set(files)
    tooling = [f for f in files if f.startswith(BUILD_TOOLING)]
    assert not tooling, f"build tooling in the image: {tooling}"


# ---------------------------------------------------------------------------- Blob (d), (e)


@dataclass
class Blob:
    """Azurite on 127.0.0.1 with an account whose key is a recognisable secret."""

    port: int
    account: str
    key: str
    container: str
    prefix: str
    cache: Path  # what was pushed

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={self.account};AccountKey={self.key};"
            f"BlobEndpoint=http://127.0.0.1:{self.port}/{self.account};"
        )

    def env(self) -> dict[str, str]:
        return {
            "AZURE_STORAGE_CONNECTION_STRING": self.connection_string,
            "AUDIO_BLOB_CONTAINER": self.container,
            "AUDIO_BLOB_PREFIX": self.prefix,
        }


@pytest.fixture(scope="module")
def blob(built: tuple[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Blob]:
    """The context's audio cache pushed with `voice-loadtest audio push` to a private
    Azurite whose account key starts with a marker (valid base64) to search for later."""
    key = "VLTSECRETMARKER0" + secrets.token_hex(16).upper()
    account = "vltdocker"
    saved = os.environ.get("AZURITE_ACCOUNTS")
    os.environ["AZURITE_ACCOUNTS"] = f"{account}:{key}"
    try:
        server = start_azurite(tmp_path_factory.mktemp("azurite-docker"))
    finally:
        if saved is None:
            os.environ.pop("AZURITE_ACCOUNTS", None)
        else:
            os.environ["AZURITE_ACCOUNTS"] = saved
    store = Blob(server.port, account, key, f"c{uuid.uuid4().hex[:12]}", "caches/v1/",
                 built[1] / "audio_cache")  # fmt: skip
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AUDIO_BLOB_", "AZURE_"))}
    pushed = subprocess.run(
        [sys.executable, "-m", "loadtest", "audio", "push", "--create-container",
         str(store.cache)],
        env={**clean, **store.env()}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    yield store
    server.stop()


def _sha256s(directory: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.iterdir())
        if p.suffix == ".pcm" or p.name == "manifest.jsonl"
    }


def _image_bytes_contain(image: str, needles: list[bytes]) -> list[bytes]:
    """Which needles occur anywhere in `docker save IMAGE` (config, manifests, every layer)."""
    found: set[bytes] = set()
    overlap = max(len(n) for n in needles)
    with subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE) as save:
        assert save.stdout is not None
        with tarfile.open(fileobj=save.stdout, mode="r|") as outer:
            for member in outer:
                handle = outer.extractfile(member)
                if handle is None:
                    continue
                tail = b""
                while chunk := handle.read(1 << 20):
                    window = tail + chunk
                    found.update(n for n in needles if n in window)
                    tail = window[-overlap:]
    assert save.returncode == 0
    return sorted(found)


def test_secrets_stay_out_of_history_layers_config_and_logs(
    built: tuple[str, Path], blob: Blob, tmp_path: Path
) -> None:
    """(d) The connection string goes in as a BuildKit secret (AUDIO_SOURCE=blob) and, at
    run time, as an environment variable: neither is in `docker history`, any layer, the
    image config, the build output or the container's logs (a failed pull included)."""
    image, context = built
    tag = f"{dh.IMAGE_REPO}:secret-{uuid.uuid4().hex[:8]}"
    needles = [blob.key.encode(), blob.connection_string.encode()]
    try:
        build = dh.build_image(
            tag, context, base_image=dh.BASE_IMAGE,
            build_args={"AUDIO_SOURCE": "blob", "AUDIO_BLOB_CONTAINER": blob.container,
                        "AUDIO_BLOB_PREFIX": blob.prefix},
            extra=["--network", "host",
                   "--secret", "id=azure_storage,env=AZURE_STORAGE_CONNECTION_STRING"],
            env={"AZURE_STORAGE_CONNECTION_STRING": blob.connection_string},
        )  # fmt: skip
        assert "audio cache: blob" in build.stderr + build.stdout
        assert blob.key not in build.stdout + build.stderr

        history = dh.run(["docker", "history", "--no-trunc", tag]).stdout
        assert blob.key not in history
        assert blob.key not in json.dumps(dh.inspect(tag))  # Config, ContainerConfig, labels
        control = b"PCM_DIR=/opt/voice-loadtest/audio"  # in the config: the scan does see it
        assert _image_bytes_contain(tag, [*needles, control]) == [control]

        # The cache in the image is the one that was pushed, byte for byte.
        probe = dh.run(["docker", "create", tag]).stdout.strip()
        try:
            out = tmp_path / "audio"
            dh.run(["docker", "cp", f"{probe}:/opt/voice-loadtest/audio", str(out)])
        finally:
            dh.run(["docker", "rm", probe])
        assert _sha256s(out) == _sha256s(blob.cache)
    finally:
        dh.run(["docker", "rmi", "--force", tag], check=False)

    # Run time: a wrong key fails the start-up pull with one clear line, never the secret.
    wrong = base64.b64encode(b"VLTSECRETMARKER-wrong-key-" + secrets.token_bytes(12)).decode()
    env = {**blob.env(), "AZURE_STORAGE_CONNECTION_STRING":
           blob.connection_string.replace(blob.key, wrong), "PCM_DIR": "/tmp/audio"}  # fmt: skip
    args = [f"--env={k}={v}" for k, v in env.items()]
    done = dh.run(["docker", "run", "--rm", "--network", "host", *args, image, "pull-audio"],
                  check=False, timeout=120)  # fmt: skip
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert wrong not in output and blob.key not in output
    assert "Traceback" not in output


def test_audio_cache_in_azurite_is_pulled_at_start_up_and_verified(
    image: str, blob: Blob, tmp_path: Path
) -> None:
    """(e) A worker-side container with an empty PCM_DIR and Blob settings pulls the cache,
    verifies it, then runs calls with it; the secret is not in its logs."""
    agent_port = free_port()
    agent = dh.run(["docker", "run", "--detach", "--network", "host",
                    "--env", f"AGENT_PORT={agent_port}", "--env", "AGENT_METRICS_PORT=0",
                    image, "agent", *FAST_AGENT.split()]).stdout.strip()  # fmt: skip
    caller = f"vlt-pull-{uuid.uuid4().hex[:8]}"
    try:
        dh.wait_until(
            lambda: dh.inspect(agent)["State"]["Running"]
            and dh.run(["docker", "exec", agent, "python", "/opt/voice-loadtest/healthcheck.py"],
                       check=False).returncode == 0,
            30, "the agent container",
        )  # fmt: skip
        env = {
            **blob.env(), "PCM_DIR": "/tmp/audio", "LOCUST_HEADLESS": "true",
            "LOCUST_USERS": "2", "LOCUST_SPAWN_RATE": "2", "LOCUST_RUN_TIME": "15s",
            "WS_URL": f"ws://127.0.0.1:{agent_port}{AGENT_PATH}", "GREETING": "off",
            "METRICS_PORT": "0", "SLO_FILE": "/slo/slo.yaml",
        }  # fmt: skip
        slo = tmp_path / "slo.yaml"
        slo.write_text(RELAXED_SLO)
        slo.chmod(0o644)
        args = [f"--env={k}={v}" for k, v in env.items()]
        dh.run(["docker", "run", "--detach", "--name", caller, "--network", "host", *args,
                "--volume", f"{slo}:/slo/slo.yaml:ro", image, "standalone"])  # fmt: skip
        code = int(dh.run(["docker", "wait", caller], timeout=120).stdout.strip())
        shown = dh.run(["docker", "logs", caller])
        logs = shown.stdout + shown.stderr
        assert code == 0, logs[-4000:]
        assert "pulling the audio cache into /tmp/audio" in logs
        assert "audio cache in /tmp/audio verified" in logs
        assert blob.key not in logs
        dh.run(["docker", "cp", f"{caller}:/tmp/audio", str(tmp_path / "pulled")])
        assert _sha256s(tmp_path / "pulled") == _sha256s(blob.cache)
        summary = _read_reports(caller, tmp_path / "reports")
        assert summary["metrics"]["ttfb_ms"]["count"] > 0
        assert summary["slo"]["verdict"] == "pass"
    finally:
        dh.run(["docker", "rm", "--force", caller], check=False)
        dh.run(["docker", "stop", "--time", "5", agent], check=False)
        dh.run(["docker", "rm", "--force", agent], check=False)
