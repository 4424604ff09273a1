"""The Grafana dashboard (helm/datarch/files/dashboard.json) and the alert rules query only
metrics the operator exports, and the dashboard shows what operators look for."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from datarch.reporting.metrics import VerdictCollector

FILES = Path(__file__).parents[2] / "helm" / "datarch" / "files"
DASHBOARD = FILES / "dashboard.json"
ALERTS = FILES / "alerts.yaml"

# Words in PromQL that are neither metric names nor followed by "(".
KEYWORDS = {
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "inf",
    "nan",
    "atan2",
}
STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
MATCHERS = re.compile(r"\{[^}]*\}")
RANGES = re.compile(r"\[[^\]]*\]")
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
IDENTIFIER = re.compile(r"(?<![\w.$])[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_VALUES = re.compile(r"^\s*label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*(\{[^}]*\})?\s*,")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers left once strings, label
    matchers, ranges and grouping clauses are gone, that are neither keywords nor calls."""
    text = STRING.sub('""', expr)
    text = MATCHERS.sub("", text)
    text = RANGES.sub("", text)
    text = GROUPING.sub("", text)
    names = set()
    for match in IDENTIFIER.finditer(text):
        called = text[match.end() :].lstrip().startswith("(")
        if not called and match.group() not in KEYWORDS:
            names.add(match.group())
    return names


def exported_sample_names() -> set[str]:
    """The sample names the operator's metrics module exposes: its metric families, read
    from a registry, with the suffixes each family type adds to its samples."""
    registry = CollectorRegistry()
    registry.register(VerdictCollector())
    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_sum", "_count"),
        "summary": ("_sum", "_count"),
        "gauge": ("",),
        "info": ("_info",),
    }
    names = {
        f"{family.name}{suffix}"
        for family in registry.collect()
        for suffix in suffixes[family.type]
    }
    assert len(names) >= 14, f"too few metric families exported: {sorted(names)}"
    return names


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))  # a collapsed row keeps its panels inside
    return found


def queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable."""
    found = [
        (f"panel {panel['title']!r}", target["expr"])
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
    ]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            text = query["query"] if isinstance(query, dict) else query
            match = LABEL_VALUES.match(text)
            assert match and match.group(1), f"variable {variable['name']}: {text}"
            found.append((f"variable {variable['name']!r}", match.group(1)))
    return found


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def test_metric_names_are_read_out_of_promql() -> None:
    expr = (
        'histogram_quantile(0.9, sum by (claim, le) (rate(datarch_x_bucket{claim=~"$claim"}'
        "[$__rate_interval]))) and on (claim) (datarch_y == 0) unless time() - datarch_z > 1e3"
    )
    assert metric_names(expr) == {"datarch_x_bucket", "datarch_y", "datarch_z"}


def test_every_panel_query_names_only_metrics_the_operator_exports(
    dashboard: dict[str, Any],
) -> None:
    exported = exported_sample_names()
    unknown = {
        (where, name)
        for where, expr in queries(dashboard)
        for name in metric_names(expr)
        if name not in exported
    }
    assert not unknown, f"queries name metrics the operator does not export: {sorted(unknown)}"


def test_every_panel_has_a_query(dashboard: dict[str, Any]) -> None:
    empty = [p["title"] for p in panels(dashboard) if p["type"] != "row" and not p.get("targets")]
    assert not empty
    assert len(queries(dashboard)) >= 10


def test_the_dashboard_shows_findings_stores_backups_and_consumer_lag(
    dashboard: dict[str, Any],
) -> None:
    shown = {name for _, expr in queries(dashboard) for name in metric_names(expr)}
    assert {
        "datarch_findings",
        "datarch_store_up",
        "datarch_backup_age_seconds",
        "datarch_backup_fresh",
        "datarch_nats_consumer_num_pending",
        "datarch_nats_consumer_oldest_unacked_age_seconds",
    } <= shown
    findings = [expr for _, expr in queries(dashboard) if "datarch_findings" in expr]
    assert any(re.search(r"by \(claim_namespace, claim, store\)", expr) for expr in findings)


def test_every_panel_reads_the_chosen_data_source(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])


def test_panel_ids_are_unique_and_the_dashboard_has_a_stable_uid(
    dashboard: dict[str, Any],
) -> None:
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids))
    assert dashboard["uid"] == "datarch"


def test_alert_rules_name_only_metrics_the_operator_exports() -> None:
    named = set(re.findall(r"\bdatarch_\w+", ALERTS.read_text()))
    assert len(named) >= 7, sorted(named)
    assert named <= exported_sample_names(), sorted(named - exported_sample_names())
