"""One verification pass of one claim: resolve credentials, probe every store concurrently
with its timeout, compare, and return a Verdict. Shared by the CLI and the operator.

It never raises for a store: an unreadable store becomes a StoreResult with a
reason, so "could not check" is carried to the end and never reads as "fine".
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from datarch.claims import ClaimSpec, Store, StoreKind
from datarch.comparison.mongodb import compare_mongodb
from datarch.comparison.nats import compare_nats
from datarch.comparison.postgres import compare_postgres
from datarch.comparison.redis import compare_redis
from datarch.comparison.s3 import compare_s3
from datarch.comparison.versions import compare_version
from datarch.errors import (
    AccessDenied,
    InvalidConnection,
    SecretUnavailable,
    StoreError,
    StoreTimeout,
)
from datarch.findings import (
    Finding,
    FindingKind,
    Outcome,
    Severity,
    Unchecked,
    apply_overrides,
    sort_findings,
)
from datarch.observations import Observation
from datarch.probes.addresses import check_connection, endpoints
from datarch.probes.base import ClientPool, Target, within
from datarch.secrets import S3_SECRET_KEY, SecretResolver, secret_key

if TYPE_CHECKING:  # backups (and croniter) load only for claims that document backups
    from datarch.backups import BackupResult

Comparer = Callable[[Store, Any], Sequence[Outcome]]
COMPARERS: dict[StoreKind, Comparer] = {
    "postgres": compare_postgres,
    "mongodb": compare_mongodb,
    "nats": compare_nats,
    "s3": compare_s3,
    "redis": compare_redis,
}


async def observe(target: Target, clients: ClientPool | None) -> Observation:
    """Dispatch to the kind's probe, importing only the drivers a claim needs.

    Loading every driver costs the CLI more than reading a large catalog does.
    """
    kind = target.store.kind
    if kind == "postgres":
        from datarch.probes import postgres  # noqa: PLC0415

        return await postgres.observe(target, clients)
    if kind == "mongodb":
        from datarch.probes import mongodb  # noqa: PLC0415

        return await mongodb.observe(target, clients)
    if kind == "nats":
        from datarch.probes import nats  # noqa: PLC0415

        return await nats.observe(target, clients)
    if kind == "s3":
        from datarch.probes import s3  # noqa: PLC0415

        return await s3.observe(target, clients)
    from datarch.probes import redis  # noqa: PLC0415

    return await redis.observe(target, clients)


# Reasons a store result carries when it could not be read (see reporting.status for conditions).
REASON_SECRET_UNAVAILABLE = "SecretUnavailable"
REASON_INTERNAL_ERROR = "InternalError"


@dataclass(frozen=True, slots=True)
class StoreResult:
    """What one store gave in one pass: findings when it could be read, a reason when not."""

    name: str
    kind: StoreKind
    reachable: bool
    findings: tuple[Finding, ...] = ()
    version: str | None = None
    observed_at: datetime | None = None
    error_reason: str | None = None  # CamelCase, set when the store could not be checked
    message: str = ""
    observation: Observation | None = field(default=None, compare=False, repr=False)
    duration_seconds: float = 0.0
    # Documented fields the probe could not read: the store was read, its check is not whole.
    unchecked: tuple[Unchecked, ...] = ()

    @property
    def checked(self) -> bool:
        """Checked means compared: an absent store that is not there counts as checked."""
        return self.error_reason is None

    @property
    def complete(self) -> bool:
        """Compared, and every documented field read: only then can no finding mean "fine"."""
        return self.checked and not self.unchecked


@dataclass(frozen=True, slots=True)
class Verdict:
    """The result of one verification pass of one claim."""

    stores: tuple[StoreResult, ...]
    backups: tuple[BackupResult, ...] = ()
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    duration_seconds: float = 0.0

    @property
    def findings(self) -> list[Finding]:
        return sort_findings(f for store in self.stores for f in store.findings)

    @property
    def complete(self) -> bool:
        """Every store was read (or proved absent), every documented field with it."""
        return all(store.complete for store in self.stores)

    @property
    def conforming(self) -> bool | None:
        """True: no findings; False: findings; None: some store could not be checked."""
        if self.findings:
            return False
        return True if self.complete else None

    @property
    def result(self) -> str:
        """ok | findings | error, for the verifications counter and the CLI's exit code.

        A store or backup that could not be checked makes the whole pass an error:
        an incomplete check is never reported as merely drifted.
        """
        if not self.complete or not all(b.checked for b in self.backups):
            return "error"
        if self.findings or not all(b.fresh for b in self.backups):
            return "findings"
        return "ok"


async def resolve_target(store: Store, timeout: float, secrets: SecretResolver) -> Target:
    connection = store.connection
    url = connection.url if connection else None
    if connection is None or connection.secret_ref is None:
        return Target(store=store, timeout=timeout, url=url)
    ref = connection.secret_ref
    key = secret_key(ref, store.kind)
    if store.kind == "s3":
        access_key = await secrets.read(ref.name, key)
        secret_access_key = await secrets.read(ref.name, S3_SECRET_KEY)
        return Target(
            store, timeout, url=url, access_key=access_key, secret_access_key=secret_access_key
        )
    return Target(store, timeout, url=url, secret=await secrets.read(ref.name, key), secret_key=key)


def _has_address(store: Store) -> bool:
    connection = store.connection
    return connection is not None and bool(
        connection.secret_ref or connection.url or connection.endpoint
    )


async def verify_store(
    store: Store,
    timeout: float,
    secrets: SecretResolver,
    clients: ClientPool | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> StoreResult:
    """Probe and compare one store; every failure becomes a StoreResult with a reason."""
    started = time.perf_counter()
    try:
        result = await _verify_store(store, timeout, secrets, clients, now)
    except Exception as error:  # never one store's fault sinking the claim's other stores
        cause = _USERINFO.sub("://***@", f"{type(error).__name__}: {error}")
        result = StoreResult(
            name=store.name,
            kind=store.kind,
            reachable=False,
            error_reason=REASON_INTERNAL_ERROR,
            message=f"while verifying {store.kind} store {store.name}: {cause}",
        )
    return replace(result, duration_seconds=time.perf_counter() - started)


async def _verify_store(
    store: Store,
    timeout: float,
    secrets: SecretResolver,
    clients: ClientPool | None,
    now: Callable[[], datetime],
) -> StoreResult:
    base = StoreResult(name=store.name, kind=store.kind, reachable=False)
    if store.absent and not _has_address(store):
        return replace(base, message="absent as documented (the claim gives no address to dial)")
    try:
        target = await resolve_target(store, timeout, secrets)
    except SecretUnavailable as error:
        return replace(base, error_reason=REASON_SECRET_UNAVAILABLE, message=str(error))
    try:
        check_connection(target)
    except InvalidConnection as error:
        return replace(base, error_reason=error.reason, message=str(error))
    try:
        observed = await within(observe(target, clients), timeout)
    except TimeoutError:
        timed_out = StoreTimeout(
            f"while reading {store.kind} store {store.name}: no answer within {timeout:g}s"
        )
        return await _unreadable(base, store, timed_out, clients, target)
    except StoreError as error:
        return await _unreadable(base, store, error, clients, target)
    except Exception as error:  # a probe bug must not pass for a healthy store
        cause = _redacted(f"{type(error).__name__}: {error}", target)
        return replace(
            base,
            error_reason=REASON_INTERNAL_ERROR,
            message=f"while reading {store.kind} store {store.name}: {cause}",
        )
    version = getattr(observed, "version", None)
    observed_at = now()
    if store.absent:
        finding = Finding(
            "",
            FindingKind.UNEXPECTED,
            Severity.CRITICAL,
            "absent",
            f"reachable, version {version}",
            f"documented as absent, but a {store.kind} server answered (version {version})",
        )
        outcomes: Sequence[Outcome] = [finding]
    else:
        outcomes = [
            *compare_version(store.version, version),
            *COMPARERS[store.kind](store, observed),
        ]
    findings = apply_overrides((o for o in outcomes if isinstance(o, Finding)), store.overrides())
    prefixed = tuple(
        replace(f, path=f"{store.name}/{f.path}" if f.path else store.name)
        for f in sort_findings(findings)
    )
    unchecked = tuple(
        replace(u, path=f"{store.name}/{u.path}" if u.path else store.name)
        for u in sorted((o for o in outcomes if isinstance(o, Unchecked)), key=lambda u: u.path)
    )
    return replace(
        base,
        reachable=True,
        findings=prefixed,
        unchecked=unchecked,
        version=version,
        observed_at=observed_at,
        observation=observed,
    )


def _redacted(text: str, target: Target) -> str:
    """An unexpected error's text without the credentials it may quote (a DSN, a key).

    Total: the text came from an error, possibly about this very value, so nothing
    here may raise on a malformed one.
    """
    for secret in (target.secret, target.access_key, target.secret_access_key):
        if secret is None or not secret.get_secret_value():
            continue
        value = secret.get_secret_value()
        text = text.replace(value, "***")
        for password in _passwords(value):
            text = text.replace(password, "***")
    # Whatever a driver quoted of a URL: its user information, parsed or not.
    return _USERINFO.sub("://***@", text)


_USERINFO = re.compile(r"://[^\s/@]*@")


def _passwords(value: str) -> list[str]:
    """The passwords of every URL in `value` (a list of servers included), however malformed."""
    found = []
    for part in value.split(","):
        userinfo = part.partition("://")[2].rpartition("@")[0]
        password = userinfo.partition(":")[2]
        if password:
            found.append(password)
            with contextlib.suppress(ValueError):
                found.append(unquote(password, errors="strict"))
    return found


async def _unreadable(
    base: StoreResult, store: Store, error: StoreError, clients: ClientPool | None, target: Target
) -> StoreResult:
    if clients is not None:
        await clients.discard(target.pool_key)  # a failed client is never reused
    if not store.absent:
        return replace(base, error_reason=error.reason, message=str(error))
    answered, where = None, "its address"
    if not isinstance(error, AccessDenied | StoreTimeout):
        # The probe failed without a timeout: refused, or something answered that is not
        # the kind's server. Only a dial tells them apart.
        answered, where = await _answered(target)
    return absence_result(base, store, error, answered, where)


def absence_result(
    base: StoreResult, store: Store, error: StoreError, answered: bool | None, where: str
) -> StoreResult:
    """A store documented as absent whose probe failed: absent only when nothing answered.

    `answered`: True when something accepted a connection at `where`, False when every
    address refused or did not resolve, None when no dial could tell.
    """
    if isinstance(error, AccessDenied) or answered:
        # Refusing credentials, or answering in some other tongue, takes a server.
        finding = Finding(
            store.name,
            FindingKind.UNEXPECTED,
            Severity.CRITICAL,
            "absent",
            "answered",
            f"documented as absent, but something answered at {where} ({error})",
        )
        return replace(base, reachable=True, findings=(finding,))
    if answered is False and not isinstance(error, StoreTimeout):
        # The docs say nothing is there, and nothing answered: the documented state.
        return replace(base, message=f"absent as documented ({error})")
    # A silent server is not an absent one: it could not be checked.
    return replace(base, error_reason=error.reason, message=str(error))


async def _answered(target: Target) -> tuple[bool | None, str]:
    """Whether anything accepts a connection at the store's addresses, within its timeout."""
    found = endpoints(target)
    if not found:
        return None, "its address"
    where = ", ".join(str(e) for e in found)
    try:
        async with asyncio.timeout(target.timeout):
            for endpoint in found:
                with contextlib.suppress(OSError):  # refused, unresolvable, no route
                    if endpoint.socket_path:
                        _, writer = await asyncio.open_unix_connection(endpoint.socket_path)
                    else:
                        _, writer = await asyncio.open_connection(endpoint.host, endpoint.port)
                    writer.close()
                    return True, str(endpoint)
    except TimeoutError:
        return None, where
    return False, where


BackupChecker = Callable[[ClaimSpec, Sequence[StoreResult]], Awaitable[Sequence["BackupResult"]]]


def backups_from_cluster(
    namespace: str,
    batch_v1: Any,
    secrets: SecretResolver,
    clients: ClientPool | None = None,
    api_timeout: float | None = None,
) -> BackupChecker:
    """Backup freshness read through the Kubernetes API (`batch_v1`: a BatchV1Api), each
    artifact with its store's own credentials; stores this pass could not read are not retried."""

    async def check(spec: ClaimSpec, stores: Sequence[StoreResult]) -> Sequence[BackupResult]:
        from datarch.backups import check_backups  # noqa: PLC0415  (croniter: only with backups)

        async def target(store: Store) -> Target:
            return await resolve_target(store, spec.timeout_seconds, secrets)

        return await check_backups(
            spec,
            namespace,
            batch_v1,
            target,
            clients=clients,
            unreadable_stores={s.name for s in stores if not s.checked},
            api_timeout=api_timeout,
        )

    return check


async def verify(
    spec: ClaimSpec,
    secrets: SecretResolver,
    clients: ClientPool | None = None,
    backups: BackupChecker | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Verdict:
    """One pass over every store of a claim, concurrently, each within the claim's timeout."""
    started_at = now()
    started = time.perf_counter()
    timeout = spec.timeout_seconds
    results = await asyncio.gather(
        *(verify_store(store, timeout, secrets, clients, now) for store in spec.stores)
    )
    backup_results = tuple(await backups(spec, results)) if backups and spec.backups else ()
    return Verdict(
        stores=tuple(results),
        backups=backup_results,
        started_at=started_at,
        duration_seconds=time.perf_counter() - started,
    )
