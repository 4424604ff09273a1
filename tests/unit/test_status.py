"""A verdict as the claim's status: conditions, summary, capped findings, and when to patch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from datarch.backups import BackupResult
from datarch.claims import ClaimStatus
from datarch.findings import Finding, FindingKind, Severity
from datarch.reporting import conditions as c
from datarch.reporting.status import (
    build_status,
    invalid_status,
    needs_patch,
    unverified_status,
)
from datarch.verification import StoreResult, Verdict

T0 = datetime(2026, 11, 25, 12, 0, 0, 250_000, tzinfo=UTC)


def finding(path: str, severity: Severity = Severity.CRITICAL) -> Finding:
    return Finding(path, FindingKind.MISSING, severity)


def store(name: str = "main", kind: str = "postgres", **fields: Any) -> StoreResult:
    values: dict[str, Any] = {"reachable": True, "version": "15.8", "observed_at": T0}
    values.update(fields)
    return StoreResult(name=name, kind=kind, **values)  # type: ignore[arg-type]


def unreachable(name: str, reason: str = "StoreUnreachable", message: str = "") -> StoreResult:
    return StoreResult(
        name=name,
        kind="s3",
        reachable=False,
        error_reason=reason,
        message=message or f"while connecting to {name}: connection refused",
    )


def verdict(
    *stores: StoreResult, backups: tuple[BackupResult, ...] = (), at: datetime = T0
) -> Verdict:
    return Verdict(stores=stores, backups=backups, started_at=at, duration_seconds=1.5)


def conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["type"]: item for item in status["conditions"]}


def fresh_backup(name: str = "main-nightly") -> BackupResult:
    success = T0 - timedelta(hours=3)
    return BackupResult(
        name,
        fresh=True,
        reason="BackupFresh",
        message="last success at 2026-11-25T09:00:00Z",
        last_successful_time=success,
        age_seconds=3 * 3600.4,
    )


def test_a_claim_without_findings_is_ready_with_every_condition_true() -> None:
    status = build_status(verdict(store(), store("objects", "s3")), 3, None)
    found = conditions(status)
    assert [item["type"] for item in status["conditions"]] == list(c.CONDITION_TYPES)
    assert {k: (v["status"], v["reason"]) for k, v in found.items()} == {
        c.READY: (c.TRUE, c.VERIFIED),
        c.STORES_REACHABLE: (c.TRUE, c.ALL_STORES_REACHABLE),
        c.CONFORMING: (c.TRUE, c.NO_FINDINGS),
        c.BACKUPS_FRESH: (c.TRUE, c.NO_BACKUPS_DOCUMENTED),
    }
    assert status["observedGeneration"] == 3
    assert all(item["observedGeneration"] == 3 for item in status["conditions"])
    assert status["lastVerifiedAt"] == "2026-11-25T12:00:01Z"
    assert status["summary"]["stores"] == "2/2"
    assert status["summary"]["backups"] == "0/0"
    assert status["findings"] == [] and status["findingsTruncated"] is False


def test_the_status_has_the_shape_of_the_claim_status_model() -> None:
    status = build_status(verdict(store(findings=(finding("main/public.users"),))), 1, None)
    parsed = ClaimStatus.model_validate(status)
    assert parsed.summary.findings == 1
    assert parsed.stores[0].last_observed_at == T0.replace(microsecond=0)


def test_findings_make_conforming_false_with_a_message_naming_the_store_and_the_worst() -> None:
    findings = (
        finding("main/public.users.indexes.users_org_idx"),
        finding("main/public.users.columns.email", Severity.WARNING),
        finding("main/public.orgs", Severity.INFO),
    )
    status = build_status(verdict(store(findings=findings)), 1, None)
    found = conditions(status)
    assert found[c.CONFORMING]["status"] == c.FALSE
    assert found[c.CONFORMING]["reason"] == c.FINDINGS_PRESENT
    assert found[c.CONFORMING]["message"] == (
        "3 findings in main: main/public.users.indexes.users_org_idx: documented but missing"
        " (and 2 more)"
    )
    assert (found[c.READY]["status"], found[c.READY]["reason"]) == (c.FALSE, c.FINDINGS_PRESENT)
    summary = status["summary"]
    assert (summary["findings"], summary["critical"], summary["warning"], summary["info"]) == (
        3,
        1,
        1,
        1,
    )
    assert status["stores"][0]["findings"] == 3


def test_an_unreadable_store_makes_conforming_unknown_never_true() -> None:
    status = build_status(verdict(store(), unreachable("objects")), 1, None)
    found = conditions(status)
    assert (found[c.STORES_REACHABLE]["status"], found[c.STORES_REACHABLE]["reason"]) == (
        c.FALSE,
        c.STORE_UNREACHABLE,
    )
    assert (
        "objects: while connecting to objects: connection refused"
        in found[c.STORES_REACHABLE]["message"]
    )
    assert (found[c.CONFORMING]["status"], found[c.CONFORMING]["reason"]) == (
        c.UNKNOWN,
        c.STORES_NOT_CHECKED,
    )
    assert found[c.READY]["status"] == c.FALSE
    assert status["summary"]["stores"] == "1/2"
    assert status["stores"][1]["message"].startswith("StoreUnreachable: ")


def test_stores_failing_for_different_reasons_share_one_summary_reason() -> None:
    status = build_status(
        verdict(unreachable("a"), unreachable("b", "AccessDenied", "while logging in: denied")),
        1,
        None,
    )
    assert conditions(status)[c.STORES_REACHABLE]["reason"] == c.STORES_UNREACHABLE


def test_a_store_documented_absent_and_absent_counts_as_checked() -> None:
    absent = StoreResult(
        name="cache", kind="redis", reachable=False, message="absent as documented"
    )
    status = build_status(verdict(store(), absent), 1, None)
    assert conditions(status)[c.READY]["status"] == c.TRUE
    assert status["summary"]["stores"] == "2/2"
    assert status["stores"][1]["reachable"] is False


def test_findings_beyond_fifty_are_cut_and_flagged_but_all_are_counted() -> None:
    many = tuple(finding(f"main/public.t{i:03}") for i in range(73))
    status = build_status(verdict(store(findings=many)), 1, None)
    assert len(status["findings"]) == 50
    assert status["findingsTruncated"] is True
    assert status["summary"]["findings"] == 73
    assert status["findings"][0]["message"] == "main/public.t000: documented but missing"


def test_a_stale_backup_makes_backups_fresh_false_with_its_reason() -> None:
    stale = BackupResult(
        "main-nightly", fresh=False, reason="BackupStale", message="last success at ..."
    )
    status = build_status(verdict(store(), backups=(stale, fresh_backup("other"))), 1, None)
    found = conditions(status)
    assert (found[c.BACKUPS_FRESH]["status"], found[c.BACKUPS_FRESH]["reason"]) == (
        c.FALSE,
        c.BACKUP_STALE,
    )
    assert found[c.READY]["reason"] == c.BACKUP_STALE
    assert status["summary"]["backups"] == "1/2"
    assert status["backups"][0]["message"] == "BackupStale: last success at ..."


def test_a_backup_that_could_not_be_read_makes_backups_fresh_and_ready_unknown() -> None:
    unknown = BackupResult(
        "main-nightly", fresh=False, reason="CronJobUnreadable", message="forbidden"
    )
    found = conditions(build_status(verdict(store(), backups=(unknown,)), 1, None))
    assert found[c.BACKUPS_FRESH]["status"] == c.UNKNOWN
    assert (found[c.READY]["status"], found[c.READY]["reason"]) == (
        c.UNKNOWN,
        c.CRON_JOB_UNREADABLE,
    )


def test_backup_status_carries_whole_seconds_and_its_time() -> None:
    status = build_status(verdict(store(), backups=(fresh_backup(),)), 1, None)
    assert status["backups"] == [
        {
            "name": "main-nightly",
            "lastSuccessfulTime": "2026-11-25T09:00:00Z",
            "ageSeconds": 10801,
            "fresh": True,
            "message": "last success at 2026-11-25T09:00:00Z",
        }
    ]


def test_an_unflipped_condition_keeps_its_transition_time_even_when_its_message_changes() -> None:
    first = build_status(verdict(store(findings=(finding("main/a"),))), 1, None)
    later = build_status(
        verdict(store(findings=(finding("main/a"), finding("main/b"))), at=T0 + timedelta(hours=1)),
        1,
        first,
    )
    before, after = conditions(first)[c.CONFORMING], conditions(later)[c.CONFORMING]
    assert after["message"] != before["message"]
    assert after["lastTransitionTime"] == before["lastTransitionTime"] == "2026-11-25T12:00:01Z"


def test_a_flipped_condition_gets_a_new_transition_time() -> None:
    first = build_status(verdict(store()), 1, None)
    later = build_status(
        verdict(store(findings=(finding("main/a"),)), at=T0 + timedelta(hours=1)), 1, first
    )
    assert conditions(later)[c.CONFORMING]["lastTransitionTime"] == "2026-11-25T13:00:01Z"
    assert conditions(later)[c.STORES_REACHABLE]["lastTransitionTime"] == "2026-11-25T12:00:01Z"


def test_a_pass_that_only_moves_the_clock_needs_no_patch() -> None:
    first = build_status(verdict(store(), backups=(fresh_backup(),)), 1, None)
    later_backup = BackupResult(
        "main-nightly",
        fresh=True,
        reason="BackupFresh",
        message="last success at 2026-11-25T09:00:00Z",
        last_successful_time=T0 - timedelta(hours=3),
        age_seconds=4 * 3600,
    )
    later = build_status(
        verdict(
            store(observed_at=T0 + timedelta(minutes=5)),
            backups=(later_backup,),
            at=T0 + timedelta(minutes=5),
        ),
        1,
        first,
    )
    assert later["lastVerifiedAt"] != first["lastVerifiedAt"]
    assert later["stores"][0]["lastObservedAt"] != first["stores"][0]["lastObservedAt"]
    assert later["backups"][0]["ageSeconds"] != first["backups"][0]["ageSeconds"]
    assert needs_patch(first, later) is False


def test_a_new_finding_a_new_generation_or_no_previous_status_needs_a_patch() -> None:
    first = build_status(verdict(store()), 1, None)
    assert needs_patch(None, first) is True
    assert needs_patch({}, first) is True
    assert needs_patch(first, build_status(verdict(store(findings=(finding("main/a"),))), 1, first))
    assert needs_patch(first, build_status(verdict(store()), 2, first))


def test_keys_the_operator_does_not_write_do_not_force_a_patch() -> None:
    first = build_status(verdict(store()), 1, None)
    assert needs_patch({**first, "kopf": {"progress": {}}}, first) is False


def test_an_invalid_spec_is_ready_false_claim_invalid_and_checks_nothing() -> None:
    status = invalid_status("spec.stores[0].kind: Input should be ...", 4, None, T0)
    found = conditions(status)
    assert (found[c.READY]["status"], found[c.READY]["reason"]) == (c.FALSE, c.CLAIM_INVALID)
    assert found[c.READY]["message"] == "spec.stores[0].kind: Input should be ..."
    assert {found[k]["status"] for k in (c.STORES_REACHABLE, c.CONFORMING, c.BACKUPS_FRESH)} == {
        c.UNKNOWN
    }
    assert status["stores"] == [] and status["observedGeneration"] == 4


def test_findings_with_an_unreadable_store_are_conforming_false_saying_what_was_not_checked() -> (
    None
):
    # Findings are certain even when another store could not be read: False, not Unknown,
    # but the message must not read as if every store had been compared.
    status = build_status(
        verdict(store(findings=(finding("main/public.users"),)), unreachable("objects")), 1, None
    )
    found = conditions(status)
    assert (found[c.CONFORMING]["status"], found[c.CONFORMING]["reason"]) == (
        c.FALSE,
        c.FINDINGS_PRESENT,
    )
    assert found[c.CONFORMING]["message"] == (
        "1 finding in main: main/public.users: documented but missing; "
        "could not check objects (see StoresReachable)"
    )
    assert found[c.STORES_REACHABLE]["status"] == c.FALSE
    assert found[c.READY]["status"] == c.FALSE
    assert status["summary"]["stores"] == "1/2"
    assert status["summary"]["findings"] == 1


def test_every_combination_of_parts_gives_the_worst_ready() -> None:
    # Ready is True only when all three are; False beats Unknown; Conforming is never True
    # while some store is unchecked.
    cases = {
        (True, False, "fresh"): c.TRUE,
        (True, True, "fresh"): c.FALSE,
        (False, False, "fresh"): c.FALSE,
        (False, True, "fresh"): c.FALSE,
        (True, False, "unknown"): c.UNKNOWN,
        (True, False, "stale"): c.FALSE,
        (True, True, "unknown"): c.FALSE,
    }
    for (reachable, has_findings, backup), expected in cases.items():
        stores = [store(findings=(finding("main/x"),) if has_findings else ())]
        if not reachable:
            stores.append(unreachable("objects"))
        backups = {
            "fresh": fresh_backup(),
            "unknown": BackupResult("b", fresh=False, reason=c.CRON_JOB_UNREADABLE),
            "stale": BackupResult("b", fresh=False, reason=c.BACKUP_STALE),
        }[backup]
        found = conditions(build_status(verdict(*stores, backups=(backups,)), 1, None))
        assert found[c.READY]["status"] == expected, (reachable, has_findings, backup)
        if not reachable:
            assert found[c.CONFORMING]["status"] != c.TRUE


def test_a_pass_without_a_verdict_makes_every_condition_unknown_not_the_last_true() -> None:
    healthy = build_status(verdict(store()), 2, None)
    later = T0 + timedelta(minutes=5)
    status = unverified_status("the pass did not finish within 120s", 2, healthy, later)
    found = conditions(status)
    assert {k: (v["status"], v["reason"]) for k, v in found.items()} == {
        kind: (c.UNKNOWN, c.VERIFICATION_FAILED) for kind in c.CONDITION_TYPES
    }
    assert found[c.READY]["lastTransitionTime"] == "2026-11-25T12:05:00Z"
    assert status["summary"]["stores"] == "0/0" and status["findings"] == []
    assert needs_patch(healthy, status)


def test_a_transition_time_that_is_not_a_time_is_replaced_not_a_crash() -> None:
    # Anyone with status access can write there; the operator must keep working.
    previous = {
        "conditions": [
            {"type": c.READY, "status": c.TRUE, "reason": "X", "lastTransitionTime": "yesterday"}
        ]
    }
    status = build_status(verdict(store()), 1, previous)
    assert conditions(status)[c.READY]["lastTransitionTime"] == "2026-11-25T12:00:01Z"
