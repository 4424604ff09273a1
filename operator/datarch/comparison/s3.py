"""S3 comparison: a claim's S3Expectations + ObservedS3 -> findings. Pure: no I/O, no clock.

It must not read a bucket itself nor decide how a policy grants access: the
probe derives `anonymousAccess` and this module only compares it.
"""

from __future__ import annotations

from collections.abc import Mapping

from datarch.claims import S3Bucket, S3LifecycleRule, S3ObjectLock, Store
from datarch.comparison.scope import in_scope
from datarch.findings import Finding, FindingKind, Outcome, Severity, Unchecked
from datarch.observations import (
    ObservedS3,
    S3BucketObs,
    S3LifecycleRuleObs,
    S3ObjectLockObs,
)

# What each anonymous-access level lets anyone on the network do.
_GRANTS = {
    "none": frozenset(),
    "read": frozenset({"read"}),
    "write": frozenset({"write"}),
    "readwrite": frozenset({"read", "write"}),
}
_WHOLE_BUCKET = "(whole bucket)"  # path segment of a lifecycle rule without prefix or id


def compare_s3(store: Store, observed: ObservedS3) -> list[Outcome]:
    documented = store.s3.buckets if store.s3 and store.s3.buckets else []
    by_name = {bucket.name: bucket for bucket in observed.buckets}
    findings: list[Outcome] = []
    for bucket in documented:
        seen = by_name.get(bucket.name)
        if seen is not None:
            findings += _bucket(store, bucket, seen)
        else:  # neither judged nor passed: the check is incomplete
            findings.append(Unchecked(bucket.name, "the probe did not read this bucket"))
    if store.strict:
        names = {bucket.name for bucket in documented}
        findings += [
            Finding(name, FindingKind.UNEXPECTED, Severity.WARNING, observed="bucket")
            for name in sorted(observed.all_buckets)
            if name not in names and in_scope(store.scope, name)
        ]
    return findings


def _bucket(store: Store, expected: S3Bucket, seen: S3BucketObs) -> list[Outcome]:
    name = expected.name
    if not seen.exists:
        # Everything else about a missing bucket would only repeat this finding.
        return [Finding(name, FindingKind.MISSING, Severity.CRITICAL, expected="bucket")]
    stated = {
        "anonymousAccess": expected.anonymous_access,
        "versioning": expected.versioning,
        "objectLock": expected.object_lock,
        "lifecycle": expected.lifecycle,
        "encryption": expected.encryption,
        "tags": expected.tags,
    }
    # Stated, and the probe could not read it: "could not check", never a finding
    # (nothing is known to differ) and never a pass (nothing is known to match).
    findings: list[Outcome] = [
        Unchecked(f"{name}.{facet}", seen.unreadable[facet].reason, seen.unreadable[facet].grant)
        for facet, value in stated.items()
        if value is not None and facet in seen.unreadable
    ]

    def readable(facet: str) -> bool:
        return stated[facet] is not None and facet not in seen.unreadable

    if readable("anonymousAccess") and expected.anonymous_access != seen.anonymous_access:
        findings.append(
            _anonymous_access(name, str(expected.anonymous_access), str(seen.anonymous_access))
        )
    if readable("versioning") and expected.versioning != seen.versioning:
        # Documented versioning is a promise that overwritten and deleted
        # objects can be recovered; without it (suspended counts, since new
        # writes are no longer versioned) that promise is broken for every
        # write from now on. The other way round only costs storage.
        findings.append(
            Finding(
                f"{name}.versioning",
                FindingKind.DIFFERENT,
                Severity.CRITICAL if expected.versioning == "enabled" else Severity.WARNING,
                expected=expected.versioning,
                observed=str(seen.versioning),
            )
        )
    if readable("objectLock") and expected.object_lock is not None:
        findings += _object_lock(name, expected.object_lock, seen.object_lock)
    if readable("lifecycle") and expected.lifecycle is not None:
        findings += _lifecycle(store, name, expected.lifecycle, seen.lifecycle)
    if readable("encryption") and expected.encryption != seen.encryption:
        findings.append(
            Finding(
                f"{name}.encryption",
                FindingKind.DIFFERENT,
                Severity.WARNING,
                expected=expected.encryption,
                observed=str(seen.encryption),
            )
        )
    if readable("tags") and expected.tags is not None:
        findings += _tags(store, name, expected.tags, seen.tags)
    return findings


def _anonymous_access(bucket: str, expected: str, observed: str) -> Finding:
    # Access the claim does not document is a security finding: anyone can
    # read (or overwrite) objects. Less access than documented breaks whoever
    # relies on it, which matters, but exposes nothing.
    exposed = _GRANTS[observed] - _GRANTS.get(expected, frozenset())
    return Finding(
        f"{bucket}.anonymousAccess",
        FindingKind.DIFFERENT,
        Severity.CRITICAL if exposed else Severity.WARNING,
        expected=expected,
        observed=observed,
    )


def _object_lock(
    bucket: str, expected: S3ObjectLock, seen: S3ObjectLockObs | None
) -> list[Finding]:
    path = f"{bucket}.objectLock"
    enabled = seen is not None and seen.enabled
    if expected.enabled != enabled:
        # Mode and retention of a lock that is not there would only repeat this.
        return [
            Finding(
                f"{path}.enabled",
                FindingKind.DIFFERENT,
                Severity.WARNING,
                expected=str(expected.enabled).lower(),
                observed=str(enabled).lower(),
            )
        ]
    if seen is None or not expected.enabled:
        return []
    return _differing(
        path,
        [
            ("mode", expected.mode, seen.mode),
            ("days", expected.days, seen.days),
            ("years", expected.years, seen.years),
        ],
    )


def _differing(
    path: str, checks: list[tuple[str, str | int | None, str | int | None]]
) -> list[Finding]:
    """A warning for each stated field whose observed value differs."""
    return [
        Finding(
            f"{path}.{field}",
            FindingKind.DIFFERENT,
            Severity.WARNING,
            expected=str(documented),
            observed="none" if observed is None else str(observed),
        )
        for field, documented, observed in checks
        if documented is not None and documented != observed
    ]


def _lifecycle(
    store: Store,
    bucket: str,
    expected: list[S3LifecycleRule],
    seen: tuple[S3LifecycleRuleObs, ...],
) -> list[Finding]:
    findings: list[Finding] = []
    matched: set[int] = set()
    for rule in expected:
        path = f"{bucket}.lifecycle.{_rule_label(rule.id, rule.prefix)}"
        index = _match_rule(rule, seen, matched)
        if index is None:
            findings.append(
                Finding(path, FindingKind.MISSING, Severity.WARNING, expected=_describe_rule(rule))
            )
            continue
        matched.add(index)
        findings += _rule_differences(path, rule, seen[index])
    if store.strict:
        # An undocumented expiration rule deletes data nobody wrote down; only
        # strict mode asks about undocumented things, and only enabled rules act.
        findings += [
            Finding(
                f"{bucket}.lifecycle.{_rule_label(rule.id, rule.prefix)}",
                FindingKind.UNEXPECTED,
                Severity.WARNING,
                observed=_describe_rule(rule),
            )
            for index, rule in enumerate(seen)
            if index not in matched and rule.enabled
        ]
    return findings


def _match_rule(
    rule: S3LifecycleRule, seen: tuple[S3LifecycleRuleObs, ...], taken: set[int]
) -> int | None:
    """By id when the claim gives one, else by prefix (no prefix is the whole bucket).

    Among several rules on one prefix (an expiration rule next to a noncurrent
    one, say) the one that satisfies the claim wins, so a correct rule is never
    reported as different because a sibling was looked at first.
    """
    if rule.id is not None:
        candidates = [i for i, r in enumerate(seen) if i not in taken and r.id == rule.id]
    else:
        candidates = [
            i
            for i, r in enumerate(seen)
            if i not in taken and (r.prefix or "") == (rule.prefix or "")
        ]
    if not candidates:
        return None
    for index in candidates:
        if not _rule_differences("", rule, seen[index]):
            return index
    return candidates[0]


def _rule_differences(path: str, rule: S3LifecycleRule, seen: S3LifecycleRuleObs) -> list[Finding]:
    findings = []
    if not seen.enabled:
        findings.append(
            Finding(
                f"{path}.status",
                FindingKind.DIFFERENT,
                Severity.WARNING,
                expected="enabled",
                observed="disabled",
            )
        )
    checks: list[tuple[str, str | int | None, str | int | None]] = [
        ("expirationDays", rule.expiration_days, seen.expiration_days),
        (
            "noncurrentExpirationDays",
            rule.noncurrent_expiration_days,
            seen.noncurrent_expiration_days,
        ),
    ]
    if rule.id is not None and rule.prefix is not None:
        checks.append(("prefix", rule.prefix, seen.prefix or ""))
    findings += _differing(path, checks)
    return findings


def _rule_label(rule_id: str | None, prefix: str | None) -> str:
    return rule_id if rule_id is not None else (prefix or _WHOLE_BUCKET)


def _describe_rule(rule: S3LifecycleRule | S3LifecycleRuleObs) -> str:
    """`prefix 'tmp/', expire after 7d`: what a person needs to find the rule in the console."""
    parts = [f"prefix {rule.prefix!r}" if rule.prefix else "whole bucket"]
    if rule.expiration_days is not None:
        parts.append(f"expire after {rule.expiration_days}d")
    if rule.noncurrent_expiration_days is not None:
        parts.append(f"noncurrent versions expire after {rule.noncurrent_expiration_days}d")
    return ", ".join(parts)


def _tags(
    store: Store, bucket: str, expected: dict[str, str], observed: Mapping[str, str]
) -> list[Finding]:
    findings = []
    for key, value in sorted(expected.items()):
        if key not in observed:
            findings.append(
                Finding(f"{bucket}.tags.{key}", FindingKind.MISSING, Severity.INFO, expected=value)
            )
        elif observed[key] != value:
            findings.append(
                Finding(
                    f"{bucket}.tags.{key}",
                    FindingKind.DIFFERENT,
                    Severity.INFO,
                    expected=value,
                    observed=observed[key],
                )
            )
    if store.strict:
        findings += [
            Finding(
                f"{bucket}.tags.{key}",
                FindingKind.UNEXPECTED,
                Severity.INFO,
                observed=observed[key],
            )
            for key in sorted(observed.keys() - expected.keys())
        ]
    return findings
