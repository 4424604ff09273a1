"""Verification's own rules, with no store: what an unexpected probe error may say, and
what a failed probe of a store documented as absent means."""

from __future__ import annotations

import asyncio

from pydantic import SecretStr

from datarch.claims import Store
from datarch.errors import AccessDenied, StoreError, StoreTimeout, StoreUnreachable
from datarch.findings import FindingKind, Severity
from datarch.probes.base import Target
from datarch.secrets import LocalSecrets
from datarch.verification import StoreResult, _redacted, absence_result, verify_store


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


# --- a store documented as absent: every branch of what its probe's failure means ------

ABSENT = Store(name="cache", kind="redis", absent=True)
BASE = StoreResult(name="cache", kind="redis", reachable=False)


def test_an_absent_store_is_absent_when_every_address_refused() -> None:
    result = absence_result(BASE, ABSENT, StoreUnreachable("connection refused"), False, "h:1")
    assert result.checked
    assert result.findings == ()
    assert result.message == "absent as documented (connection refused)"


def test_an_absent_store_that_refuses_the_credentials_is_there() -> None:
    result = absence_result(BASE, ABSENT, AccessDenied("wrong password"), None, "h:1")
    assert result.checked
    assert result.reachable
    assert [(f.kind, f.severity) for f in result.findings] == [
        (FindingKind.UNEXPECTED, Severity.CRITICAL)
    ]
    assert "wrong password" in result.findings[0].message


def test_an_absent_store_where_something_else_answered_is_there() -> None:
    error = StoreUnreachable("no JetStream API answers")
    result = absence_result(BASE, ABSENT, error, True, "127.0.0.1:4222")
    assert result.checked
    assert len(result.findings) == 1
    assert "something answered at 127.0.0.1:4222" in result.findings[0].message


def test_a_silent_absent_store_could_not_be_checked() -> None:
    result = absence_result(BASE, ABSENT, StoreTimeout("no answer within 2s"), None, "h:1")
    assert not result.checked
    assert result.error_reason == "StoreTimeout"
    assert result.findings == ()


def test_a_timeout_is_never_absence_even_if_a_dial_was_refused() -> None:
    result = absence_result(BASE, ABSENT, StoreTimeout("no answer within 2s"), False, "h:1")
    assert not result.checked


def test_an_absent_store_whose_dial_could_not_tell_could_not_be_checked() -> None:
    result = absence_result(BASE, ABSENT, StoreUnreachable("TLS handshake failed"), None, "h:1")
    assert not result.checked
    assert result.error_reason == "StoreUnreachable"


def test_an_absent_store_with_another_error_could_not_be_checked() -> None:
    result = absence_result(BASE, ABSENT, StoreError("odd"), None, "h:1")
    assert result.error_reason == "StoreError"


def test_an_absent_store_with_no_address_is_absent_without_a_dial() -> None:
    result = asyncio.run(verify_store(ABSENT, 1.0, LocalSecrets(environ={})))
    assert result.checked
    assert result.message == "absent as documented (the claim gives no address to dial)"
