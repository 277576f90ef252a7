"""What the chart's values do and refuse: the strict schema, the template guards, the two
master modes, audio, identity, configuration roll-out, presets and NOTES (Helm's engine)."""

from __future__ import annotations

import re
from typing import Any

import helm_python
import pytest
import yaml

from loadtest.metrics.slo import parse_slo
from loadtest.settings import SETTINGS, parse_settings
from tests.integration.test_helm_render import (
    CHART,
    SCENARIOS,
    container,
    env_of,
    pod_specs,
    render,
    scenario_values,
)
from tools.k8s_manifests import load_values

REJECTED: dict[str, tuple[dict[str, Any], str]] = {
    "negative replicas": ({"worker": {"replicas": -1}}, "/worker/replicas"),
    "replicas as text": ({"worker": {"replicas": "two"}}, "/worker/replicas"),
    "users as text": ({"load": {"users": "ten"}}, "/load/users"),
    "zero users": ({"load": {"users": 0}}, "/load/users"),
    "unknown top-level key": ({"workers": {"replicas": 3}}, "workers"),
    "unknown nested key": ({"master": {"replica": 2}}, "replica"),
    "unknown mode": ({"mode": "batch"}, "/mode"),
    "run time without unit": ({"load": {"runTime": "10"}}, "/load/runTime"),
    "http URL for the agent": ({"target": {"wsUrl": "http://agent:8010/ws"}}, "/target/wsUrl"),
    "secret in settings": ({"settings": {"WS_AUTH_TOKEN": "hunter2"}}, "WS_AUTH_TOKEN"),
    "WS_URL in settings": ({"settings": {"WS_URL": "ws://a/b"}}, "WS_URL"),
    "unknown setting": ({"settings": {"TURNS_PER_CALL": 3}}, "TURNS_PER_CALL"),
    "setting as a list": ({"settings": {"TURNS_PER_USER": [3]}}, "/settings/TURNS_PER_USER"),
    "unknown SLO check": ({"slo": {"ttfb_p42_ms": {"target": 1}}}, "ttfb_p42_ms"),
    "SLO without target": ({"slo": {"ttfb_p95_ms": {"acceptable": 1}}}, "/slo/ttfb_p95_ms"),
    "blob audio nowhere": ({"audio": {"source": "blob"}}, "/audio/blob"),
    "upload nowhere": ({"reports": {"upload": {"enabled": True}}}, "/reports/upload"),
    "keda without Prometheus": ({"worker": {"keda": {"enabled": True}}}, "/worker/keda"),
    "bad container name": ({"audio": {"blob": {"container": "Voice_Audio"}}}, "container"),
    "bad digest": ({"image": {"digest": "latest"}}, "/image/digest"),
    "login without a Secret": ({"master": {"auth": {"enabled": True}}}, "/master/auth"),
    "claim audio without a claim": ({"audio": {"source": "claim"}}, "/audio"),
    "configMap audio without one": ({"audio": {"source": "configMap"}}, "/audio"),
    "unknown audio source": ({"audio": {"source": "nfs"}}, "/audio/source"),
    "ingress host with a scheme": (
        {"master": {"ingress": {"hosts": ["https://a.example.com"]}}},
        "/master/ingress/hosts/0",
    ),
    "bad ingress pathType": ({"master": {"ingress": {"pathType": "Regex"}}}, "pathType"),
    "relabelings as a map": (
        {"metrics": {"serviceMonitor": {"relabelings": {"a": 1}}}},
        "/metrics/serviceMonitor/relabelings",
    ),
    "pull secret as a number": ({"global": {"imagePullSecrets": [3]}}, "imagePullSecrets"),
    "inline scenarios without scenarios": ({"scenarios": {"inline": {"x": 1}}}, "inline"),
    "CPU target over 100": (
        {"worker": {"autoscaling": {"targetCPUUtilizationPercentage": 150}}},
        "targetCPUUtilizationPercentage",
    ),
}


@pytest.mark.parametrize("case", sorted(REJECTED))
def test_schema_rejects(case: str) -> None:
    values, where = REJECTED[case]
    with pytest.raises(helm_python.HelmValuesError) as info:
        render(values)
    assert where in str(info.value), str(info.value)


GUARDS: dict[str, tuple[dict[str, Any], str]] = {
    "HPA and KEDA": (
        {
            "worker": {
                "autoscaling": {"enabled": True},
                "keda": {"enabled": True, "prometheusServerAddress": "http://p:9090"},
            }
        },
        "exclusive",
    ),
    "grace shorter than stop timeout": (
        {"worker": {"terminationGracePeriodSeconds": 30}, "load": {"stopTimeoutSeconds": 30}},
        "must exceed load.stopTimeoutSeconds",
    ),
    "run without a target": ({"mode": "run"}, "needs a target"),
    "anonymous ingress": (
        {"master": {"ingress": {"enabled": True}}},
        "master.ingress.enabled exposes the Locust web UI, which starts load against any URL "
        "typed into it: set master.auth.enabled=true with master.auth.existingSecret, or "
        "master.ingress.allowAnonymous=true",
    ),
    "scrape timeout over the interval": (
        {"metrics": {"podMonitor": {"enabled": True, "interval": "1m", "scrapeTimeout": "61s"}}},
        "metrics.podMonitor.scrapeTimeout (61s) must not exceed its interval (1m)",
    ),
    "two scenarios files": (
        {"scenarios": {"configMap": "a", "inline": {"scenarios": [{"name": "b", "turns": ["x"]}]}}},
        "scenarios.configMap and scenarios.inline are exclusive",
    ),
    "min over max": (
        {"worker": {"autoscaling": {"enabled": True, "minReplicas": 9, "maxReplicas": 3}}},
        "minReplicas must not exceed",
    ),
}


@pytest.mark.parametrize("case", sorted(GUARDS))
def test_templates_refuse(case: str) -> None:
    values, message = GUARDS[case]
    with pytest.raises(helm_python.HelmRenderError, match=re.escape(message)):
        render(values)


def test_schema_lists_exactly_the_non_secret_settings() -> None:
    with helm_python.Chart.load(CHART) as chart:
        schema = chart.schema
    assert schema is not None and schema["additionalProperties"] is False
    listed = set(schema["properties"]["settings"]["properties"])
    expected = {k for k, knob in SETTINGS.items() if not knob.secret and k != "WS_URL"}
    assert listed == expected, "run `make generate` to list the new settings"


def test_interactive_master_is_a_deployment_with_the_web_ui() -> None:
    rendered = render()
    master = rendered.get("Deployment", "-master")
    assert master["spec"]["replicas"] == 1 and master["spec"]["strategy"]["type"] == "Recreate"
    spec = master["spec"]["template"]["spec"]
    ctr = container(spec, "master")
    assert "command" not in ctr and ctr["args"] == ["master", "--slo-file", "/config/slo.yaml"]
    env = env_of(ctr)
    assert "LOCUST_HEADLESS" not in env and env["LOCUST_USERS"] == "10"
    ports = {p["name"]: p["containerPort"] for p in ctr["ports"]}
    assert ports == {"locust": 5557, "web": 8089, "metrics": 9646}
    for probe in (ctr["readinessProbe"], ctr["livenessProbe"]):
        assert probe["httpGet"] == {"path": "/healthz", "port": "metrics"}
    service = rendered.get("Service", "-master")
    assert {p["port"] for p in service["spec"]["ports"]} == {5557, 8089, 9646}
    assert not [o for o in rendered.objects if o["kind"] == "Job"]
    assert "port-forward svc/vl-voice-loadtest-master 8089:8089" in rendered.notes


def test_run_mode_is_a_job_per_revision_whose_result_is_the_verdict() -> None:
    values = scenario_values("ci/run-pvc-values")
    first, third = render(values), render(values, revision=3)
    job = third.get("Job")
    assert job["metadata"]["name"] == "vl-voice-loadtest-master-run-3"
    assert first.get("Job")["metadata"]["name"].endswith("-run-1")
    assert job["spec"]["backoffLimit"] == 0 and job["spec"]["ttlSecondsAfterFinished"] == 86400
    spec = job["spec"]["template"]["spec"]
    assert spec["restartPolicy"] == "Never"
    ctr = container(spec, "master")
    assert ctr["command"] == [
        "voice-loadtest",
        "reports",
        "run",
        "--reports",
        "/reports",
        "--",
        "/usr/local/bin/voice-loadtest-entrypoint",
    ]
    env = env_of(ctr)
    assert env["LOCUST_HEADLESS"] == "true" and env["LOCUST_RUN_TIME"] == "90s"
    assert env["LOCUST_EXPECT_WORKERS"] == "2"
    assert env["METRICS_LINGER"] == "35"  # Prometheus scrapes the final values and verdict
    reports = next(m for m in ctr["volumeMounts"] if m["mountPath"] == "/reports")
    assert reports["subPathExpr"] == "$(POD_NAME)"
    claim = third.get("PersistentVolumeClaim")
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    files = third.get("ConfigMap", "-files")["data"]
    assert set(files) == {"slo.yaml"}  # no code ships in a ConfigMap
    assert "job/vl-voice-loadtest-master-run-3" in third.notes
    assert claim["metadata"]["name"] in third.notes


def test_run_mode_upload_and_notes_say_where_reports_go() -> None:
    rendered = render(scenario_values("ci/run-upload-identity-values"))
    ctr = container(rendered.get("Job")["spec"]["template"]["spec"], "master")
    assert "--upload" in ctr["command"]
    env = env_of(ctr)
    assert env["REPORTS_BLOB_ACCOUNT_URL"] == "https://examplereports.blob.core.windows.net"
    assert env["REPORTS_BLOB_PREFIX"] == "ci/vl-voice-loadtest-master-run-1/"
    assert "load-reports" in rendered.notes and "--prefix ci/vl-voice-loadtest-master-run-1/" in (
        rendered.notes
    )
    kept_nowhere = render({"mode": "run", "target": {"wsUrl": "ws://agent:8010/ws"}})
    assert "NOT KEPT" in kept_nowhere.notes


def test_workers_hand_callers_back_and_find_the_master() -> None:
    rendered = render()
    worker = rendered.get("Deployment", "-worker")
    spec = worker["spec"]["template"]["spec"]
    assert spec["terminationGracePeriodSeconds"] == 60 > 30  # > load.stopTimeoutSeconds
    ctr = container(spec, "worker")
    env = env_of(ctr)
    assert ctr["args"] == ["worker"]
    assert env["LOCUST_MASTER_NODE_HOST"] == rendered.get("Service", "-master")["metadata"]["name"]
    assert env["METRICS_PORT"] == "9646"
    assert ctr["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    startup = ctr["startupProbe"]  # /healthz comes up once the worker reached its master,
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300  # Locust tries 5 min
    master_env = env_of(
        container(rendered.get("Deployment", "-master")["spec"]["template"]["spec"], "master")
    )
    assert master_env["LOCUST_STOP_TIMEOUT"] == "30"


def test_autoscaling_hpa_has_behaviour_and_owns_replicas() -> None:
    rendered = render(scenario_values("ci/autoscaling-values"))
    hpa = rendered.get("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert hpa["spec"]["scaleTargetRef"]["name"] == "vl-voice-loadtest-worker"
    assert "replicas" not in rendered.get("Deployment", "-worker")["spec"]


def test_blob_audio_is_pulled_by_an_init_container_into_an_empty_dir() -> None:
    rendered = render(scenario_values("ci/audio-blob-secret-values"))
    spec = rendered.get("Deployment", "-worker")["spec"]["template"]["spec"]
    pull = container(spec, "pull-audio")
    assert pull["args"] == ["pull-audio"]
    assert env_of(pull)["PCM_DIR"] == "/audio" == env_of(container(spec, "worker"))["PCM_DIR"]
    assert env_of(pull)["AUDIO_BLOB_PREFIX"] == "caches/v1/"
    assert pull["envFrom"] == [{"secretRef": {"name": "audio-storage"}}]
    audio = next(v for v in spec["volumes"] if v["name"] == "audio")
    assert audio == {"name": "audio", "emptyDir": {"sizeLimit": "512Mi"}}
    master_spec = rendered.get("Deployment", "-master")["spec"]["template"]["spec"]
    assert "initContainers" not in master_spec, "only workers play audio"


def test_workload_identity_needs_no_secret() -> None:
    rendered = render(scenario_values("ci/workload-identity-values"))
    account = rendered.get("ServiceAccount")
    assert account["metadata"]["annotations"]["azure.workload.identity/client-id"]
    for name, metadata, spec in pod_specs(rendered):
        if not name.endswith("-test"):
            assert metadata["labels"]["azure.workload.identity/use"] == "true", name
        assert spec["serviceAccountName"] == account["metadata"]["name"]
        for ctr in spec["containers"] + spec.get("initContainers", []):
            assert "secretRef" not in str(ctr.get("envFrom", [])), (name, ctr["name"])
    master = env_of(
        container(rendered.get("Deployment", "-master")["spec"]["template"]["spec"], "master")
    )
    assert master["AZURE_MONITOR_METRICS"] == "CpuPercentage:Average,Requests:Total"
    assert master["AZURE_MONITOR_INTERVAL_SEC"] == "30"
    worker = env_of(
        container(rendered.get("Deployment", "-worker")["spec"]["template"]["spec"], "worker")
    )
    assert not [k for k in worker if k.startswith("AZURE_MONITOR")], "the poller is the master's"


def test_agent_token_comes_from_the_existing_secret() -> None:
    rendered = render(scenario_values("ci/run-pvc-values"))
    for _, _, spec in pod_specs(rendered):
        for ctr in spec["containers"]:
            if ctr["name"] in ("master", "worker"):
                ref = env_of(ctr)["WS_AUTH_TOKEN"]
                assert ref == {"secretKeyRef": {"name": "agent-token", "key": "WS_AUTH_TOKEN"}}


def test_settings_reach_the_configmap_and_parse() -> None:
    rendered = render(scenario_values("ci/audio-blob-secret-values"))
    data = rendered.get("ConfigMap", "-config")["data"]
    assert data["TURNS_PER_USER"] == "3" and data["WS_IGNORE_CLOSE_EXCEPTIONS"] == "true"
    settings = parse_settings(data)  # the harness accepts every value the chart writes
    assert settings.turns_per_user == 3 and settings.first_byte_timeout_ms == 4500


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_slo_file_parses_with_the_gate(name: str) -> None:
    rendered = render(scenario_values(name))
    text = rendered.get("ConfigMap", "-files")["data"]["slo.yaml"]
    config = parse_slo(text, source="slo.yaml")
    if name == "ci/run-pvc-values":
        assert config.warn_exit_code == 1
        assert "barge_in_p95_ms" not in {c.key for c in config.checks}


def test_changing_a_setting_rolls_master_and_workers() -> None:
    def checksums(values: dict[str, Any]) -> list[str]:
        rendered = render(values)
        return [
            meta["annotations"]["checksum/config"]
            for name, meta, _ in pod_specs(rendered)
            if not name.endswith("-test")
        ]

    before = checksums({})
    after = checksums({"settings": {"TURNS_PER_USER": 4}})
    assert len(set(before)) == 1 and len(set(after)) == 1 and before[0] != after[0]
    assert checksums({"load": {"users": 50}})[0] == before[0]  # not config: no checksum roll


CAPACITY = {  # preset: (users, workers, run minutes) ranges from the capacity table
    "values-dev": ((5, 10), (1, 2), (5, 10)),
    "values-staging": ((50, 100), (3, 5), (15, 30)),
    "values-prod": ((200, 10_000), (5, 10), (30, 60)),
}


@pytest.mark.parametrize("preset", sorted(CAPACITY))
def test_presets_follow_the_capacity_table(preset: str) -> None:
    (users_lo, users_hi), (workers_lo, workers_hi), (min_lo, min_hi) = CAPACITY[preset]
    merged = load_values(CHART / "values.yaml", CHART / f"{preset}.yaml")
    render(merged)  # a valid preset
    load = merged["load"]
    assert users_lo <= load["users"] <= users_hi
    minutes = int(re.fullmatch(r"(\d+)m", load["runTime"]).group(1))  # type: ignore[union-attr]
    assert min_lo <= minutes <= min_hi
    worker = merged["worker"]
    scaling = worker.get("autoscaling", {})
    low, high = (
        (scaling["minReplicas"], scaling["maxReplicas"])
        if scaling.get("enabled")
        else (worker["replicas"], worker["replicas"])
    )
    assert workers_lo <= low <= high <= workers_hi


def test_ci_values_switch_on_every_optional_feature() -> None:
    text = {name: yaml.safe_dump(scenario_values(name)) for name in SCENARIOS}
    ci = "\n".join(t for n, t in text.items() if n.startswith("ci/"))
    for feature in (
        "mode: run",
        "source: blob",
        "existingSecret: audio-storage",
        "existingSecret: reports-storage",
        "existingSecret: agent-token",
        "accountUrl: https://exampleaudio",
        "podDisruptionBudget",
        "resourceIds",
        "topologySpreadConstraints",
        "digest: sha256",
        "imagePullSecrets",
    ):
        assert feature in ci, feature
    for switch in (
        "agentSimulator",
        "workloadIdentity",
        "keda",
        "autoscaling",
        "serviceMonitor",
        "podMonitor",
        "prometheusRule",
        "persistence",
        "upload",
    ):
        assert re.search(rf"{switch}:\n(\s+\S.*\n)*?\s+enabled: true", ci), switch
