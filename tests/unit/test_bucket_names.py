"""S3 bucket names and top-level durations in a claim: refused in words a user understands, naming the field.

Rules from Amazon S3's "General purpose bucket naming rules"
(docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html); the
valid examples are that page's own. The same pattern goes into the CRD, where
the API server refuses it (tests/e2e/test_crd.py).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from datarch.claims import S3_BUCKET_PATTERN, parse_claim
from datarch.crd import crd_yaml
from datarch.errors import ClaimInvalid


def _claim(bucket: str, artifact_bucket: str = "backups") -> dict[str, Any]:
    return {
        "apiVersion": "datarch.io/v1alpha1",
        "kind": "DataArchitectureClaim",
        "metadata": {"name": "platform"},
        "spec": {
            "stores": [
                {"name": "main", "kind": "postgres"},
                {"name": "objects", "kind": "s3", "s3": {"buckets": [{"name": bucket}]}},
            ],
            "backups": [
                {
                    "name": "nightly",
                    "store": "main",
                    "cronJob": {"name": "pg-backup"},
                    "artifact": {"store": "objects", "bucket": artifact_bucket},
                }
            ],
        },
    }


VALID = [
    "docexamplebucket1",
    "log-delivery-march-2020",
    "my-hosted-content",
    "docexamplewebsite.com",
    "www.docexamplewebsite.com",
    "my.example.s3.bucket",
    "abc",
    "a" * 63,
]
INVALID = [
    "../../etc",
    "a b",
    "UPPER_case",
    "doc_example_bucket",
    "DocExampleBucket",
    "doc-example-bucket-",
    "ab",
    "a" * 64,
    "a..b",
    "a.-b",
    "a-.b",
    ".hidden",
    "192.168.5.4",
    "xn--bucket",
    "my-bucket-s3alias",
    "my-bucket--ol-s3",
    "",
]


@pytest.mark.parametrize("name", VALID)
def test_a_bucket_named_by_s3s_rules_is_accepted(name: str) -> None:
    claim = parse_claim(_claim(name, name))
    assert claim.spec.stores[1].s3 is not None


@pytest.mark.parametrize("name", INVALID)
def test_a_bucket_name_s3_would_refuse_is_invalid_naming_the_field(name: str) -> None:
    with pytest.raises(ClaimInvalid, match=r"spec\.stores\[1\]\.s3\.buckets\[0\]\.name: "):
        parse_claim(_claim(name))
    with pytest.raises(ClaimInvalid, match=r"spec\.backups\[0\]\.artifact\.bucket: "):
        parse_claim(_claim("uploads", name))


@pytest.mark.parametrize("name", VALID + INVALID)
def test_the_crd_pattern_agrees_with_the_cli_except_for_what_re2_cannot_say(name: str) -> None:
    """The API server checks the pattern and the length only (no lookaround in RE2, no CEL
    in an unbounded list): IP-shaped and reserved names are refused by the models alone."""
    cel_free = re.fullmatch(S3_BUCKET_PATTERN.strip("^$"), name) and 3 <= len(name) <= 63
    refused_by_models_only = re.fullmatch(r"[0-9]+(\.[0-9]+){3}", name) or name in {
        "xn--bucket",
        "my-bucket-s3alias",
        "my-bucket--ol-s3",
    }
    assert bool(cel_free) == (name in VALID or bool(refused_by_models_only))


def test_the_crd_carries_the_bucket_pattern_for_buckets_and_artifacts() -> None:
    assert crd_yaml().count(S3_BUCKET_PATTERN) == 2


@pytest.mark.parametrize("interval", ["9999999999h", "3000000h", "1h1h", "99999999999999s"])
def test_an_absurd_interval_is_refused_in_words_a_user_understands(interval: str) -> None:
    """The API server said "type conversion error from 'string' to
    'google.protobuf.Duration'"; the CLI and the CRD now say the same plain thing."""
    claim = _claim("uploads")
    claim["spec"]["interval"] = interval
    with pytest.raises(ClaimInvalid, match=r"spec\.interval: .*must be at most 999999h"):
        parse_claim(claim)


@pytest.mark.parametrize("interval", ["5m", "1h30m", "168h", "999999h", "86400s", "1.5h"])
def test_ordinary_intervals_stay_valid(interval: str) -> None:
    claim = _claim("uploads")
    claim["spec"]["interval"] = interval
    assert parse_claim(claim).spec.interval == interval
