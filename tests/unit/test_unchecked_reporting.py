"""A documented field the probe could not read, through every report: never a finding, never a pass.

The verdict is incomplete (result "error", the CLI's exit 2), Conforming is
Unknown with its own reason, and each output names the field and the grant.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from xml.etree import ElementTree

from prometheus_client.parser import text_string_to_metric_families

from datarch.claims import Claim
from datarch.findings import Finding, FindingKind, Severity, Unchecked
from datarch.reporting import conditions as c
from datarch.reporting import metrics
from datarch.reporting.output import render_json, render_junit, render_text
from datarch.reporting.status import build_status
from datarch.verification import StoreResult, Verdict

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
SAVE = Unchecked(
    "cache/persistence.save", "CONFIG GET is refused to the probe's user", "+config|get"
)
CLAIM = Claim.model_validate(
    {
        "apiVersion": "datarch.io/v1alpha1",
        "kind": "DataArchitectureClaim",
        "metadata": {"name": "platform", "namespace": "data"},
        "spec": {
            "stores": [
                {
                    "name": "cache",
                    "kind": "redis",
                    "connection": {"secretRef": {"name": "cache"}},
                    "redis": {"persistence": {"save": ""}},
                }
            ]
        },
    }
)


def cache(*findings: Finding, unchecked: tuple[Unchecked, ...] = (SAVE,)) -> Verdict:
    store = StoreResult(
        name="cache",
        kind="redis",
        reachable=True,
        version="7.0.15",
        observed_at=T0,
        findings=findings,
        unchecked=unchecked,
    )
    return Verdict(stores=(store,), started_at=T0, duration_seconds=0.1)


def test_an_unreadable_field_makes_the_verdict_incomplete_not_conforming_and_not_drifted() -> None:
    verdict = cache()
    assert (verdict.findings, verdict.complete, verdict.conforming, verdict.result) == (
        [],
        False,
        None,
        "error",
    )
    # The store itself was read: its artifacts and findings still count.
    assert verdict.stores[0].checked


def test_the_description_names_the_field_why_and_the_grant() -> None:
    assert SAVE.describe() == (
        "cache/persistence.save: could not check (CONFIG GET is refused to the probe's user); "
        "grant +config|get to read it"
    )
    assert "grant" not in Unchecked("x/y", "the server does not offer it").describe()


def test_status_makes_conforming_unknown_with_its_own_reason_and_the_store_says_which() -> None:
    status = build_status(cache(), 1, None)
    found = {item["type"]: item for item in status["conditions"]}
    assert (found[c.CONFORMING]["status"], found[c.CONFORMING]["reason"]) == (
        c.UNKNOWN,
        c.FIELDS_NOT_CHECKED,
    )
    assert "+config|get" in found[c.CONFORMING]["message"]
    assert found[c.STORES_REACHABLE]["status"] == c.TRUE
    assert found[c.READY]["status"] == c.UNKNOWN
    (store,) = status["stores"]
    assert (store["unchecked"], store["findings"]) == (1, 0)
    assert store["message"].startswith("FieldsNotChecked: cache/persistence.save")


def test_findings_beside_an_unreadable_field_are_conforming_false_and_say_what_was_not_checked() -> (
    None
):
    drift = Finding("cache/maxmemory", FindingKind.DIFFERENT, Severity.WARNING, "1gb", "0")
    status = build_status(cache(drift), 1, None)
    conforming = next(i for i in status["conditions"] if i["type"] == c.CONFORMING)
    assert (conforming["status"], conforming["reason"]) == (c.FALSE, c.FINDINGS_PRESENT)
    assert "could not check 1 documented field: cache/persistence.save" in conforming["message"]
    assert cache(drift).result == "error"  # 2 wins over 1


def test_text_output_lists_the_field_and_closes_incomplete() -> None:
    text = render_text(CLAIM, cache())
    assert "cache (redis 7.0.15): no findings, INCOMPLETE: 1 documented field" in text
    assert SAVE.describe() in text
    assert text.splitlines()[-1].startswith("data/platform: INCOMPLETE: 1 field(s) could not be")


def test_json_output_carries_each_unchecked_field_with_its_grant() -> None:
    document = json.loads(render_json(CLAIM, cache()))
    assert (document["result"], document["conforming"]) == ("error", None)
    assert document["stores"][0]["unchecked"] == [SAVE.as_dict()]
    assert document["stores"][0]["unchecked"][0]["grant"] == "+config|get"


def test_junit_output_makes_the_field_an_error_not_a_pass() -> None:
    root = ElementTree.fromstring(render_junit(CLAIM, cache()))
    (suite,) = root.iter("testsuite")
    assert (suite.get("errors"), suite.get("failures")) == ("1", "0")
    (error,) = suite.iter("error")
    assert error.get("type") == c.FIELDS_NOT_CHECKED
    assert "+config|get" in (error.text or "")


def test_metrics_count_unchecked_fields_and_leave_conforming_absent() -> None:
    collector = metrics.VerdictCollector()
    registry = metrics.registry_with(collector)
    collector.record("data", "platform", CLAIM.spec, cache())
    body, _ = metrics.exposition(registry)
    samples = {
        (s.name, s.labels.get("store") or s.labels.get("result")): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }
    assert samples[("datarch_store_unchecked_fields", "cache")] == 1
    assert ("datarch_claim_conforming", None) not in samples
    assert samples[("datarch_verifications_total", "error")] == 1
    assert samples[("datarch_verifications_total", "ok")] == 0
