"""The chart's alerts, run by promtool on input series: each fires on its condition and
stays quiet otherwise.

The rules are rendered from helm/datarch/files/alerts.yaml through `helm template`, the
way the chart ships them, so what is tested is what a cluster gets.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import tool

CHART = Path(__file__).parents[2] / "helm" / "datarch"

# The labels a scrape of the operator adds, beside the ones the operator exports.
SCRAPE = {"job": "datarch", "instance": "10.0.0.7:8080", "namespace": "datarch-system"}
CLAIM = {"claim_namespace": "data", "claim": "platform"}


def render_rules(*values: str) -> dict[str, Any]:
    """The rule groups of the chart's PrometheusRule, rendered with `--set` values."""
    sets = [arg for value in values for arg in ("--set", value)]
    manifest = subprocess.run(
        [
            tool("helm"),
            "template",
            "datarch",
            str(CHART),
            "--set",
            "prometheusRule.enabled=true",
            *sets,
            "--show-only",
            "templates/prometheusrule.yaml",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rule: dict[str, Any] = yaml.safe_load(manifest)
    assert rule["kind"] == "PrometheusRule"
    return rule["spec"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def rules_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rules") / "datarch.rules.yaml"
    path.write_text(yaml.safe_dump(render_rules(), sort_keys=False))
    return path


def series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    selector = ", ".join(f'{key}="{value}"' for key, value in {**labels, **SCRAPE}.items())
    return {"series": f"{name}{{{selector}}}", "values": values}


@dataclass(frozen=True)
class Scenario:
    """Input series; at `at`, the alert is firing with `labels` (plus severity), or quiet."""

    why: str
    input_series: list[dict[str, str]]
    at: str
    labels: dict[str, str] | None = None  # None: no alert
    value: float = 0.0  # the alert's $value, for its annotations


@dataclass(frozen=True)
class AlertCase:
    severity: str
    firing: list[Scenario]
    quiet: list[Scenario] = field(default_factory=list)


STORE = {**CLAIM, "store": "main", "kind": "postgres"}
BACKUP = {**CLAIM, "backup": "main-nightly"}
CONSUMER = {**CLAIM, "store": "events", "stream": "EVENTS", "consumer": "worker"}

CASES: dict[str, AlertCase] = {
    "DatarchClaimNotConforming": AlertCase(
        severity="warning",
        firing=[
            Scenario(
                "findings for longer than 30m",
                [series("datarch_claim_conforming", CLAIM, "0x40")],
                at="31m",
                labels={**CLAIM, **SCRAPE},
            )
        ],
        quiet=[
            Scenario("conforming", [series("datarch_claim_conforming", CLAIM, "1x40")], at="35m"),
            Scenario(
                "findings for only 20m",
                [series("datarch_claim_conforming", CLAIM, "1x15 0x25")],
                at="35m",
            ),
            Scenario(
                "conformance unknown: the series is absent",
                [series("datarch_store_up", STORE, "0x40")],
                at="35m",
            ),
        ],
    ),
    "DatarchClaimConformanceUnknown": AlertCase(
        severity="warning",
        firing=[
            Scenario(
                "verified, but conformance unknown for longer than 30m",
                [
                    series("datarch_verifications_total", {**CLAIM, "result": "error"}, "0+1x40"),
                    series("datarch_verifications_total", {**CLAIM, "result": "ok"}, "0x40"),
                ],
                at="31m",
                labels=CLAIM,
                value=31,
            )
        ],
        quiet=[
            Scenario(
                "conformance known",
                [
                    series("datarch_verifications_total", {**CLAIM, "result": "ok"}, "0+1x40"),
                    series("datarch_claim_conforming", CLAIM, "0x40"),
                ],
                at="35m",
            ),
            Scenario(
                "unknown for only 20m",
                [
                    series("datarch_verifications_total", {**CLAIM, "result": "ok"}, "0+1x40"),
                    series("datarch_claim_conforming", CLAIM, "1x15"),
                ],
                at="35m",
            ),
        ],
    ),
    "DatarchStoreUnreachable": AlertCase(
        severity="critical",
        firing=[
            Scenario(
                "the store unreadable for longer than 10m",
                [
                    series("datarch_store_up", STORE, "0x20"),
                    series(
                        "datarch_store_up", {**STORE, "store": "cache", "kind": "redis"}, "1x20"
                    ),
                ],
                at="11m",
                labels={**STORE, **SCRAPE},
            )
        ],
        quiet=[
            Scenario("the store readable", [series("datarch_store_up", STORE, "1x20")], at="15m"),
            Scenario(
                "unreadable for only 5m",
                [series("datarch_store_up", STORE, "1x10 0x5")],
                at="15m",
            ),
        ],
    ),
    "DatarchBackupStale": AlertCase(
        severity="critical",
        firing=[
            Scenario(
                "not fresh, though it succeeded once",
                [
                    series("datarch_backup_fresh", BACKUP, "0x20"),
                    series(
                        "datarch_backup_last_success_timestamp_seconds", BACKUP, "1700000000x20"
                    ),
                ],
                at="16m",
                labels={**BACKUP, **SCRAPE},
            )
        ],
        quiet=[
            Scenario(
                "fresh",
                [
                    series("datarch_backup_fresh", BACKUP, "1x20"),
                    series(
                        "datarch_backup_last_success_timestamp_seconds", BACKUP, "1700000000x20"
                    ),
                ],
                at="16m",
            ),
            Scenario(
                "never succeeded: that is the other alert",
                [series("datarch_backup_fresh", BACKUP, "0x20")],
                at="16m",
            ),
        ],
    ),
    "DatarchBackupNeverSucceeded": AlertCase(
        severity="warning",
        firing=[
            Scenario(
                "not fresh and no success timestamp at all",
                [series("datarch_backup_fresh", BACKUP, "0x70")],
                at="61m",
                labels={**BACKUP, **SCRAPE},
            ),
            Scenario(
                "not fresh and a success timestamp of zero",
                [
                    series("datarch_backup_fresh", BACKUP, "0x70"),
                    series("datarch_backup_last_success_timestamp_seconds", BACKUP, "0x70"),
                ],
                at="61m",
                labels={**BACKUP, **SCRAPE},
            ),
        ],
        quiet=[
            Scenario(
                "stale but it succeeded once: that is the other alert",
                [
                    series("datarch_backup_fresh", BACKUP, "0x70"),
                    series(
                        "datarch_backup_last_success_timestamp_seconds", BACKUP, "1700000000x70"
                    ),
                ],
                at="61m",
            ),
            Scenario(
                "a new backup, without success for only 30m",
                [series("datarch_backup_fresh", BACKUP, "0x30")],
                at="30m",
            ),
        ],
    ),
    "DatarchConsumerLagHigh": AlertCase(
        severity="warning",
        firing=[
            Scenario(
                "1500 pending for longer than 10m",
                [series("datarch_nats_consumer_num_pending", CONSUMER, "1500x20")],
                at="11m",
                labels={**CONSUMER, **SCRAPE},
                value=1500,
            )
        ],
        quiet=[
            Scenario(
                "500 pending",
                [series("datarch_nats_consumer_num_pending", CONSUMER, "500x20")],
                at="15m",
            ),
            Scenario(
                "1500 pending for only 5m",
                [series("datarch_nats_consumer_num_pending", CONSUMER, "0x10 1500x5")],
                at="15m",
            ),
        ],
    ),
    "DatarchConsumerOldestUnackedTooOld": AlertCase(
        severity="warning",
        firing=[
            Scenario(
                "a message unacknowledged for 10 minutes",
                [series("datarch_nats_consumer_oldest_unacked_age_seconds", CONSUMER, "600x20")],
                at="11m",
                labels={**CONSUMER, **SCRAPE},
                value=600,
            )
        ],
        quiet=[
            Scenario(
                "the oldest unacknowledged message 1 minute old",
                [series("datarch_nats_consumer_oldest_unacked_age_seconds", CONSUMER, "60x20")],
                at="15m",
            ),
        ],
    ),
    "DatarchVerifierAbsent": AlertCase(
        severity="critical",
        firing=[
            Scenario(
                "no verification timestamp at all",
                [series("up", {}, "1x20")],
                at="16m",
                labels={},
                value=1,
            )
        ],
        quiet=[
            Scenario(
                "a claim verified",
                [series("datarch_last_verification_timestamp_seconds", CLAIM, "0+60x20")],
                at="16m",
            ),
        ],
    ),
    "DatarchVerificationStale": AlertCase(
        severity="warning",
        firing=[
            Scenario(
                # Series time starts at the epoch: at 75m, time() is 4500s.
                "last verified at the start, 75m ago",
                [series("datarch_last_verification_timestamp_seconds", CLAIM, "0x80")],
                at="75m",
                labels={**CLAIM, **SCRAPE},
                value=4500,
            )
        ],
        quiet=[
            Scenario(
                "verified every minute",
                [series("datarch_last_verification_timestamp_seconds", CLAIM, "0+60x80")],
                at="75m",
            ),
        ],
    ),
}


# --------------------------------------------------------------------------- annotations

LABEL = re.compile(r"\{\{ \$labels\.(\w+) \}\}")
VALUE = re.compile(r"\{\{ \$value \}\}")
VALUE_AS_DURATION = re.compile(r"\{\{ \$value \| humanizeDuration \}\}")


def humanize_duration(seconds: float) -> str:
    """Prometheus' humanizeDuration, for whole seconds of one second or more."""
    whole = int(seconds)
    days, hours = whole // 86400, whole // 3600 % 24
    minutes, rest = whole // 60 % 60, whole % 60
    if days:
        return f"{days}d {hours}h {minutes}m {rest}s"
    if hours:
        return f"{hours}h {minutes}m {rest}s"
    if minutes:
        return f"{minutes}m {rest}s"
    return f"{rest}s"


def expected_annotation(template: str, labels: dict[str, str], value: float) -> str:
    """The annotation Prometheus renders. Only the template forms the rules use are known;
    any other, or a label the alert does not carry, fails the test."""
    text = LABEL.sub(lambda match: labels[match.group(1)], template)
    text = VALUE_AS_DURATION.sub(humanize_duration(value), text)
    text = VALUE.sub(f"{value:g}", text)
    assert "{{" not in text, f"an annotation uses a template form this test does not know: {text}"
    return text


# --------------------------------------------------------------------------- promtool


def rule(rules: dict[str, Any], name: str) -> dict[str, Any]:
    found = [r for group in rules["groups"] for r in group["rules"] if r.get("alert") == name]
    assert len(found) == 1, f"{name}: {len(found)} rules"
    return found[0]


def promtool_test(
    rules_file: Path, scenarios: list[Scenario], name: str, rule_spec: dict[str, Any], severity: str
) -> subprocess.CompletedProcess[str]:
    tests = []
    for scenario in scenarios:
        expected = []
        if scenario.labels is not None:
            labels = {**scenario.labels, "severity": severity}
            expected.append(
                {
                    "exp_labels": labels,
                    "exp_annotations": {
                        key: expected_annotation(text, labels, scenario.value)
                        for key, text in rule_spec["annotations"].items()
                    },
                }
            )
        tests.append(
            {
                "name": scenario.why,
                "interval": "1m",
                "input_series": scenario.input_series,
                "alert_rule_test": [
                    {"eval_time": scenario.at, "alertname": name, "exp_alerts": expected}
                ],
            }
        )
    test_file = rules_file.with_name(f"{name}.test.yaml")
    test_file.write_text(
        yaml.safe_dump(
            {
                "rule_files": [rules_file.name],
                "evaluation_interval": "1m",
                "tests": tests,
            },
            sort_keys=False,
        )
    )
    return subprocess.run(
        [tool("promtool"), "test", "rules", str(test_file)],
        check=False,
        capture_output=True,
        text=True,
        cwd=rules_file.parent,
    )


def test_the_rendered_rules_pass_promtool_check(rules_file: Path) -> None:
    result = subprocess.run(
        [tool("promtool"), "check", "rules", str(rules_file)],
        check=False,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(CASES)} rules found" in result.stdout


def test_every_alert_has_a_firing_and_a_quiet_case(rules_file: Path) -> None:
    rules = yaml.safe_load(rules_file.read_text())
    alerts = {r["alert"] for group in rules["groups"] for r in group["rules"] if "alert" in r}
    assert alerts == set(CASES)
    assert all(case.firing and case.quiet for case in CASES.values())


@pytest.mark.parametrize("name", list(CASES))
def test_the_alert_fires_on_its_condition(rules_file: Path, name: str) -> None:
    case = CASES[name]
    spec = rule(yaml.safe_load(rules_file.read_text()), name)
    assert spec["labels"]["severity"] == case.severity
    result = promtool_test(rules_file, case.firing, name, spec, case.severity)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", list(CASES))
def test_the_alert_stays_quiet_otherwise(rules_file: Path, name: str) -> None:
    case = CASES[name]
    spec = rule(yaml.safe_load(rules_file.read_text()), name)
    result = promtool_test(rules_file, case.quiet, name, spec, case.severity)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_firing_alert_reads_well(rules_file: Path) -> None:
    spec = rule(yaml.safe_load(rules_file.read_text()), "DatarchStoreUnreachable")
    labels = {**STORE, **SCRAPE, "severity": "critical"}
    assert expected_annotation(spec["annotations"]["summary"], labels, 0) == (
        "Store main (postgres) of data/platform cannot be read"
    )


def test_thresholds_and_pending_periods_come_from_the_values() -> None:
    rules = render_rules(
        "prometheusRule.alerts.consumerLag.maxPending=42",
        "prometheusRule.alerts.claimNotConforming.for=2h",
        "prometheusRule.alerts.storeUnreachable.severity=page",
        "prometheusRule.additionalAlertLabels.team=platform",
    )
    lag = rule(rules, "DatarchConsumerLagHigh")
    assert lag["expr"] == "datarch_nats_consumer_num_pending > 42"
    assert rule(rules, "DatarchClaimNotConforming")["for"] == "2h"
    assert rule(rules, "DatarchStoreUnreachable")["labels"] == {
        "severity": "page",
        "team": "platform",
    }
