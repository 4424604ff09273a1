"""verification.py's own branches, without the CLI: backup freshness and store errors in the result.

The CLI and e2e tiers reach these only through a whole pass; a mutant that
read a stale backup as fine, or an unread store as checked, must fail here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from datarch import backups
from datarch.backups import BackupResult
from datarch.claims import ClaimSpec
from datarch.findings import Finding, FindingKind, Severity
from datarch.secrets import LocalSecrets
from datarch.verification import (
    REASON_SECRET_UNAVAILABLE,
    StoreResult,
    Verdict,
    verify,
    verify_store,
)

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
READ = StoreResult(name="main", kind="postgres", reachable=True)
DRIFTED = StoreResult(
    name="main",
    kind="postgres",
    reachable=True,
    findings=(Finding("main/public.users", FindingKind.MISSING, Severity.CRITICAL),),
)
UNREAD = StoreResult(
    name="objects", kind="s3", reachable=False, error_reason="StoreUnreachable", message="refused"
)
FRESH = BackupResult("nightly", fresh=True, reason=backups.BACKUP_FRESH)
STALE = BackupResult("nightly", fresh=False, reason=backups.BACKUP_STALE)
UNKNOWN = BackupResult("nightly", fresh=False, reason=backups.CRON_JOB_UNREADABLE)


@pytest.mark.parametrize(
    ("stores", "backup", "result", "conforming"),
    [
        ((READ,), FRESH, "ok", True),
        ((READ,), STALE, "findings", True),
        ((READ,), UNKNOWN, "error", True),
        ((DRIFTED,), FRESH, "findings", False),
        ((DRIFTED,), UNKNOWN, "error", False),
        ((READ, UNREAD), FRESH, "error", None),
        ((DRIFTED, UNREAD), STALE, "error", False),
    ],
    ids=[
        "read and fresh is ok",
        "a stale backup is a finding-level result even with conforming stores",
        "a backup whose freshness is unknown makes the pass an error, never ok",
        "findings with a fresh backup are findings",
        "findings with an unknown backup are an error: 2 wins over 1",
        "an unread store is an error and conformance unknown",
        "an unread store beside findings and a stale backup is still an error",
    ],
)
def test_the_result_and_conformance_of_a_verdict(
    stores: tuple[StoreResult, ...], backup: BackupResult, result: str, conforming: bool | None
) -> None:
    verdict = Verdict(stores=stores, backups=(backup,), started_at=T0)
    assert (verdict.result, verdict.conforming) == (result, conforming)


def test_a_backup_known_stale_is_checked_and_one_unknown_is_not() -> None:
    assert (FRESH.checked, STALE.checked, UNKNOWN.checked) == (True, True, False)


def _spec(*stores: dict[str, object], documented_backups: bool = False) -> ClaimSpec:
    fields: dict[str, object] = {"stores": list(stores)}
    if documented_backups:
        fields["backups"] = [
            {
                "name": "nightly",
                "store": "main",
                "cronJob": {"name": "pg-backup"},
                "schedule": "0 2 * * *",
            }
        ]
    return ClaimSpec.model_validate(fields)


MAIN = {"name": "main", "kind": "postgres", "connection": {"secretRef": {"name": "pg"}}}


async def test_a_secret_that_cannot_be_read_is_the_stores_own_reason_and_nothing_is_probed() -> (
    None
):
    (store,) = _spec(MAIN).stores
    result = await verify_store(store, 5.0, LocalSecrets(environ={}))
    assert (result.reachable, result.checked, result.error_reason) == (
        False,
        False,
        REASON_SECRET_UNAVAILABLE,
    )
    assert "DATARCH_SECRET_PG_DSN" in result.message
    assert result.findings == ()


async def test_backups_are_checked_with_the_names_of_the_stores_this_pass_could_not_read() -> None:
    seen: list[set[str]] = []

    async def checker(spec: ClaimSpec, stores: Sequence[StoreResult]) -> Sequence[BackupResult]:
        seen.append({s.name for s in stores if not s.checked})
        return (UNKNOWN,)

    verdict = await verify(
        _spec(MAIN, documented_backups=True), LocalSecrets(environ={}), backups=checker
    )

    assert seen == [{"main"}]
    assert verdict.backups == (UNKNOWN,)
    assert verdict.result == "error"


async def test_backups_are_not_checked_when_the_claim_documents_none() -> None:
    calls: list[object] = []

    async def checker(spec: ClaimSpec, stores: Sequence[StoreResult]) -> Sequence[BackupResult]:
        calls.append(spec)
        return (FRESH,)

    verdict = await verify(_spec(MAIN), LocalSecrets(environ={}), backups=checker)

    assert (calls, verdict.backups) == ([], ())
