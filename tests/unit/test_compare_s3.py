"""compare_s3: tables of claim + observed facts -> findings, one per finding kind and field.

Also the one judgement-free derivation the S3 probe makes without a server:
anonymous access from a bucket policy document.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from datarch.claims import Store
from datarch.comparison.s3 import compare_s3
from datarch.findings import Finding, FindingKind, Outcome, Severity, Unchecked
from datarch.observations import (
    ObservedS3,
    S3BucketObs,
    S3LifecycleRuleObs,
    S3ObjectLockObs,
    Unreadable,
)
from datarch.probes.s3 import anonymous_access

CRITICAL, WARNING, INFO = Severity.CRITICAL, Severity.WARNING, Severity.INFO
MISSING, UNEXPECTED, DIFFERENT = FindingKind.MISSING, FindingKind.UNEXPECTED, FindingKind.DIFFERENT

TMP_RULE = S3LifecycleRuleObs(
    id="tmp", prefix="tmp/", enabled=True, expiration_days=7, noncurrent_expiration_days=None
)
UPLOADS = S3BucketObs(
    name="uploads",
    exists=True,
    versioning="enabled",
    object_lock=S3ObjectLockObs(enabled=True, mode="governance", days=30, years=None),
    lifecycle=(TMP_RULE,),
    anonymous_access="none",
    encryption="AES256",
    tags={"team": "data", "cost-center": "42"},
)


def store(buckets: list[dict[str, Any]] | None = None, **fields: Any) -> Store:
    s3 = None if buckets is None else {"buckets": buckets}
    return Store.model_validate({"name": "objects", "kind": "s3", "s3": s3, **fields})


def uploads(**fields: Any) -> list[dict[str, Any]]:
    return [{"name": "uploads", **fields}]


def observed(*buckets: S3BucketObs, all_buckets: tuple[str, ...] = ()) -> ObservedS3:
    return ObservedS3(buckets=buckets, all_buckets=all_buckets)


CASES: list[tuple[str, list[dict[str, Any]], ObservedS3, list[Outcome]]] = [
    (
        "a claim that states everything as observed has no finding",
        uploads(
            versioning="enabled",
            anonymousAccess="none",
            objectLock={"mode": "governance", "days": 30},
            lifecycle=[{"prefix": "tmp/", "expirationDays": 7}],
            encryption="AES256",
            tags={"team": "data"},
        ),
        observed(UPLOADS),
        [],
    ),
    (
        "a missing bucket is critical and nothing else is said about it",
        uploads(versioning="enabled", tags={"team": "data"}),
        observed(S3BucketObs(name="uploads", exists=False)),
        [Finding("uploads", MISSING, CRITICAL, expected="bucket")],
    ),
    (
        "a bucket anyone can read, documented private, is critical",
        uploads(anonymousAccess="none"),
        observed(replace(UPLOADS, anonymous_access="read")),
        [Finding("uploads.anonymousAccess", DIFFERENT, CRITICAL, expected="none", observed="read")],
    ),
    (
        "write access beyond documented read access is critical",
        uploads(anonymousAccess="read"),
        observed(replace(UPLOADS, anonymous_access="readwrite")),
        [
            Finding(
                "uploads.anonymousAccess",
                DIFFERENT,
                CRITICAL,
                expected="read",
                observed="readwrite",
            )
        ],
    ),
    (
        "less anonymous access than documented exposes nothing and is a warning",
        uploads(anonymousAccess="read"),
        observed(UPLOADS),
        [Finding("uploads.anonymousAccess", DIFFERENT, WARNING, expected="read", observed="none")],
    ),
    (
        "versioning documented enabled but suspended is critical",
        uploads(versioning="enabled"),
        observed(replace(UPLOADS, versioning="suspended")),
        [
            Finding(
                "uploads.versioning", DIFFERENT, CRITICAL, expected="enabled", observed="suspended"
            )
        ],
    ),
    (
        "versioning documented disabled but enabled is a warning",
        uploads(versioning="disabled"),
        observed(UPLOADS),
        [
            Finding(
                "uploads.versioning", DIFFERENT, WARNING, expected="disabled", observed="enabled"
            )
        ],
    ),
    (
        "object lock documented but not configured is a warning, said once",
        uploads(objectLock={"mode": "compliance", "years": 1}),
        observed(replace(UPLOADS, object_lock=None)),
        [
            Finding(
                "uploads.objectLock.enabled", DIFFERENT, WARNING, expected="true", observed="false"
            )
        ],
    ),
    (
        "object lock documented disabled but configured is a warning",
        uploads(objectLock={"enabled": False}),
        observed(UPLOADS),
        [
            Finding(
                "uploads.objectLock.enabled", DIFFERENT, WARNING, expected="false", observed="true"
            )
        ],
    ),
    (
        "another object lock mode and retention are warnings",
        uploads(objectLock={"mode": "compliance", "days": 7, "years": 1}),
        observed(UPLOADS),
        [
            Finding(
                "uploads.objectLock.mode",
                DIFFERENT,
                WARNING,
                expected="compliance",
                observed="governance",
            ),
            Finding("uploads.objectLock.days", DIFFERENT, WARNING, expected="7", observed="30"),
            Finding("uploads.objectLock.years", DIFFERENT, WARNING, expected="1", observed="none"),
        ],
    ),
    (
        "a documented lifecycle rule that is not there is missing",
        uploads(lifecycle=[{"prefix": "logs/", "expirationDays": 30}]),
        observed(UPLOADS),
        [
            Finding(
                "uploads.lifecycle.logs/",
                MISSING,
                WARNING,
                expected="prefix 'logs/', expire after 30d",
            )
        ],
    ),
    (
        "a lifecycle rule is matched by id when the claim gives one",
        uploads(lifecycle=[{"id": "tmp", "prefix": "scratch/", "expirationDays": 7}]),
        observed(UPLOADS),
        [
            Finding(
                "uploads.lifecycle.tmp.prefix",
                DIFFERENT,
                WARNING,
                expected="scratch/",
                observed="tmp/",
            )
        ],
    ),
    (
        "a lifecycle rule with another id is missing even on the same prefix",
        uploads(lifecycle=[{"id": "expire-tmp", "prefix": "tmp/"}]),
        observed(UPLOADS),
        [Finding("uploads.lifecycle.expire-tmp", MISSING, WARNING, expected="prefix 'tmp/'")],
    ),
    (
        "another expiration on the matched rule is a warning",
        uploads(lifecycle=[{"prefix": "tmp/", "expirationDays": 1}]),
        observed(UPLOADS),
        [
            Finding(
                "uploads.lifecycle.tmp/.expirationDays",
                DIFFERENT,
                WARNING,
                expected="1",
                observed="7",
            )
        ],
    ),
    (
        "a disabled rule and a missing noncurrent expiration are warnings",
        uploads(lifecycle=[{"prefix": "tmp/", "noncurrentExpirationDays": 3}]),
        observed(replace(UPLOADS, lifecycle=(replace(TMP_RULE, enabled=False),))),
        [
            Finding(
                "uploads.lifecycle.tmp/.status",
                DIFFERENT,
                WARNING,
                expected="enabled",
                observed="disabled",
            ),
            Finding(
                "uploads.lifecycle.tmp/.noncurrentExpirationDays",
                DIFFERENT,
                WARNING,
                expected="3",
                observed="none",
            ),
        ],
    ),
    (
        "of two rules on one prefix the one that satisfies the claim is chosen",
        uploads(lifecycle=[{"prefix": "tmp/", "noncurrentExpirationDays": 3}]),
        observed(
            replace(
                UPLOADS,
                lifecycle=(
                    TMP_RULE,
                    replace(TMP_RULE, id="nc", expiration_days=None, noncurrent_expiration_days=3),
                ),
            )
        ),
        [],
    ),
    (
        "a rule without prefix or id is the whole bucket's",
        uploads(lifecycle=[{"noncurrentExpirationDays": 3}]),
        observed(UPLOADS),
        [
            Finding(
                "uploads.lifecycle.(whole bucket)",
                MISSING,
                WARNING,
                expected="whole bucket, noncurrent versions expire after 3d",
            )
        ],
    ),
    (
        "undocumented lifecycle rules are not checked outside strict mode",
        uploads(lifecycle=[]),
        observed(UPLOADS),
        [],
    ),
    (
        "another default encryption is a warning",
        uploads(encryption="aws:kms"),
        observed(UPLOADS),
        [Finding("uploads.encryption", DIFFERENT, WARNING, expected="aws:kms", observed="AES256")],
    ),
    (
        "no default encryption where documented is a warning",
        uploads(encryption="AES256"),
        observed(replace(UPLOADS, encryption="none")),
        [Finding("uploads.encryption", DIFFERENT, WARNING, expected="AES256", observed="none")],
    ),
    (
        "a missing or different tag is informational",
        uploads(tags={"team": "platform", "owner": "alice"}),
        observed(UPLOADS),
        [
            Finding("uploads.tags.owner", MISSING, INFO, expected="alice"),
            Finding("uploads.tags.team", DIFFERENT, INFO, expected="platform", observed="data"),
        ],
    ),
    (
        "a facet the server does not implement cannot be checked and says so",
        uploads(encryption="AES256", versioning="enabled"),
        observed(
            replace(
                UPLOADS,
                encryption=None,
                unreadable={
                    "encryption": Unreadable("the server does not implement it (NotImplemented)")
                },
            )
        ),
        [Unchecked("uploads.encryption", "the server does not implement it (NotImplemented)")],
    ),
    (
        "a facet the credentials may not read is could not check naming the action to grant",
        uploads(anonymousAccess="none"),
        observed(
            replace(
                UPLOADS,
                anonymous_access=None,
                unreadable={
                    "anonymousAccess": Unreadable(
                        "s3:GetBucketPolicy is refused to the probe's credentials",
                        "s3:GetBucketPolicy",
                    )
                },
            )
        ),
        [
            Unchecked(
                "uploads.anonymousAccess",
                "s3:GetBucketPolicy is refused to the probe's credentials",
                "s3:GetBucketPolicy",
            )
        ],
    ),
    (
        "an unreadable facet the claim leaves out is no finding",
        uploads(versioning="enabled"),
        observed(
            replace(
                UPLOADS, unreadable={"objectLock": Unreadable("the server does not implement it")}
            )
        ),
        [],
    ),
    (
        "a bucket the probe did not read is could not check, never a pass",
        uploads(versioning="enabled"),
        observed(),
        [Unchecked("uploads", "the probe did not read this bucket")],
    ),
    (
        "undocumented buckets are not checked outside strict mode",
        uploads(),
        observed(UPLOADS, all_buckets=("backups", "uploads")),
        [],
    ),
]


@pytest.mark.parametrize(
    ("buckets", "observed_s3", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_comparison_table(
    buckets: list[dict[str, Any]], observed_s3: ObservedS3, expected: list[Outcome]
) -> None:
    assert compare_s3(store(buckets), observed_s3) == expected


def test_undocumented_buckets_are_unexpected_in_strict_mode() -> None:
    findings = compare_s3(
        store(uploads(), strict=True), observed(UPLOADS, all_buckets=("uploads", "backups"))
    )
    assert findings == [Finding("backups", UNEXPECTED, WARNING, observed="bucket")]


def test_strict_mode_counts_only_buckets_in_scope() -> None:
    findings = compare_s3(
        store(uploads(), strict=True, scope=["app-*"]),
        observed(UPLOADS, all_buckets=("app-logs", "backups", "uploads")),
    )
    assert findings == [Finding("app-logs", UNEXPECTED, WARNING, observed="bucket")]


def test_strict_mode_without_documented_buckets_finds_every_bucket_unexpected() -> None:
    findings = compare_s3(store(None, strict=True), observed(all_buckets=("a", "b")))
    assert [f.path for f in findings] == ["a", "b"]


def test_undocumented_enabled_lifecycle_rules_are_unexpected_in_strict_mode() -> None:
    disabled = replace(TMP_RULE, id="old", prefix="old/", enabled=False)
    findings = compare_s3(
        store(uploads(lifecycle=[]), strict=True),
        observed(replace(UPLOADS, lifecycle=(TMP_RULE, disabled)), all_buckets=("uploads",)),
    )
    assert findings == [
        Finding(
            "uploads.lifecycle.tmp", UNEXPECTED, WARNING, observed="prefix 'tmp/', expire after 7d"
        )
    ]


def test_undocumented_tags_are_informational_in_strict_mode() -> None:
    findings = compare_s3(
        store(uploads(tags={"team": "data"}), strict=True),
        observed(UPLOADS, all_buckets=("uploads",)),
    )
    assert findings == [Finding("uploads.tags.cost-center", UNEXPECTED, INFO, observed="42")]


# --- anonymous access from a bucket policy ------------------------------------------


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(
    action: Any, resource: Any = "arn:aws:s3:::uploads/*", principal: Any = "*"
) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": principal, "Action": action, "Resource": resource}


POLICIES: list[tuple[str, str, str]] = [
    ("no policy grants nothing", "", "none"),
    ("GetObject to everyone is read", policy(allow("s3:GetObject")), "read"),
    ("PutObject to everyone is write", policy(allow(["s3:PutObject"])), "write"),
    (
        "both actions are readwrite",
        policy(allow(["s3:GetObject", "s3:PutObject"])),
        "readwrite",
    ),
    ("s3:* is readwrite", policy(allow("s3:*")), "readwrite"),
    ("a wildcard action counts", policy(allow("s3:Get*")), "read"),
    ("actions match regardless of case", policy(allow("S3:getobject")), "read"),
    ('{"AWS": "*"} is everyone', policy(allow("s3:GetObject", principal={"AWS": "*"})), "read"),
    ('{"AWS": ["*"]} is everyone', policy(allow("s3:GetObject", principal={"AWS": ["*"]})), "read"),
    (
        "a named principal is not anonymous",
        policy(allow("s3:*", principal={"AWS": ["arn:aws:iam::123:user/app"]})),
        "none",
    ),
    ("listing alone is neither read nor write", policy(allow("s3:ListBucket")), "none"),
    (
        "a prefix of the bucket is enough: part of the bucket is public",
        policy(allow("s3:GetObject", "arn:aws:s3:::uploads/public/*")),
        "read",
    ),
    ("a resource of every bucket counts", policy(allow("s3:GetObject", "*")), "read"),
    (
        "the bucket itself is not its objects",
        policy(allow("s3:GetObject", "arn:aws:s3:::uploads")),
        "none",
    ),
    (
        "another bucket's objects do not count",
        policy(allow("s3:GetObject", "arn:aws:s3:::uploads-old/*")),
        "none",
    ),
    (
        "a bucket wildcard reaching this bucket counts",
        policy(allow("s3:GetObject", "arn:aws:s3:::upl*")),
        "read",
    ),
    (
        "a bucket wildcard that cannot reach this bucket does not count",
        policy(allow("s3:GetObject", "arn:aws:s3:::backup*")),
        "none",
    ),
    ("every bucket's ARN counts", policy(allow("s3:GetObject", "arn:aws:s3:::*")), "read"),
    (
        "a deny on every bucket's objects takes the access away",
        policy(allow("s3:*"), {**allow("s3:*", "arn:aws:s3:::*/*"), "Effect": "Deny"}),
        "none",
    ),
    (
        "a deny through a bucket wildcard takes the access away",
        policy(
            allow("s3:GetObject"), {**allow("s3:GetObject", "arn:aws:s3:::up*"), "Effect": "Deny"}
        ),
        "none",
    ),
    (
        "a conditional deny leaves the grant standing",
        policy(
            allow("s3:GetObject"),
            {
                **allow("s3:GetObject"),
                "Effect": "Deny",
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ),
        "read",
    ),
    (
        "a conditional grant still lets some anonymous callers in",
        policy(
            {**allow("s3:GetObject"), "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}
        ),
        "read",
    ),
    (
        "an unconditional deny of writing and deleting every object leaves only reading",
        policy(allow("s3:*"), {**allow(["s3:PutObject", "s3:DeleteObject"]), "Effect": "Deny"}),
        "read",
    ),
    (
        "a deny of PutObject alone leaves anyone free to delete: still write",
        policy(allow("s3:*"), {**allow("s3:PutObject"), "Effect": "Deny"}),
        "readwrite",
    ),
    ("DeleteObject to everyone is write", policy(allow("s3:DeleteObject")), "write"),
    (
        "a deny on the very prefix an allow opens takes that access away",
        policy(
            allow("s3:GetObject", "arn:aws:s3:::uploads/public/*"),
            {**allow("s3:GetObject", "arn:aws:s3:::uploads/public/*"), "Effect": "Deny"},
        ),
        "none",
    ),
    (
        "a deny on a wider prefix than the allow's takes that access away",
        policy(
            allow("s3:GetObject", "arn:aws:s3:::uploads/public/reports/*"),
            {**allow("s3:GetObject", "arn:aws:s3:::uploads/public/*"), "Effect": "Deny"},
        ),
        "none",
    ),
    (
        "a deny on a narrower prefix than the allow's leaves the rest open",
        policy(
            allow("s3:GetObject", "arn:aws:s3:::uploads/public/*"),
            {**allow("s3:GetObject", "arn:aws:s3:::uploads/public/a?c/*"), "Effect": "Deny"},
        ),
        "read",
    ),
    (
        "a grant only to callers of one organization is not anonymous",
        policy(
            {
                **allow("s3:GetObject"),
                "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}},
            }
        ),
        "none",
    ),
    (
        "a grant only to some accounts is not anonymous",
        policy(
            {
                **allow("s3:*"),
                "Condition": {"StringEquals": {"aws:PrincipalAccount": ["111122223333"]}},
            }
        ),
        "none",
    ),
    (
        "a grant to an organization or no one (IfExists) still lets anonymous callers in",
        policy(
            {
                **allow("s3:GetObject"),
                "Condition": {"StringEqualsIfExists": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}},
            }
        ),
        "read",
    ),
    (
        "a deny to everyone outside the organization denies anonymous callers",
        policy(
            allow("s3:GetObject"),
            {
                **allow("s3:*"),
                "Effect": "Deny",
                "Condition": {"StringNotEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}},
            },
        ),
        "none",
    ),
    (
        "a deny to unsigned callers (Null) denies anonymous callers",
        policy(
            allow("s3:GetObject"),
            {
                **allow("s3:*"),
                "Effect": "Deny",
                "Condition": {"Null": {"aws:PrincipalArn": "true"}},
            },
        ),
        "none",
    ),
    (
        "a resource ARN is case-sensitive",
        policy(allow("s3:GetObject", "arn:aws:s3:::Uploads/*")),
        "none",
    ),
    (
        "a deny on part of the bucket leaves the rest public",
        policy(
            allow("s3:GetObject"),
            {**allow("s3:GetObject", "arn:aws:s3:::uploads/private/*"), "Effect": "Deny"},
        ),
        "read",
    ),
    (
        "NotAction grants everything it does not name",
        policy(
            {
                "Effect": "Allow",
                "Principal": "*",
                "NotAction": ["s3:PutObject", "s3:DeleteObject"],
                "Resource": "*",
            }
        ),
        "read",
    ),
    (
        "NotAction PutObject still grants deleting",
        policy({"Effect": "Allow", "Principal": "*", "NotAction": "s3:PutObject", "Resource": "*"}),
        "readwrite",
    ),
    (
        "NotPrincipal grants everyone else, anonymous callers included",
        policy(
            {
                "Effect": "Allow",
                "NotPrincipal": {"AWS": "arn:aws:iam::123:root"},
                "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::uploads/*",
            }
        ),
        "read",
    ),
    (
        "a single statement object is read too",
        json.dumps({"Statement": allow("s3:GetObject")}),
        "read",
    ),
]


@pytest.mark.parametrize(
    ("document", "access"), [case[1:] for case in POLICIES], ids=[case[0] for case in POLICIES]
)
def test_anonymous_access_from_a_bucket_policy(document: str, access: str) -> None:
    assert anonymous_access(document, "uploads") == access


def test_a_policy_that_is_not_json_is_refused() -> None:
    with pytest.raises(ValueError):
        anonymous_access("{not json", "uploads")
