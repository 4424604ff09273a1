"""Server version constraints, and resolving secretRefs outside a cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from datarch.comparison.versions import compare_version, version_satisfies
from datarch.errors import SecretUnavailable
from datarch.findings import Finding, FindingKind, Severity
from datarch.secrets import LocalSecrets, environment_name


@pytest.mark.parametrize(
    ("constraint", "observed", "holds"),
    [
        (">=15", "15.18", True),
        (">=15", "14.11", False),
        (">=15", "15.18 (Debian 15.18-0+deb12u1)", True),
        (">=7.0,<8", "7.0.15", True),
        (">=7.0,<8", "8.0.0", False),
        ("==7", "7.2.4", True),
        ("==7.2", "7.20.1", False),
        ("2.10.*", "2.10.14", True),
        ("!=2.9", "2.9.1", False),
        ("~=15.2", "15.9", True),
        ("~=15.2", "16.0", False),
        ("<1.25", "v1.24.2", True),
        (">4.4", "4.4", False),
    ],
)
def test_version_constraints_follow_their_operators(
    constraint: str, observed: str, holds: bool
) -> None:
    assert version_satisfies(constraint, observed) is holds


def test_an_unmet_version_constraint_is_a_warning_with_both_versions() -> None:
    assert compare_version(">=16", "15.18") == [
        Finding("version", FindingKind.DIFFERENT, Severity.WARNING, ">=16", "15.18")
    ]


def test_no_version_constraint_means_no_finding() -> None:
    assert compare_version(None, "1.0") == []


def test_a_nonsense_constraint_is_reported_not_silently_passed() -> None:
    [finding] = compare_version("newest", "15.18")
    assert "cannot be checked" in finding.message


def test_secret_environment_names_are_upper_case_with_underscores() -> None:
    assert environment_name("pg-readonly", "dsn") == "DATARCH_SECRET_PG_READONLY_DSN"
    assert environment_name("s3.ro", "accessKey") == "DATARCH_SECRET_S3_RO_ACCESSKEY"


async def test_local_secrets_read_a_directory_laid_out_like_a_mounted_secret(
    tmp_path: Path,
) -> None:
    (tmp_path / "pg-readonly").mkdir()
    (tmp_path / "pg-readonly" / "dsn").write_text("postgresql://r:pw@db/app\n")
    value = await LocalSecrets(tmp_path).read("pg-readonly", "dsn")
    assert value.get_secret_value() == "postgresql://r:pw@db/app"
    assert "pw" not in repr(value)


async def test_a_missing_key_file_names_the_secret_and_key_but_no_value(tmp_path: Path) -> None:
    (tmp_path / "pg").mkdir()
    with pytest.raises(SecretUnavailable, match=r"secret pg: no key 'dsn'"):
        await LocalSecrets(tmp_path).read("pg", "dsn")


async def test_local_secrets_fall_back_to_the_environment() -> None:
    secrets = LocalSecrets(environ={"DATARCH_SECRET_PG_DSN": "postgresql://x"})
    assert (await secrets.read("pg", "dsn")).get_secret_value() == "postgresql://x"
    with pytest.raises(SecretUnavailable, match="DATARCH_SECRET_MISSING_DSN is not set"):
        await secrets.read("missing", "dsn")
