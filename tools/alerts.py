"""Prometheus alert rules that mirror the SLO gate (core: pure; the rules file is generated).

Each SLO check gets two alerts, over a rolling :data:`WINDOW` so a drifting run is noticed
while it runs (the end-of-run gate judges the whole run):

* ``severity: warning`` — the check misses its *target* (the gate would say ``warn``);
* ``severity: critical`` — it misses its *acceptable* threshold (the gate would say ``fail``).

Thresholds are the exporter's ``voice_loadtest_slo_threshold_seconds`` / ``_ratio`` gauges
(one source of truth: the run's ``--slo`` file), so a check switched off there
(``ttfb_p95_ms: null``) exports no threshold and its alerts cannot fire — as in the gate.
Comparisons follow the gate: a latency misses at ``actual >= threshold``, a ratio at
``actual <= threshold`` unless it is a perfect 1.

The ``voice-loadtest-harness`` alerts (``severity: warning``, ``slo_check: harness``) fire
when the load generator itself is saturated (frame lateness p99, receive lag p99 or a worker's
CPU over the :class:`~loadtest.metrics.slo.SloConfig` harness limits — the gate calls such a
run ``invalid``): latencies measured then are not trustworthy.

Every alert has a ``runbook_url``: the section of ``docs/troubleshooting.md`` that says what
to do, as a path in this repository (:data:`RUNBOOK`), since where the repository is hosted is
the user's; prefix it with that host in the Alertmanager template if you want links.

:func:`alert_groups` returns the rule groups; :func:`render_rules` the text of the one committed
rules file, ``helm/voice-loadtest/rules/alerts.yml`` (the chart's PrometheusRule embeds its
groups, docker compose mounts it into Prometheus). ``make generate`` writes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from loadtest.metrics.slo import DEFAULT_SLO, SloConfig
from tools import promql as q

__all__ = ["RUNBOOK", "WINDOW", "AlertRule", "alert_groups", "alert_rules", "render_rules"]

WINDOW = "5m"
"""Rolling window of every alert's rate/quantile."""

RUNBOOK = "docs/troubleshooting.md"
"""The page whose sections are the alerts' runbooks (``runbook_url`` = page#section)."""
_RUNBOOK_SECTIONS = {
    "ttfb_p95_ms": "ttfb-over-its-slo",
    "barge_in_p95_ms": "barge-in-over-its-slo",
    "connection_success": "connection-success-below-its-slo",
    "turn_success": "turn-success-below-its-slo",
    "harness": "harness-saturated",
}

_UNTRUSTWORTHY = (
    "A saturated harness makes latencies untrustworthy: the slowness may be the load "
    "generator's, not the agent's (the SLO gate calls such a run invalid)."
)
_HARNESS_FIRST = (
    "If a VoiceLoadtestHarness* alert is firing too, fix the harness first: a saturated "
    "harness makes latencies untrustworthy."
)


@dataclass(frozen=True, slots=True)
class AlertRule:
    """One alert: ``measured op threshold`` (plus ``guard``), firing after ``for_``.

    ``measured`` and ``threshold`` are PromQL on their own (the integration test checks that
    both return data from a real run even when the alert condition is false).
    """

    name: str
    severity: str
    check: str
    measured: str
    op: str
    threshold: str
    for_: str
    summary: str
    description: str
    guard: str = ""

    @property
    def expr(self) -> str:
        """The rule expression; thresholds from gauges are joined with ``on() group_left()``."""
        if self.threshold.replace(".", "", 1).isdigit():  # a literal limit
            return f"{self.measured} {self.op} {self.threshold}"
        if not self.guard:
            return f"{self.measured}\n  {self.op} on() group_left()\n{self.threshold}"
        return (
            f"(\n  {self.measured}\n    {self.op} on() group_left()\n  {self.threshold}\n)"
            f" {self.guard}"
        )

    @property
    def runbook_url(self) -> str:
        return f"{RUNBOOK}#{_RUNBOOK_SECTIONS[self.check]}"

    def as_rule(self) -> dict[str, Any]:
        return {
            "alert": self.name,
            "expr": self.expr + "\n",
            "for": self.for_,
            "labels": {"severity": self.severity, "slo_check": self.check},
            "annotations": {
                "summary": self.summary,
                "description": self.description,
                "runbook_url": self.runbook_url,
            },
        }


def _latency_rules(check: str, what: str, camel: str) -> list[AlertRule]:
    measured = q.quantile(0.95, q.LATENCY_CHECKS[check], window=WINDOW, by=("target",))
    rules = []
    for level, severity, for_, verdict in (
        ("target", "warning", "2m", "warn"),
        ("acceptable", "critical", "1m", "fail"),
    ):
        rules.append(
            AlertRule(
                name=f"VoiceLoadtest{camel}P95Over{level.title()}",
                severity=severity,
                check=check,
                measured=measured,
                op=">=",
                threshold=q.threshold(check, level),
                for_=for_,
                summary=f"{what} p95 {{{{ $value | humanizeDuration }}}} is over the SLO "
                f"{level} on {{{{ $labels.target }}}}",
                description=f"{what} p95 over the last {WINDOW} is at or above the run's "
                f"SLO {level} ({check}); at the end of the run the gate would say "
                f"'{verdict}'. {_HARNESS_FIRST}",
            )
        )
    return rules


def _ratio_rules(check: str, what: str, camel: str) -> list[AlertRule]:
    measured = q.ratio(q.RATIO_CHECKS[check], window=WINDOW, by=("target",))
    rules = []
    for level, severity, for_, verdict in (
        ("target", "warning", "2m", "warn"),
        ("acceptable", "critical", "1m", "fail"),
    ):
        rules.append(
            AlertRule(
                name=f"VoiceLoadtest{camel}Below{level.title()}",
                severity=severity,
                check=check,
                measured=measured,
                op="<=",
                threshold=q.threshold(check, level),
                guard="< 1",
                for_=for_,
                summary=f"{what} {{{{ $value | humanizePercentage }}}} is below the SLO "
                f"{level} on {{{{ $labels.target }}}}",
                description=f"{what} ratio over the last {WINDOW} is at or below "
                f"the run's SLO {level} ({check}); at the end of the run the gate would say "
                f"'{verdict}'. See the Errors row of the Voice load test dashboard.",
            )
        )
    return rules


def _harness_rules(slo: SloConfig) -> list[AlertRule]:
    lateness = q.quantile(
        0.99, "voice_loadtest_frame_lateness_seconds", window=WINDOW, by=("target",)
    )
    return [
        AlertRule(
            name="VoiceLoadtestHarnessFrameLateness",
            severity="warning",
            check="harness",
            measured=lateness,
            op=">",
            threshold=f"{slo.max_lateness_p99_ms / 1000:g}",
            for_="1m",
            summary="Load generator behind real time: frame lateness p99 "
            "{{ $value | humanizeDuration }} (limit "
            f"{slo.max_lateness_p99_ms:g} ms)",
            description="Caller frames leave the workers late, so the agent receives audio "
            "slower than real time and the measured end-of-speech instants shift. "
            f"{_UNTRUSTWORTHY} Add workers or lower callers per worker.",
        ),
        AlertRule(
            name="VoiceLoadtestHarnessReceiveLag",
            severity="warning",
            check="harness",
            measured=q.quantile(
                0.99, "voice_loadtest_event_loop_lag_seconds", window=WINDOW, by=("target",)
            ),
            op=">",
            threshold=f"{slo.max_receive_lag_p99_ms / 1000:g}",
            for_="1m",
            summary="Load generator reading the agent late: receive lag p99 "
            "{{ $value | humanizeDuration }} (limit "
            f"{slo.max_receive_lag_p99_ms:g} ms)",
            description="The workers' event loops wake late, so agent audio is read and "
            "time-stamped after it arrived and every TTFB and barge-in includes the wait. "
            f"{_UNTRUSTWORTHY} Add workers or lower callers per worker.",
        ),
        AlertRule(
            name="VoiceLoadtestHarnessWorkerCpu",
            severity="warning",
            check="harness",
            measured="voice_loadtest_worker_cpu_ratio",
            op=">",
            threshold=f"{slo.max_worker_cpu_percent / 100:g}",
            for_="1m",
            summary="Load worker {{ $labels.worker }} at {{ $value | humanizePercentage }} CPU "
            f"(limit {slo.max_worker_cpu_percent:g} %)",
            description="A saturated worker delays sending and receiving audio. "
            f"{_UNTRUSTWORTHY} Add workers or lower callers per worker.",
        ),
    ]


def alert_rules(slo: SloConfig = DEFAULT_SLO) -> dict[str, list[AlertRule]]:
    """Group name → rules. ``slo`` supplies only the harness limits, which the exporter does
    not publish; the SLO check thresholds are read from the exporter's gauges."""
    return {
        "voice-loadtest-slo": [
            *_latency_rules("ttfb_p95_ms", "TTFB", "Ttfb"),
            *_latency_rules("barge_in_p95_ms", "Barge-in", "BargeIn"),
            *_ratio_rules("connection_success", "Connection success", "ConnectionSuccess"),
            *_ratio_rules("turn_success", "Turn success", "TurnSuccess"),
        ],
        "voice-loadtest-harness": _harness_rules(slo),
    }


def alert_groups(slo: SloConfig = DEFAULT_SLO) -> list[dict[str, Any]]:
    """The rule groups as Prometheus wants them (``groups:`` of a rules file, or
    ``spec.groups`` of a prometheus-operator PrometheusRule)."""
    return [
        {"name": name, "rules": [rule.as_rule() for rule in rules]}
        for name, rules in alert_rules(slo).items()
    ]


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the expressions) as literal blocks, for a readable file."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render_rules(slo: SloConfig = DEFAULT_SLO) -> str:
    """The text of the committed rules file."""
    header = (
        "# Alert rules mirroring the voice-loadtest SLO gate.\n"
        "# Generated by `make generate` from tools/alerts.py; edit the generator, not this file.\n"
    )
    body = yaml.dump(
        {"groups": alert_groups(slo)},
        Dumper=_Dumper,
        sort_keys=False,
        width=1_000_000,  # one line per annotation; expressions are literal blocks
        allow_unicode=True,
    )
    return header + body
