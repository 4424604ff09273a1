"""Events: one per condition transition worth telling, never for a pass that changed nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from datarch.findings import Finding, FindingKind, Severity
from datarch.reporting import conditions as c
from datarch.reporting.events import ClaimRef, Transition, event_body, transitions
from datarch.reporting.status import build_status, invalid_status
from datarch.verification import StoreResult, Verdict

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def status(
    *stores: StoreResult, previous: dict[str, Any] | None = None, hours: int = 0
) -> dict[str, Any]:
    verdict = Verdict(stores=stores, started_at=T0 + timedelta(hours=hours), duration_seconds=1.0)
    return build_status(verdict, 1, previous)


def main(*paths: str) -> StoreResult:
    findings = tuple(Finding(p, FindingKind.MISSING, Severity.CRITICAL) for p in paths)
    return StoreResult(
        name="main", kind="postgres", reachable=True, findings=findings, observed_at=T0
    )


def objects(reachable: bool = True) -> StoreResult:
    if reachable:
        return StoreResult(name="objects", kind="s3", reachable=True, observed_at=T0)
    return StoreResult(
        name="objects",
        kind="s3",
        reachable=False,
        error_reason="StoreUnreachable",
        message="while listing buckets: connection refused",
    )


def summary(found: list[Transition]) -> list[tuple[str, str | None, str, str]]:
    return [(t.type, t.before, t.after, t.event_type) for t in found]


def test_a_healthy_new_claim_gets_a_single_ready_event() -> None:
    found = transitions(None, status(main(), objects()))
    assert summary(found) == [(c.READY, None, c.TRUE, "Normal")]
    assert found[0].reason == c.VERIFIED


def test_a_broken_new_claim_gets_an_event_per_broken_condition_and_none_for_unknowns() -> None:
    found = transitions(None, status(main("main/public.users"), objects(reachable=False)))
    assert summary(found) == [
        (c.STORES_REACHABLE, None, c.FALSE, "Warning"),
        (c.CONFORMING, None, c.FALSE, "Warning"),
    ]


def test_conforming_true_to_false_is_one_warning_naming_the_findings() -> None:
    healthy = status(main(), objects())
    broken = status(
        main("main/public.users.indexes.users_org_idx", "main/public.x", "main/public.y"),
        objects(),
        previous=healthy,
        hours=1,
    )
    found = transitions(healthy, broken)
    assert summary(found) == [(c.CONFORMING, c.TRUE, c.FALSE, "Warning")]
    assert found[0].reason == c.FINDINGS_PRESENT
    assert found[0].describe() == (
        "Conforming True->False: 3 findings in main: "
        "main/public.users.indexes.users_org_idx: documented but missing (and 2 more)"
    )


def test_restoring_a_claim_reports_the_condition_and_ready_becoming_true() -> None:
    broken = status(main("main/public.users"), objects())
    restored = status(main(), objects(), previous=broken, hours=1)
    assert summary(transitions(broken, restored)) == [
        (c.READY, c.FALSE, c.TRUE, "Normal"),
        (c.CONFORMING, c.FALSE, c.TRUE, "Normal"),
    ]


def test_a_pass_that_changes_no_condition_status_posts_nothing() -> None:
    broken = status(main("main/public.a"), objects())
    worse = status(main("main/public.a", "main/public.b"), objects(), previous=broken, hours=1)
    assert transitions(broken, worse) == []
    assert transitions(worse, worse) == []


def test_losing_sight_of_a_store_is_reported_on_its_own_conditions() -> None:
    healthy = status(main(), objects())
    blind = status(main(), objects(reachable=False), previous=healthy, hours=1)
    assert summary(transitions(healthy, blind)) == [
        (c.STORES_REACHABLE, c.TRUE, c.FALSE, "Warning"),
        (c.CONFORMING, c.TRUE, c.UNKNOWN, "Warning"),
    ]


def test_an_event_names_the_claim_and_says_what_flipped() -> None:
    transition = Transition(
        c.CONFORMING, c.TRUE, c.FALSE, c.FINDINGS_PRESENT, "3 findings in main: …"
    )
    body = event_body(transition, ClaimRef("data", "platform", "uid-1"), T0, "operator-0")
    assert body["involvedObject"] == {
        "apiVersion": "datarch.io/v1alpha1",
        "kind": "DataArchitectureClaim",
        "namespace": "data",
        "name": "platform",
        "uid": "uid-1",
    }
    assert (body["type"], body["reason"]) == ("Warning", "FindingsPresent")
    assert body["message"] == "Conforming True->False: 3 findings in main: …"
    assert body["metadata"] == {"generateName": "platform.", "namespace": "data"}
    assert body["firstTimestamp"] == body["lastTimestamp"] == "2026-11-25T12:00:00Z"


def test_an_event_message_is_cut_to_what_the_api_server_accepts() -> None:
    transition = Transition(c.CONFORMING, c.TRUE, c.FALSE, c.FINDINGS_PRESENT, "x" * 5000)
    assert len(transition.describe()) == 1024
    assert transition.describe().endswith("…")


def test_a_claim_invalid_from_the_start_gets_a_ready_false_event() -> None:
    found = transitions(None, invalid_status("spec.interval: not a duration", 1, None, T0))
    assert summary(found) == [(c.READY, None, c.FALSE, "Warning")]
    assert found[0].reason == c.CLAIM_INVALID


def test_a_claim_turning_invalid_is_told_by_its_conditions_going_unknown() -> None:
    healthy = status(main(), objects())
    found = transitions(healthy, invalid_status("spec.interval: not a duration", 2, healthy, T0))
    assert [(t.type, t.after) for t in found] == [
        (c.STORES_REACHABLE, c.UNKNOWN),
        (c.CONFORMING, c.UNKNOWN),
        (c.BACKUPS_FRESH, c.UNKNOWN),
    ]
