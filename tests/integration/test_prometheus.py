"""Debian's real Prometheus scrapes a real distributed run (agent simulator, Locust master and
two worker processes); every dashboard query and alert rule is executed through its HTTP API.

Exempt, and only these: the two Azure Monitor panels (``AZURE_MONITOR_EXPRS``), which have
data only when the run polls Azure Monitor (covered against a stub by test_azure_monitor.py).

The run deviates from the plain demo on purpose so that every panel has something to show:
the agent greets (greeting panel), stays silent on 15 % of turns (``ttfb_timeout`` errors for
the error panels) and callers barge in on 70 % of the turns. A rate() needs a series to grow
after Prometheus first saw it: with fewer replies (a silent turn ends the call) a run could
end with all of its few barge-ins inside one scrape interval, leaving that panel empty.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from loadtest.procutil import free_port
from tests.integration.docker_helpers import assemble_mounts
from tools.alerts import alert_rules
from tools.dashboards import AZURE_MONITOR_EXPRS, build_dashboards

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
RULES = REPO_ROOT / "helm" / "voice-loadtest" / "rules" / "alerts.yml"
RULES_TEST = Path(__file__).parent / "prometheus" / "alerts_test.yml"
GRAFANA_VARIABLES = {"$target": ".*", "$scenario": ".*", "$__rate_interval": "1m"}


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        subprocess.run(["bash", str(REPO_ROOT / "scripts/deps/prometheus.sh")], check=False)
        path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found and scripts/deps/prometheus.sh could not install it")
    return path


class PrometheusServer:
    """``prometheus`` on 127.0.0.1:``port`` scraping the master every second."""

    def __init__(self, workdir: Path, metrics_port: int) -> None:
        self.port = free_port()
        config = {
            "global": {
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "evaluation_interval": "1s",
            },
            "rule_files": [str(RULES)],
            "scrape_configs": [
                {
                    "job_name": "voice-loadtest-master",
                    "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}],
                }
            ],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = workdir / "prometheus.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    _tool("prometheus"), f"--config.file={workdir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn",
                ],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"prometheus exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        pytest.fail("prometheus did not become ready within 30 s")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, path: str, **params: str) -> Any:
        """``GET /api/v1/<path>``; the ``data`` of a successful answer (else the test fails)."""
        query = urllib.parse.urlencode(params, doseq=True)
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as r:
                answer = json.load(r)
        except urllib.error.HTTPError as exc:
            answer = json.load(exc)
        assert answer["status"] == "success", f"{path} {params}: {answer.get('error')}"
        return answer["data"]

    def query(self, expr: str, at: float) -> list[dict[str, Any]]:
        return list(self.api("query", query=expr, time=f"{at:.3f}")["result"])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)


@dataclass(frozen=True)
class Poll:
    """One scrape of the master's /metrics by the test itself."""

    started: float
    finished: float
    state: str
    verdict: bool
    ttfb_count: float


@dataclass
class Poller:
    """Scrapes the master's /metrics every 0.1 s until stopped (or the master is gone), and
    keeps the last exposition of the master and of the agent simulator taken mid-run."""

    port: int
    agent_port: int
    polls: list[Poll] = field(default_factory=list)
    running_text: str = ""
    agent_text: str = ""
    _stop: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def run(self) -> None:
        while not self._stop.is_set():
            started = time.time()
            try:
                with urllib.request.urlopen(self.url, timeout=2) as r:
                    text = r.read().decode()
            except OSError:
                time.sleep(0.1)
                continue
            poll = _parse(text, started, time.time())
            self.polls.append(poll)
            if poll.state == "running" and poll.ttfb_count:
                self.running_text = text
                try:
                    agent = f"http://127.0.0.1:{self.agent_port}/metrics"
                    with urllib.request.urlopen(agent, timeout=2) as r:
                        self.agent_text = r.read().decode()
                except OSError:
                    pass
            time.sleep(0.1)

    def stop(self) -> None:
        self._stop.set()


def _parse(text: str, started: float, finished: float) -> Poll:
    state, verdict, count = "", False, 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "voice_loadtest_run_state" and sample.value == 1:
                state = sample.labels["state"]
            elif sample.name == "voice_loadtest_slo_verdict":
                verdict = True
            elif sample.name == "voice_loadtest_ttfb_seconds_count":
                count += sample.value
    return Poll(started, finished, state, verdict, count)


@dataclass(frozen=True)
class ObservedRun:
    prometheus: PrometheusServer
    at: float  # a wall-clock time inside the run (the last poll that saw it running)
    summary: dict[str, Any]
    polls: list[Poll]
    master_metrics: str  # /metrics mid-run: the master's, and the agent simulator's
    agent_metrics: str


@pytest.fixture(scope="module")
def observed(
    tmp_path_factory: pytest.TempPathFactory, espeak_cache_dir: Path
) -> Iterator[ObservedRun]:
    workdir = tmp_path_factory.mktemp("prometheus-run")
    metrics_port = free_port()
    prometheus = PrometheusServer(workdir, metrics_port)
    agent_metrics_port = free_port()
    poller = Poller(metrics_port, agent_metrics_port)
    thread = threading.Thread(target=poller.run, daemon=True)
    thread.start()
    agent = ("--latency-ms 600 --barge-latency-ms 150 --greeting-ms 500 --fault silent=0.15 "
             f"--log-level warning --metrics-port {agent_metrics_port}")  # fmt: skip
    command = [
        sys.executable, "-m", "loadtest", "run", "--with-agent", "--agent-args", agent,
        "--workers", "2", "--users", "6", "--spawn-rate", "6", "--run-time", "40s",
        "--pcm-dir", str(espeak_cache_dir), "--greeting", "wait", "--barge-in-rate", "0.7",
        "--seed", "5", "--metrics-port", str(metrics_port), "--reports-dir", str(workdir / "r"),
    ]  # fmt: skip
    try:
        # /metrics stays up 2.5 s after the run: Prometheus (1 s scrapes) gets the final values.
        env = {**os.environ, "METRICS_LINGER": "2.5"}
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=180, cwd=workdir, env=env
        )
        poller.stop()
        thread.join(timeout=5)
        assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
        summary = json.loads((workdir / "r" / "summary.json").read_text())
        running = [p for p in poller.polls if p.state == "running"]
        assert running, "the test never saw the master's /metrics in the running state"
        yield ObservedRun(
            prometheus, running[-1].started, summary, poller.polls,
            poller.running_text, poller.agent_text,
        )  # fmt: skip
    finally:
        poller.stop()
        prometheus.stop()


def _grafana_to_promql(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert not re.search(r"\$[a-zA-Z_]", expr), f"unsubstituted variable in {expr}"
    return expr


def _panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, expr) for every query of every panel."""
    rows = []
    for name, model in build_dashboards().items():
        for panel in model["panels"]:
            for target in panel.get("targets", []):
                rows.append((name, panel["title"], target["expr"]))
    return rows


def _finite(result: list[dict[str, Any]]) -> bool:
    return any(math.isfinite(float(series["value"][1])) for series in result)


def test_every_dashboard_query_returns_data(observed: ObservedRun) -> None:
    queries = _panel_queries()
    exempt = [q for q in queries if q[2] in AZURE_MONITOR_EXPRS]
    assert len(exempt) == 2, "exactly the two Azure Monitor panels are exempt"
    empty = []
    for dashboard, title, expr in queries:
        if expr in AZURE_MONITOR_EXPRS:
            # Exempt from data, not from evaluating: the query must still be valid PromQL.
            observed.prometheus.query(_grafana_to_promql(expr), observed.at)
            continue
        result = observed.prometheus.query(_grafana_to_promql(expr), observed.at)
        if not _finite(result):
            empty.append(f"{dashboard} / {title}: {expr} -> {result}")
    assert not empty, "queries without data:\n" + "\n".join(empty)


def test_template_variables_have_values(observed: ObservedRun) -> None:
    for name, model in build_dashboards().items():
        for variable in model["templating"]["list"]:
            if variable["type"] != "query":
                continue
            match = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["definition"])
            assert match, variable["definition"]
            selector, label = _grafana_to_promql(match.group(1)), match.group(2)
            values = observed.prometheus.api(f"label/{label}/values", **{"match[]": selector})
            assert values, f"{name}: ${variable['name']} has no values"


def test_every_alert_rule_evaluates_on_the_real_run(observed: ObservedRun) -> None:
    """The conditions may rightly be false, so each side is queried on its own for data and
    the whole expression must evaluate without error; Prometheus itself loaded the file and
    evaluated every rule every second without error (health ``ok``)."""
    prom, at = observed.prometheus, observed.at
    rules = [rule for group in alert_rules().values() for rule in group]
    for rule in rules:
        assert _finite(prom.query(rule.measured, at)), f"{rule.name}: no data: {rule.measured}"
        if not rule.threshold.replace(".", "", 1).isdigit():
            assert prom.query(rule.threshold, at), f"{rule.name}: no threshold: {rule.threshold}"
        prom.query(rule.expr, at)
    loaded = {
        rule["name"]: rule for group in prom.api("rules")["groups"] for rule in group["rules"]
    }
    assert set(loaded) == {rule.name for rule in rules}
    for name, rule in loaded.items():
        assert rule["health"] == "ok", f"{name}: {rule.get('lastError')}"


def test_ttfb_count_matches_the_summary(observed: ObservedRun) -> None:
    """The honest check of ``voice_loadtest_ttfb_seconds_count`` against the summary JSON.

    1. Exact, at the exporter: ``voice_loadtest_slo_verdict`` appears only once the master
       has built the summary, and by then Locust has stopped the greenlet that merges worker
       reports, so every scrape carrying a verdict shows the final totals.
    2. Exact, in Prometheus: the master keeps /metrics up for ``METRICS_LINGER`` (2.5 s, over
       two of Prometheus's 1 s scrapes) after the verdict, so Prometheus's last value is the
       summary's and it has the verdict. Every earlier value lies between what the exporter
       served just before and just after that scrape (counts never go down).
    """
    expected = observed.summary["metrics"]["ttfb_ms"]["count"]
    assert expected > 0
    final = [p for p in observed.polls if p.verdict]
    assert final, "no scrape saw the verdict (the master exited too fast to observe)"
    assert {p.ttfb_count for p in final} == {expected}

    prom = observed.prometheus
    end = time.time()
    samples: dict[float, float] = {}
    for series in prom.query("voice_loadtest_ttfb_seconds_count[10m]", end):
        for ts, value in series["values"]:
            samples[float(ts)] = samples.get(float(ts), 0.0) + float(value)
    timeline = sorted(samples.items())
    assert [v for _, v in timeline] == sorted(v for _, v in timeline), "count went down"
    assert timeline[-1][1] == expected, (timeline[-3:], expected)
    for ts, value in timeline:
        before = [p.ttfb_count for p in observed.polls if p.finished <= ts]
        after = [p.ttfb_count for p in observed.polls if p.started >= ts + 1.0]
        low, high = max(before, default=0.0), min(after, default=expected)
        assert low <= value <= high, (ts, low, value, high)
    verdicts = prom.query("voice_loadtest_slo_verdict[10m]", end)
    verdict = observed.summary["slo"]["verdict"]
    scraped = {s["metric"]["verdict"] for s in verdicts if s["values"][-1][1] == "1"}
    assert scraped == {verdict}, (verdicts, verdict)


def _all_rules() -> set[str]:
    return {rule.name for group in alert_rules().values() for rule in group}


@pytest.mark.parametrize("endpoint", ["master", "agent"])
def test_promtool_finds_nothing_to_lint_in_the_exposition(
    observed: ObservedRun, endpoint: str
) -> None:
    """`promtool check metrics` on /metrics mid-run (every family present: histograms per
    scenario, Locust's summary, SLO thresholds, workers' CPU) prints nothing at all."""
    text = observed.master_metrics if endpoint == "master" else observed.agent_metrics
    assert "voice_loadtest_" in text, f"no {endpoint} /metrics was scraped mid-run"
    if endpoint == "master":
        for family in (
            "ttfb_seconds_bucket",
            "locust_response_time_seconds{",
            "slo_threshold_seconds",
            "slo_threshold_ratio",
            "worker_cpu_ratio",
        ):
            assert f"voice_loadtest_{family}" in text, family  # fmt: skip
    done = subprocess.run([_tool("promtool"), "check", "metrics"], input=text,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0 and done.stdout + done.stderr == "", done.stdout + done.stderr


def test_promtool_checks_the_generated_rules_and_the_compose_config(tmp_path: Path) -> None:
    done = subprocess.run([_tool("promtool"), "check", "rules", str(RULES)],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(_all_rules())} rules found" in done.stdout + done.stderr
    # /etc/prometheus as docker-compose.yml mounts it: its prometheus.yml finds the chart's rules
    etc = assemble_mounts("prometheus", Path("/etc/prometheus"), tmp_path / "etc")
    done = subprocess.run([_tool("promtool"), "check", "config", str(etc / "prometheus.yml")],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(_all_rules())} rules found" in done.stdout + done.stderr


def test_promtool_unit_tests_cover_every_alert() -> None:
    done = subprocess.run([_tool("promtool"), "test", "rules", str(RULES_TEST)],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    text = RULES_TEST.read_text()
    # each alert is expected to fire for some series (and not for the healthy ones beside
    # them: promtool compares the exact set), and to stay quiet in some case
    firing = set(re.findall(r"alertname: (\w+)\n\s+exp_alerts:\n\s+- exp_labels", text))
    quiet = set(re.findall(r"alertname: (\w+), exp_alerts: \[\]", text))
    assert firing == quiet == _all_rules(), (_all_rules() - firing, _all_rules() - quiet)
