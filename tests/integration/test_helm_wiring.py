"""The chart's wiring, run for real: the rendered pod specs as containers on a docker network.

Each rendered pod (agent simulator Deployment, master Job, worker Deployment, the ``helm test``
pod) becomes one ``docker run`` with exactly its image, command, args and environment (``env``
over ``envFrom`` of the rendered ConfigMap, ``fieldRef`` to the pod name), its security
context (uid/gid, read-only root filesystem, all capabilities dropped, no new privileges), its
CPU/memory limits and its volumes (``emptyDir`` and ``configMap`` as host folders, an existing
``persistentVolumeClaim`` as the host folder the test says it holds). The network
alias of a container is the name of every rendered Service whose selector matches the pod's
labels, so the master is reached under its Service name as in the cluster. Readiness is the
rendered probe, sent to the container's published port.

A headless run (mode=run) with one worker completes with a verdict and reports; a second worker
started mid-run (what the HPA does) is given callers by the rebalancing master. The workers'
audio comes the chart's Blob way: each worker's ``pull-audio`` initContainer downloads and
verifies the cache from Blob Storage (Azurite on 127.0.0.1, so only that container runs on the
host network) into the ``emptyDir`` the worker reads as ``PCM_DIR``; the ``existingSecret`` is
played by a dict of the Secret's data.

Another run takes its scenarios file from a ConfigMap the user made and its audio from an
existing claim (a host folder mounted read-only, with the claim's subPath), and its summary
names both. An interactive master with ``master.auth`` refuses its web UI and API without the
Secret's account (401) and serves them with it.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from loadtest.audio.cache import load_cache
from tests.integration import docker_helpers as dh
from tests.integration.conftest import Azurite
from tests.integration.test_helm_render import Rendered, pod_specs, render

pytestmark = [pytest.mark.integration, pytest.mark.slow]

USERS = 6
SLO = {
    "ttfb_p95_ms": {"target": 1500, "acceptable": 2500},
    # The harness limits at their defaults: the worker that hands callers to a newly joined
    # one must keep its timing through the rebalance (loadtest/runtime/locust_fixes.py).
    "harness": {"max_lateness_p99_ms": 20, "max_receive_lag_p99_ms": 20},
}
FAST_AGENT = ["--latency-ms", "700", "--barge-latency-ms", "200", "--log-level", "warning"]


def _cpus(quantity: str) -> str:
    return str(int(quantity[:-1]) / 1000) if quantity.endswith("m") else quantity


def _memory(quantity: str) -> str:
    units = {"Ki": "k", "Mi": "m", "Gi": "g"}
    return next((quantity[:-2] + u for s, u in units.items() if quantity.endswith(s)), quantity)


class Cluster:
    """Rendered pods as containers on one docker network (a tiny, honest kubelet)."""

    def __init__(
        self,
        rendered: Rendered,
        root: Path,
        secrets: dict[str, dict[str, str]] | None = None,
        init_network: str = "",
        configmaps: dict[str, dict[str, str]] | None = None,
        claims: dict[str, Path] | None = None,
    ) -> None:
        self.rendered = rendered
        self.secrets = secrets or {}
        self.claims = claims or {}  # PersistentVolumeClaim name -> the host folder it holds
        self.root = root
        self.network = f"vlt-helm-{uuid.uuid4().hex[:8]}"
        self.containers: list[str] = []
        self.volumes: dict[tuple[str, str], Path] = {}  # (container, volume) -> host folder
        self.config = {
            o["metadata"]["name"]: o.get("data") or {}
            for o in rendered.objects
            if o["kind"] == "ConfigMap"
        }
        self.config.update(configmaps or {})  # ConfigMaps the user made, named in values
        dh.run(["docker", "network", "create", self.network])
        self.init_network = init_network or self.network

    def pod(self, suffix: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """(pod metadata, pod spec) of the rendered object named ``*suffix``."""
        return next((m, s) for name, m, s in pod_specs(self.rendered) if name.endswith(suffix))

    def _aliases(self, labels: dict[str, str]) -> list[str]:
        return [
            o["metadata"]["name"]
            for o in self.rendered.objects
            if o["kind"] == "Service" and o["spec"]["selector"].items() <= labels.items()
        ]

    def _volume(self, name: str, volume: dict[str, Any]) -> Path:
        if "persistentVolumeClaim" in volume:  # an existing claim: the host folder it holds
            path = self.claims[volume["persistentVolumeClaim"]["claimName"]]
            self.volumes[name, volume["name"]] = path
            return path
        path = self.root / name / volume["name"]
        path.mkdir(parents=True)
        self.volumes[name, volume["name"]] = path
        if "configMap" in volume:
            data = self.config[volume["configMap"]["name"]]
            items = volume["configMap"].get("items") or [{"key": k, "path": k} for k in data]
            for item in items:
                (path / item["path"]).write_text(data[item["key"]])
                (path / item["path"]).chmod(0o644)
            path.chmod(0o755)
        else:
            assert set(volume) == {"name", "emptyDir"}, volume
            path.chmod(0o1777)  # an emptyDir is writable by the pod's user
        return path

    def _env(self, ctr: dict[str, Any], name: str) -> dict[str, str]:
        """``envFrom`` (ConfigMaps, Secrets) first, ``env`` over it, as the kubelet does."""
        env: dict[str, str] = {}
        for source in ctr.get("envFrom", []):
            if "configMapRef" in source:
                env.update(self.config[source["configMapRef"]["name"]])
            else:
                env.update(self.secrets[source["secretRef"]["name"]])
        for item in ctr.get("env", []):
            if "value" in item:
                env[item["name"]] = item["value"]
            elif "secretKeyRef" in item["valueFrom"]:
                ref = item["valueFrom"]["secretKeyRef"]
                env[item["name"]] = self.secrets[ref["name"]][ref["key"]]
            else:
                assert item["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}, item
                env[item["name"]] = name
        return env

    def _args(self, name: str, spec: dict[str, Any], ctr: dict[str, Any]) -> list[str]:
        """``docker run`` options for ``ctr``: user, security, limits, mounts, env."""
        pod_ctx, ctx = spec["securityContext"], ctr["securityContext"]
        limits = ctr["resources"]["limits"]
        args = [
            "--user",
            f"{pod_ctx['runAsUser']}:{pod_ctx['runAsGroup']}",
            "--group-add",
            str(pod_ctx["fsGroup"]),
            "--cap-drop",
            "ALL",
            "--cpus",
            _cpus(str(limits["cpu"])),
            "--memory",
            _memory(limits["memory"]),
        ]
        assert ctx["capabilities"] == {"drop": ["ALL"]} and ctx["runAsNonRoot"]
        if ctx["readOnlyRootFilesystem"]:
            args.append("--read-only")
        if not ctx["allowPrivilegeEscalation"]:
            args += ["--security-opt", "no-new-privileges"]
        for mount in ctr.get("volumeMounts", []):
            mode = "ro" if mount.get("readOnly") else "rw"
            host = self.volumes[name, mount["name"]] / mount.get("subPath", "")
            args += ["--volume", f"{host}:{mount['mountPath']}:{mode}"]
        for key, value in self._env(ctr, name).items():
            args += ["--env", f"{key}={value}"]
        command = list(ctr.get("command", []))
        if command:
            args += ["--entrypoint", command[0]]
        return [*args, ctr["image"], *command[1:], *ctr.get("args", [])]

    def start(self, suffix: str, name: str) -> str:
        """Run pod ``*suffix`` as container ``name``: its initContainers to completion first
        (on the host network when ``init_network`` says so), then its first container."""
        meta, spec = self.pod(suffix)
        for volume in spec.get("volumes", []):
            self._volume(name, volume)
        for init in spec.get("initContainers", []):
            done = dh.run(
                [
                    "docker",
                    "run",
                    "--rm",
                    "--network",
                    self.init_network,
                    *self._args(name, spec, init),
                ],
                check=False,
                timeout=300,
            )
            assert done.returncode == 0, f"{init['name']}: {done.stdout}{done.stderr}"
        ctr = spec["containers"][0]
        args = ["docker", "run", "--detach", "--name", name, "--network", self.network]
        for alias in self._aliases(meta["labels"]):
            args += ["--network-alias", alias]
        for port in ctr.get("ports", []):
            args += ["--publish", f"127.0.0.1::{port['containerPort']}"]
        dh.run([*args, *self._args(name, spec, ctr)])
        self.containers.append(name)
        return name

    def start_run(self, tag: str, worker: str) -> tuple[str, str]:
        """The agent, the run's master and one worker named ``worker``, each started once the
        one before is ready: (agent, master)."""
        agent, master = f"agent-{tag}", f"master-{tag}"
        for suffix, name in (("-agent", agent), ("-master-run-1", master), ("-worker", worker)):
            self.start(suffix, name)
            self.wait_ready(suffix, name)
        return agent, master

    def url(self, name: str, port: int, path: str) -> str:
        published = dh.run(["docker", "port", name, str(port)]).stdout.split()[0]
        return f"http://{published}{path}"

    def wait_ready(self, suffix: str, name: str, timeout_s: float = 60) -> None:
        """Poll the pod's rendered readinessProbe (httpGet) until it answers 200."""
        _, spec = self.pod(suffix)
        ctr = spec["containers"][0]
        probe = ctr["readinessProbe"]["httpGet"]
        port = next(p["containerPort"] for p in ctr["ports"] if p["name"] == probe["port"])

        def ready() -> bool:
            assert dh.inspect(name)["State"]["Running"], self.logs(name)[-2000:]
            try:
                url = self.url(name, port, probe["path"])
            except dh.DockerSetupError:  # exited since the check above: the next poll says why
                return False
            with urllib.request.urlopen(url, timeout=2) as r:
                return bool(r.status == 200)

        dh.wait_until(ready, timeout_s, f"{name} ready ({probe['path']} on {port})")

    def logs(self, name: str) -> str:
        done = dh.run(["docker", "logs", name], check=False)
        return done.stdout + done.stderr

    def close(self) -> None:
        for name in self.containers:
            dh.run(["docker", "rm", "--force", name], check=False)
        dh.run(["docker", "network", "rm", self.network], check=False)


@pytest.fixture(scope="module")
def built() -> tuple[str, Path]:
    """(image tag, staged build context with its audio_cache/)."""
    try:
        dh.ensure_engine()
        return dh.ensure_image()
    except dh.DockerSetupError as exc:
        pytest.fail(f"docker set-up failed: {exc}")


@pytest.fixture(scope="module")
def image(built: tuple[str, Path]) -> str:
    return built[0]


@pytest.fixture
def audio_blob(built: tuple[str, Path], azurite: Azurite) -> tuple[str, dict[str, str]]:
    """The image's audio cache pushed to a fresh Azurite container: (container, the data of
    the Secret the chart's ``audio.blob.existingSecret`` names)."""
    secret = {"AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string()}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUDIO_BLOB_", "AZURE_"))}
    container = f"h{uuid.uuid4().hex[:12]}"
    pushed = subprocess.run(
        [
            sys.executable,
            "-m",
            "loadtest",
            "audio",
            "push",
            "--create-container",
            "--container",
            container,
            "--prefix",
            "caches/v1/",
            str(built[1] / "audio_cache"),
        ],
        env={**env, **secret},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    return container, secret


def _values(image: str, **extra: Any) -> dict[str, Any]:
    repository, tag = image.rsplit(":", 1)
    return {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "agentSimulator": {"enabled": True, "args": FAST_AGENT},
        "settings": {"GREETING": "off"},
        **extra,
    }


@pytest.fixture
def pods_dir() -> Iterator[Path]:
    """Host folders of the pods' volumes. Not pytest's tmp_path: other pytest sessions on the
    machine prune old basetemp folders, which would pull files from under running containers."""
    with tempfile.TemporaryDirectory(prefix="vlt-helm-", ignore_cleanup_errors=True) as path:
        yield Path(path)


@pytest.fixture
def cluster() -> Iterator[list[Cluster]]:
    made: list[Cluster] = []
    yield made
    for each in made:
        each.close()


def _users_on(cluster: Cluster, name: str) -> tuple[float, dict[str, float]]:
    samples = dh.scrape(cluster.url(name, 9646, "/metrics"))
    users = sum(v for k, v in samples.items() if k.startswith("voice_loadtest_users{"))
    workers = {
        k.split('state="')[1].split('"')[0]: v
        for k, v in samples.items()
        if k.startswith("voice_loadtest_workers{")
    }
    return users, workers


def test_rendered_run_completes_and_a_worker_added_mid_run_gets_callers(
    built: tuple[str, Path],
    audio_blob: tuple[str, dict[str, str]],
    cluster: list[Cluster],
    pods_dir: Path,
) -> None:
    (image, context), (container, secret) = built, audio_blob
    values = _values(
        image,
        mode="run",
        load={
            "users": USERS,
            "spawnRate": USERS,
            "runTime": "40s",
            "expectWorkersMaxWaitSeconds": 60,
            "stopTimeoutSeconds": 5,
        },
        worker={"replicas": 1, "terminationGracePeriodSeconds": 20},
        slo=SLO,
        audio={
            "source": "blob",
            "blob": {
                "container": container,
                "prefix": "caches/v1/",
                "existingSecret": "audio-storage",
            },
        },
    )
    # Only the pull-audio initContainers use the host network: Azurite listens on 127.0.0.1.
    k8s = Cluster(render(values), pods_dir, {"audio-storage": secret}, init_network="host")
    cluster.append(k8s)
    tag = uuid.uuid4().hex[:6]
    first = f"worker-a-{tag}"
    agent, master = k8s.start_run(tag, first)

    def settled(running: int) -> bool:
        users, workers = _users_on(k8s, master)
        return users == USERS and workers.get("running", 0) == running

    dh.wait_until(lambda: settled(1), 45, f"{USERS} callers on the first worker")
    second = k8s.start("-worker", f"worker-b-{tag}")  # the HPA scales the Deployment up
    k8s.wait_ready("-worker", second)
    dh.wait_until(lambda: settled(2), 30, "the master rebalancing onto the new worker")
    dh.wait_until(lambda: _users_on(k8s, second)[0] > 0, 20, "callers on the new worker")
    assert 0 < _users_on(k8s, first)[0] < USERS

    test_pod = k8s.start("-test", f"helm-test-{tag}")  # `helm test` while the run is going
    assert int(dh.run(["docker", "wait", test_pod], timeout=120).stdout) == 0, k8s.logs(test_pod)

    code = int(dh.run(["docker", "wait", master], timeout=180).stdout)
    logs = k8s.logs(master)
    reports = pods_dir / master / "reports"
    summary = json.loads((reports / "summary.json").read_text())
    assert code == summary["slo"]["exit_code"] == 0, (summary["slo"], summary["harness"])
    checks = {c["name"]: c["threshold"] for c in summary["slo"]["checks"]}
    assert checks["ttfb_p95_ms"] == "< 1500 (acceptable < 2500)"  # slo.yaml from the chart
    assert summary["run"]["workers"] == 2 and summary["run"]["users"] == USERS
    assert summary["run"]["target"] == "ws://vl-voice-loadtest-agent:8010/api/v1/media/stream"
    assert summary["metrics"]["ttfb_ms"]["count"] >= USERS
    assert summary["rates"]["connection_success"] == 1.0
    for report in ("summary.html", "locust.html", "locust_stats.csv"):
        assert (reports / report).stat().st_size > 0, report
    assert "reports: the master exited with 0" in logs
    for name in (master, first, second, agent):
        assert "Traceback" not in k8s.logs(name), (name, k8s.logs(name)[-3000:])
    assert os.stat(reports / "summary.json").st_uid == 10001  # written as the pod's user
    pushed = {p.name: p.read_bytes() for p in (context / "audio_cache").iterdir()}
    for worker in (first, second):  # each worker's emptyDir holds the verified Blob cache
        pulled = {p.name: p.read_bytes() for p in (pods_dir / worker / "audio").iterdir()}
        assert pulled == pushed and "manifest.jsonl" in pulled


def _get(url: str, account: tuple[str, str] | None = None) -> int:
    request = urllib.request.Request(url)
    if account is not None:
        token = base64.b64encode(":".join(account).encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_rendered_interactive_master_behind_its_login_passes_the_helm_test(
    image: str, cluster: list[Cluster], pods_dir: Path
) -> None:
    account = ("ops", f"pw-{uuid.uuid4().hex[:12]}")
    values = _values(image, master={"auth": {"enabled": True, "existingSecret": "locust-login"}})
    secrets = {"locust-login": {"username": account[0], "password": account[1]}}
    k8s = Cluster(render(values), pods_dir, secrets)
    cluster.append(k8s)
    tag = uuid.uuid4().hex[:6]
    master = k8s.start("-master", f"master-{tag}")
    k8s.wait_ready("-master", master)  # the probes use the metrics port: no login there
    for path in ("/", "/stats/requests"):  # the web UI behind the Service's "web" port
        assert _get(k8s.url(master, 8089, path)) == 401, path
        assert _get(k8s.url(master, 8089, path), (account[0], "wrong")) == 401, path
        assert _get(k8s.url(master, 8089, path), account) == 200, path
    test_pod = k8s.start("-test", f"helm-test-{tag}")
    code = int(dh.run(["docker", "wait", test_pod], timeout=120).stdout)
    out = k8s.logs(test_pod)
    assert code == 0, out
    assert "ok: /healthz and /metrics" in out and "ok: web API" in out
    assert account[1] not in k8s.logs(master)


def test_rendered_run_plays_the_scenarios_configmap_from_the_audio_claim(
    built: tuple[str, Path], cluster: list[Cluster], pods_dir: Path
) -> None:
    image, context = built
    claim = pods_dir / "claim-caller-audio"  # what the PersistentVolumeClaim holds
    cache_dir = claim / "caches" / "v1"
    shutil.copytree(context / "audio_cache", cache_dir)
    for path in [claim, *claim.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    cache = load_cache(cache_dir)
    name = "quick_question" if "quick_question" in cache.scenarios else sorted(cache.scenarios)[0]
    texts = [clip.entry.text for clip in cache.scenarios[name]]
    scenarios = yaml.safe_dump({"scenarios": [{"name": name, "weight": 2, "turns": texts}]})
    users = 3
    values = _values(
        image,
        mode="run",
        load={"users": users, "spawnRate": users, "runTime": "20s",
              "expectWorkersMaxWaitSeconds": 60, "stopTimeoutSeconds": 5},
        worker={"replicas": 1, "terminationGracePeriodSeconds": 20},
        # What runs is under test here, not timing (the other run holds the harness to its
        # default limits): generous limits keep a busy machine from voiding the run.
        slo={**SLO, "harness": {"max_lateness_p99_ms": 250, "max_receive_lag_p99_ms": 250}},
        scenarios={"configMap": "call-scenarios", "key": "calls.yaml"},
        audio={"source": "claim", "existingClaim": "caller-audio", "subPath": "caches/v1"},
    )  # fmt: skip
    k8s = Cluster(
        render(values),
        pods_dir,
        configmaps={"call-scenarios": {"calls.yaml": scenarios, "other.yaml": "not mounted"}},
        claims={"caller-audio": claim},
    )
    cluster.append(k8s)
    tag = uuid.uuid4().hex[:6]
    worker = f"worker-{tag}"
    agent, master = k8s.start_run(tag, worker)
    code = int(dh.run(["docker", "wait", master], timeout=180).stdout)
    summary = json.loads((pods_dir / master / "reports" / "summary.json").read_text())
    assert summary["settings"]["SCENARIOS_FILE"] == "/scenarios/calls.yaml"
    assert summary["run"]["scenarios"] == [name]  # only the file's scenario was dealt out
    assert summary["run"]["audio_cache"] == [cache.identity.digest]  # the claim's audio
    assert code == summary["slo"]["exit_code"] == 0, (summary["slo"], k8s.logs(master)[-3000:])
    assert summary["metrics"]["ttfb_ms"]["count"] >= users
    assert sorted(p.name for p in (pods_dir / worker / "scenarios").iterdir()) == ["calls.yaml"]
    assert load_cache(cache_dir).identity == cache.identity  # mounted read-only: untouched
    for each in (master, worker, agent):
        assert "Traceback" not in k8s.logs(each), (each, k8s.logs(each)[-3000:])
