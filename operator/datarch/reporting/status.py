"""A verdict as the claim's status: conditions, summary, stores, backups and capped findings.

Pure: the previous status and the times come in as arguments, a JSON-ready dict
goes out (camelCase, the shape of claims.ClaimStatus). It never talks to the API
server; `needs_patch` only says whether writing is worth it.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from datarch.backups import BackupResult
from datarch.claims import (
    BackupStatus,
    ClaimStatus,
    Condition,
    FindingStatus,
    StoreStatus,
    Summary,
)
from datarch.findings import Finding
from datarch.reporting import conditions as c
from datarch.verification import StoreResult, Verdict

FINDINGS_CAP = 50  # DESIGN.md: status carries at most this many; -o json and metrics carry all
MESSAGE_LIMIT = 1000  # a condition message stays readable in `kubectl describe`

# Fields that move with the clock alone. A status differing only in these is not
# patched; when something else changes they are written along, as of lastVerifiedAt.
_VOLATILE_TOP = ("lastVerifiedAt",)
_VOLATILE_IN = {"stores": ("lastObservedAt",), "backups": ("ageSeconds", "artifactAgeSeconds")}


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def clip(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """`text`, cut to `limit` characters with an ellipsis when longer."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _second(moment: datetime) -> datetime:
    """Kubernetes times have whole seconds; so do ours, so a reread compares equal."""
    return moment.replace(microsecond=0)


def previous_conditions(previous: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    """The previous status's conditions by type; tolerant of anything a person wrote there."""
    found: dict[str, Mapping[str, Any]] = {}
    for item in (previous or {}).get("conditions") or ():
        if isinstance(item, Mapping) and isinstance(item.get("type"), str):
            found[item["type"]] = item
    return found


def _condition(
    kind: str,
    status: c.ConditionStatus,
    reason: str,
    message: str,
    *,
    now: datetime,
    previous: Mapping[str, Mapping[str, Any]],
    generation: int | None,
) -> Condition:
    before = previous.get(kind)
    transition = _second(now)
    if before is not None and before.get("status") == status and before.get("lastTransitionTime"):
        # Unchanged status keeps its time, however the reason or message moved
        # (unless what is there is not a time: then it is replaced, not a crash every pass).
        with contextlib.suppress(ValueError):
            transition = datetime.fromisoformat(
                str(before["lastTransitionTime"]).replace("Z", "+00:00")
            )
    return Condition(
        type=kind,
        status=status,
        reason=reason,
        message=clip(message),
        last_transition_time=transition,
        observed_generation=generation,
    )


def _one_reason(reasons: Sequence[str], several: str) -> str:
    return reasons[0] if len(set(reasons)) == 1 else several


def stores_reachable(stores: Sequence[StoreResult]) -> tuple[c.ConditionStatus, str, str]:
    unchecked = [s for s in stores if not s.checked]
    if not unchecked:
        return c.TRUE, c.ALL_STORES_REACHABLE, f"all {_plural(len(stores), 'store')} checked"
    reason = _one_reason([s.error_reason or c.STORE_ERROR for s in unchecked], c.STORES_UNREACHABLE)
    detail = "; ".join(f"{s.name}: {s.message or s.error_reason}" for s in unchecked)
    return (
        c.FALSE,
        reason,
        f"{len(unchecked)} of {_plural(len(stores), 'store')} not checked: {detail}",
    )


def findings_message(findings: Iterable[Finding], store_order: Sequence[str]) -> str:
    """`3 findings in main: main/public.users...: documented but missing (and 2 more); ...`."""
    by_store: dict[str, list[Finding]] = {}
    for finding in findings:
        by_store.setdefault(finding.path.split("/", 1)[0], []).append(finding)
    ordered = [s for s in store_order if s in by_store] + sorted(set(by_store) - set(store_order))
    parts = []
    for store in ordered:
        items = by_store[store]
        more = f" (and {len(items) - 1} more)" if len(items) > 1 else ""
        parts.append(f"{_plural(len(items), 'finding')} in {store}: {items[0].describe()}{more}")
    return "; ".join(parts)


def unchecked_fields_message(stores: Sequence[StoreResult]) -> str:
    """`could not check 1 documented field: cache/persistence.save: could not check (...)...`."""
    items = [u for s in stores if s.checked for u in s.unchecked]
    if not items:
        return ""
    more = f" (and {len(items) - 1} more)" if len(items) > 1 else ""
    return f"could not check {_plural(len(items), 'documented field')}: {items[0].describe()}{more}"


def conforming(verdict: Verdict) -> tuple[c.ConditionStatus, str, str]:
    """False on any finding: a store that could not be read cannot undo a difference another
    store showed. Unknown, never True, when nothing differs but some store was not read."""
    findings = verdict.findings
    unchecked = ", ".join(s.name for s in verdict.stores if not s.checked)
    fields = unchecked_fields_message(verdict.stores)
    if findings:
        message = findings_message(findings, [s.name for s in verdict.stores])
        if unchecked:  # the count covers only the stores that were read: say so
            message = f"{message}; could not check {unchecked} (see StoresReachable)"
        if fields:
            message = f"{message}; {fields}"
        return c.FALSE, c.FINDINGS_PRESENT, message
    if unchecked:
        message = f"could not check {unchecked} (see StoresReachable)"
        return c.UNKNOWN, c.STORES_NOT_CHECKED, f"{message}; {fields}" if fields else message
    if fields:
        return c.UNKNOWN, c.FIELDS_NOT_CHECKED, fields
    return c.TRUE, c.NO_FINDINGS, f"no findings in {_plural(len(verdict.stores), 'store')}"


def backups_fresh(backups: Sequence[BackupResult]) -> tuple[c.ConditionStatus, str, str]:
    if not backups:
        return c.TRUE, c.NO_BACKUPS_DOCUMENTED, "the claim documents no backups"
    stale = [b for b in backups if not b.fresh and b.checked]
    unknown = [b for b in backups if not b.checked]
    groups: tuple[tuple[c.ConditionStatus, list[BackupResult]], ...] = (
        (c.FALSE, stale),
        (c.UNKNOWN, unknown),
    )
    for status, group in groups:
        if group:
            reason = _one_reason([b.reason for b in group], c.BACKUPS_NOT_FRESH)
            detail = "; ".join(f"{b.name}: {b.message or b.reason}" for b in group)
            return status, reason, detail
    return c.TRUE, c.ALL_BACKUPS_FRESH, f"{len(backups)} of {_plural(len(backups), 'backup')} fresh"


def ready(parts: Sequence[Condition]) -> tuple[c.ConditionStatus, str, str]:
    """False when any part is False, Unknown when any is Unknown, True only when all are."""
    worst_first: tuple[c.ConditionStatus, ...] = (c.FALSE, c.UNKNOWN)
    for status in worst_first:
        for part in parts:
            if part.status == status:
                return status, part.reason, f"{part.type}: {part.message}"
    return c.TRUE, c.VERIFIED, "; ".join(part.message for part in parts)


def _store_status(store: StoreResult) -> StoreStatus:
    message = store.message
    if store.error_reason:
        message = f"{store.error_reason}: {store.message}" if store.message else store.error_reason
    elif store.unchecked:
        described = "; ".join(u.describe() for u in store.unchecked)
        message = f"{c.FIELDS_NOT_CHECKED}: {described}"
    return StoreStatus(
        name=store.name,
        kind=store.kind,
        reachable=store.reachable,
        version=store.version,
        findings=len(store.findings),
        unchecked=len(store.unchecked),
        last_observed_at=_second(store.observed_at) if store.observed_at else None,
        message=clip(message, 500),
    )


def _backup_status(backup: BackupResult) -> BackupStatus:
    message = backup.message
    if not backup.fresh:
        message = f"{backup.reason}: {backup.message}" if backup.message else backup.reason
    return BackupStatus(
        name=backup.name,
        last_successful_time=_second(backup.last_successful_time)
        if backup.last_successful_time
        else None,
        age_seconds=round(backup.age_seconds) if backup.age_seconds is not None else None,
        fresh=backup.fresh,
        artifact_age_seconds=(
            round(backup.artifact_age_seconds) if backup.artifact_age_seconds is not None else None
        ),
        message=clip(message, 500),
    )


def _finding_status(finding: Finding) -> FindingStatus:
    return FindingStatus(
        path=finding.path,
        kind=finding.kind.value,
        severity=finding.severity.value,
        expected=finding.expected,
        observed=finding.observed,
        message=finding.describe(),
    )


def _dump(status: ClaimStatus) -> dict[str, Any]:
    dumped: dict[str, Any] = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dumped


def build_status(
    verdict: Verdict, generation: int | None, previous: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The whole status for one verdict; `previous` keeps unflipped lastTransitionTimes."""
    finished = verdict.started_at + timedelta(seconds=verdict.duration_seconds)
    before = previous_conditions(previous)
    parts = [
        _condition(kind, *judged, now=finished, previous=before, generation=generation)
        for kind, judged in (
            (c.STORES_REACHABLE, stores_reachable(verdict.stores)),
            (c.CONFORMING, conforming(verdict)),
            (c.BACKUPS_FRESH, backups_fresh(verdict.backups)),
        )
    ]
    summary_condition = _condition(
        c.READY, *ready(parts), now=finished, previous=before, generation=generation
    )
    findings = verdict.findings
    severities = Counter(f.severity.value for f in findings)
    checked = sum(1 for s in verdict.stores if s.checked)
    fresh = sum(1 for b in verdict.backups if b.fresh)
    status = ClaimStatus(
        observed_generation=generation,
        last_verified_at=_second(finished),
        conditions=[summary_condition, *parts],
        summary=Summary(
            findings=len(findings),
            critical=severities["critical"],
            warning=severities["warning"],
            info=severities["info"],
            # Checked, not merely connected: a store documented as absent and absent counts.
            stores_reachable=checked,
            stores_total=len(verdict.stores),
            stores=f"{checked}/{len(verdict.stores)}",
            backups_fresh=fresh,
            backups_total=len(verdict.backups),
            backups=f"{fresh}/{len(verdict.backups)}",
        ),
        stores=[_store_status(s) for s in verdict.stores],
        backups=[_backup_status(b) for b in verdict.backups],
        findings=[_finding_status(f) for f in findings[:FINDINGS_CAP]],
        findings_truncated=len(findings) > FINDINGS_CAP,
    )
    return _dump(status)


def invalid_status(
    message: str, generation: int | None, previous: Mapping[str, Any] | None, now: datetime
) -> dict[str, Any]:
    """A spec the API server admitted but the operator cannot verify: Ready False, nothing checked."""
    return _nothing_checked(
        c.FALSE, c.CLAIM_INVALID, message, generation=generation, previous=previous, now=now
    )


def unverified_status(
    message: str, generation: int | None, previous: Mapping[str, Any] | None, now: datetime
) -> dict[str, Any]:
    """A pass that ended without a verdict (it ran out of time, or failed unexpectedly):
    every condition Unknown, so the previous pass's True does not stand for this one."""
    return _nothing_checked(
        c.UNKNOWN, c.VERIFICATION_FAILED, message, generation=generation, previous=previous, now=now
    )


def _nothing_checked(
    ready_status: c.ConditionStatus,
    reason: str,
    message: str,
    *,
    generation: int | None,
    previous: Mapping[str, Any] | None,
    now: datetime,
) -> dict[str, Any]:
    before = previous_conditions(previous)
    not_checked = f"not verified: {message}"
    status = ClaimStatus(
        observed_generation=generation,
        last_verified_at=_second(now),
        conditions=[
            _condition(
                c.READY,
                ready_status,
                reason,
                message,
                now=now,
                previous=before,
                generation=generation,
            ),
            *(
                _condition(
                    kind,
                    c.UNKNOWN,
                    reason,
                    not_checked,
                    now=now,
                    previous=before,
                    generation=generation,
                )
                for kind in (c.STORES_REACHABLE, c.CONFORMING, c.BACKUPS_FRESH)
            ),
        ],
    )
    return _dump(status)


def _stable(status: Mapping[str, Any]) -> dict[str, Any]:
    stable = {k: v for k, v in status.items() if k not in _VOLATILE_TOP}
    for key, volatile in _VOLATILE_IN.items():
        if isinstance(stable.get(key), list):
            stable[key] = [
                {k: v for k, v in item.items() if k not in volatile}
                if isinstance(item, Mapping)
                else item
                for item in stable[key]
            ]
    return stable


def needs_patch(previous: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """True when something other than the clock moved: lastVerifiedAt, lastObservedAt and ages
    alone never cause a write. Keys the operator does not write are ignored."""
    if not previous:
        return True
    ours = {k: previous[k] for k in new if k in previous}
    return _stable(ours) != _stable(new)
