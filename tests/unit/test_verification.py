"""Verification's own rules, with no store: what an unexpected probe error may say."""

from __future__ import annotations

from pydantic import SecretStr

from datarch.claims import Store
from datarch.probes.base import Target
from datarch.verification import _redacted


def test_an_unexpected_error_never_quotes_the_dsn_or_its_password() -> None:
    dsn = "postgresql://reader:s3cr3t-pw@db:5432/app"
    target = Target(Store(name="main", kind="postgres"), 5.0, secret=SecretStr(dsn))
    text = _redacted(f"ValueError: bad option in {dsn}; password s3cr3t-pw rejected", target)
    assert "s3cr3t-pw" not in text
    assert dsn not in text
    assert text.startswith("ValueError: bad option in ***")


def test_an_unexpected_error_never_quotes_s3_keys() -> None:
    target = Target(
        Store(name="objects", kind="s3"),
        5.0,
        access_key=SecretStr("AKIAEXAMPLE"),
        secret_access_key=SecretStr("wJalrXUtnFEMI"),
    )
    assert _redacted("signed with AKIAEXAMPLE/wJalrXUtnFEMI", target) == "signed with ***/***"
