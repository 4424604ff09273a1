"""S3 probe: bucket configuration and backup artifacts, read through the minio client.

The only importer of minio and urllib3. It reads (HEAD, GET, list) and never
writes; it derives anonymous access from the bucket policy but never judges
whether that access is right, which is comparison's job.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from xml.etree import ElementTree

import urllib3
from minio import Minio
from minio.error import InvalidResponseError, S3Error, ServerError
from minio.helpers import check_bucket_name

from datarch.errors import AccessDenied, StoreError, StoreTimeout, StoreUnreachable
from datarch.observations import (
    ObservedS3,
    S3BucketObs,
    S3LifecycleRuleObs,
    S3ObjectLockObs,
    S3PrefixObs,
    Unreadable,
)
from datarch.probes.base import ClientPool, Target, lease

T = TypeVar("T")

# Answers that mean "this bucket has no such configuration": observations, not errors.
_NOT_CONFIGURED = frozenset(
    {
        "NoSuchLifecycleConfiguration",
        "NoSuchBucketPolicy",
        "ServerSideEncryptionConfigurationNotFoundError",
        "NoSuchTagSet",
        "ObjectLockConfigurationNotFoundError",
        "NoSuchObjectLockConfiguration",
    }
)
# Answers that mean "the server does not do this": the facet cannot be read, which
# comparison reports as unchecked instead of failing the whole store over it.
_NOT_IMPLEMENTED = frozenset({"NotImplemented", "MethodNotAllowed"})
_DENIED = frozenset(
    {
        "AccessDenied",
        "AllAccessDisabled",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidToken",
        "ExpiredToken",
        "AccountProblem",
    }
)


@dataclass(frozen=True, slots=True)
class _Client:
    """The minio client and the pool it sends through, so closing releases its sockets."""

    minio: Minio
    http: urllib3.PoolManager
    endpoint: str


class _Reading:
    """One pass over one store: the deadline every call checks and the step last started.

    Calls run in worker threads (minio is synchronous); a thread cannot be
    cancelled, so each one stops itself at the deadline instead of reading on.
    """

    def __init__(self, client: _Client, target: Target) -> None:
        self.client = client
        self.timeout = target.timeout
        self.deadline = time.monotonic() + target.timeout
        self.step = f"connecting to S3 at {client.endpoint}"
        # Shorter values would match ordinary words of a message; real keys are 16+ characters.
        self._secrets = [
            s.get_secret_value()
            for s in (target.access_key, target.secret_access_key)
            if s is not None and len(s.get_secret_value()) >= 6
        ]

    def call(
        self, step: str, read: Callable[[], T], not_configured: T, action: str | None = None
    ) -> T | _Unreadable:
        """One request: `not_configured` when the bucket lacks the configuration.

        `action`, the IAM action of a facet's read, makes a refusal that facet's
        alone (unreadable, naming the action to grant) instead of the store's.
        """
        if time.monotonic() > self.deadline:
            raise StoreTimeout(f"while {step}: no answer within {self.timeout:g}s")
        self.step = step
        try:
            return read()
        except S3Error as error:
            if error.code in _NOT_CONFIGURED:
                return not_configured
            if error.code in _NOT_IMPLEMENTED:
                return _Unreadable(f"the server does not implement it ({error.code})")
            if error.code == "AccessDenied" and action is not None:
                # The bucket answered (its existence check passed): only this
                # facet is refused, so only this facet goes unchecked.
                return _Unreadable(f"{action} is refused to the probe's credentials", action)
            raise self.failure(step, error) from error
        except Exception as error:
            raise self.failure(step, error) from error

    def failure(self, step: str, error: Exception) -> StoreError:
        """The typed error for a failed call, worded "while <step>: <cause>" without a credential."""
        if isinstance(error, StoreError):
            return error
        if isinstance(error, S3Error):
            cause = f"{error.code}: {error.message}" if error.message else str(error.code)
            kind: type[StoreError] = AccessDenied if error.code in _DENIED else StoreUnreachable
            return kind(f"while {step}: {self._scrub(cause)}")
        if isinstance(error, ServerError):
            return StoreUnreachable(f"while {step}: HTTP status {error.status_code}")
        if isinstance(error, InvalidResponseError):
            return StoreUnreachable(
                f"while {step}: the answer is not S3's ({self._scrub(str(error))[:200]})"
            )
        # NewConnectionError derives from ConnectTimeoutError, yet a refused
        # connection is an unreachable store, not a slow one.
        if isinstance(error, urllib3.exceptions.NewConnectionError):
            return StoreUnreachable(f"while {step}: {self._scrub(_reason(error))}")
        if isinstance(error, urllib3.exceptions.TimeoutError | TimeoutError):
            return StoreTimeout(f"while {step}: no answer within {self.timeout:g}s")
        return StoreUnreachable(f"while {step}: {self._scrub(_reason(error))}")

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


@dataclass(frozen=True, slots=True)
class _Unreadable:
    reason: str
    grant: str | None = None


def _reason(error: Exception) -> str:
    """The innermost cause: urllib3 nests the socket error under its own wording."""
    reason = getattr(error, "reason", None)
    if isinstance(reason, Exception):
        return _reason(reason)
    return str(error) or type(error).__name__


# --- clients ---------------------------------------------------------------------


def _endpoint(target: Target) -> tuple[str, bool]:
    connection = target.store.connection
    endpoint = (connection.endpoint if connection else None) or target.url
    if not endpoint:
        raise StoreUnreachable(
            f"while connecting to S3 store {target.store.name}: no endpoint in the claim"
        )
    secure = connection.secure if connection else True
    # An endpoint written as a URL carries its own scheme, which wins over `secure`.
    for scheme, tls in (("https://", True), ("http://", False)):
        if endpoint.startswith(scheme):
            return endpoint[len(scheme) :].rstrip("/"), tls
    return endpoint.rstrip("/"), secure


async def _open(target: Target) -> _Client:
    endpoint, secure = _endpoint(target)
    # minio's default pool retries five times and waits five minutes per
    # read; the claim's timeout must bound every request instead.
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=target.timeout, read=target.timeout),
        retries=False,
        maxsize=8,
        cert_reqs="CERT_REQUIRED",
    )
    try:
        minio = Minio(
            endpoint,
            access_key=target.access_key.get_secret_value() if target.access_key else None,
            secret_key=target.secret_access_key.get_secret_value()
            if target.secret_access_key
            else None,
            secure=secure,
            region=target.store.connection.region if target.store.connection else None,
            http_client=http,
        )
    except ValueError as error:
        http.clear()
        raise StoreUnreachable(f"while connecting to S3 at {endpoint}: {error}") from error
    return _Client(minio, http, endpoint)


async def _close(client: _Client) -> None:
    client.http.clear()


async def _with_client(
    target: Target,
    clients: ClientPool | None,
    read: Callable[[_Reading], Awaitable[T]],
) -> T:
    """Run `read` with a pooled (or one-off) client, within the claim's timeout."""
    async with lease(clients, target.pool_key, lambda: _open(target), _close) as client:
        reading = _Reading(client, target)
        try:
            async with asyncio.timeout(target.timeout):
                return await read(reading)
        except TimeoutError as error:
            raise StoreTimeout(
                f"while {reading.step}: no answer within {target.timeout:g}s"
            ) from error


# --- buckets ---------------------------------------------------------------------


async def observe(target: Target, clients: ClientPool | None = None) -> ObservedS3:
    """Every documented bucket's configuration, and in strict mode the names of all buckets."""
    expectations = target.store.s3
    documented = [bucket.name for bucket in (expectations.buckets or [])] if expectations else []
    # A name the client refuses is left unread (comparison: could not check) rather
    # than failing the store's other buckets with it.
    names = [name for name in documented if _valid_bucket_name(name)]

    async def read(reading: _Reading) -> ObservedS3:
        async def every_bucket() -> tuple[str, ...]:
            if target.store.strict:
                return await asyncio.to_thread(_list_buckets, reading)
            if not names:  # nothing else would reach the server: prove it answers
                await asyncio.to_thread(_prove_contact, reading)
            return ()

        buckets, all_buckets = await asyncio.gather(
            asyncio.gather(*(asyncio.to_thread(_read_bucket, reading, name) for name in names)),
            every_bucket(),
        )
        return ObservedS3(buckets=tuple(buckets), all_buckets=all_buckets)

    return await _with_client(target, clients, read)


def _valid_bucket_name(name: str) -> bool:
    try:
        check_bucket_name(name)
    except ValueError:
        return False
    return True


def _list_buckets(reading: _Reading) -> tuple[str, ...]:
    listed: list[Any] | _Unreadable = reading.call(
        "listing buckets", reading.client.minio.list_buckets, []
    )
    if isinstance(listed, _Unreadable):
        raise StoreUnreachable(f"while listing buckets: {listed.reason}")
    return tuple(sorted(bucket.name for bucket in listed))


def _prove_contact(reading: _Reading) -> None:
    """One signed request, so a store with no documented bucket still proves it was read.

    A policy may deny listing buckets: `AccessDenied` still took a server that checked
    the signature (a wrong key is InvalidAccessKeyId or SignatureDoesNotMatch).
    """
    try:
        none: list[Any] = []
        reading.call("listing buckets", reading.client.minio.list_buckets, none)
    except AccessDenied as error:
        cause = error.__cause__
        if not (isinstance(cause, S3Error) and cause.code == "AccessDenied"):
            raise


def _read_bucket(reading: _Reading, name: str) -> S3BucketObs:
    minio = reading.client.minio
    exists = reading.call(f"checking bucket {name}", lambda: minio.bucket_exists(name), False)
    if exists is not True:
        return S3BucketObs(name=name, exists=False)
    unreadable: dict[str, Unreadable] = {}
    try:
        versioning = reading.call(
            f"reading bucket versioning of {name}",
            lambda: minio.get_bucket_versioning(name).status,
            None,
            "s3:GetBucketVersioning",
        )
        lock = reading.call(
            f"reading object lock configuration of {name}",
            lambda: minio.get_object_lock_config(name),
            None,
            "s3:GetBucketObjectLockConfiguration",
        )
        no_rules: tuple[S3LifecycleRuleObs, ...] = ()
        lifecycle = reading.call(
            f"reading lifecycle rules of {name}",
            lambda: _lifecycle(_lifecycle_document(minio, name)),
            no_rules,
            "s3:GetLifecycleConfiguration",
        )
        policy = reading.call(
            f"reading bucket policy of {name}",
            lambda: minio.get_bucket_policy(name),
            "",
            "s3:GetBucketPolicy",
        )
        encryption = reading.call(
            f"reading default encryption of {name}",
            lambda: minio.get_bucket_encryption(name),
            None,
            "s3:GetEncryptionConfiguration",
        )
        tags = reading.call(
            f"reading bucket tags of {name}",
            lambda: minio.get_bucket_tags(name),
            None,
            "s3:GetBucketTagging",
        )
    except StoreError as error:
        # Deleted between the existence check and now: it is missing, not broken.
        if isinstance(error.__cause__, S3Error) and error.__cause__.code == "NoSuchBucket":
            return S3BucketObs(name=name, exists=False)
        raise
    for facet, value in (
        ("versioning", versioning),
        ("objectLock", lock),
        ("lifecycle", lifecycle),
        ("anonymousAccess", policy),
        ("encryption", encryption),
        ("tags", tags),
    ):
        if isinstance(value, _Unreadable):
            unreadable[facet] = Unreadable(value.reason, value.grant)
    anonymous = None
    if not isinstance(policy, _Unreadable):
        try:
            anonymous = anonymous_access(policy, name)
        except ValueError as error:
            unreadable["anonymousAccess"] = Unreadable(
                f"the bucket policy is not readable JSON ({error})"
            )
    return S3BucketObs(
        name=name,
        exists=True,
        versioning=None if isinstance(versioning, _Unreadable) else _versioning(versioning),
        object_lock=None if isinstance(lock, _Unreadable) else _object_lock(lock),
        lifecycle=() if isinstance(lifecycle, _Unreadable) else lifecycle,
        anonymous_access=anonymous,
        encryption=None if isinstance(encryption, _Unreadable) else _encryption(encryption),
        tags={} if isinstance(tags, _Unreadable) or tags is None else dict(tags),
        unreadable=unreadable,
    )


def _versioning(status: str | None) -> str:
    # An unversioned bucket answers with no status (minio shows "Off").
    return {"Enabled": "enabled", "Suspended": "suspended"}.get(status or "", "disabled")


def _object_lock(config: Any) -> S3ObjectLockObs | None:
    if config is None:
        return None
    unit = (config.duration_unit or "").lower()
    return S3ObjectLockObs(
        enabled=True,
        mode=config.mode.lower() if config.mode else None,
        days=config.duration if unit == "days" else None,
        years=config.duration if unit == "years" else None,
    )


def _lifecycle_document(minio: Minio, name: str) -> bytes:
    """The bucket's lifecycle configuration as the server sent it.

    Parsed here rather than by minio, whose parser drops a rule's top-level
    `<Prefix>` (the original, still accepted form of a rule's prefix), which
    would make `tmp/` read as the whole bucket. An unconfigured bucket raises
    S3Error NoSuchLifecycleConfiguration, as minio's own call does.
    """
    response = minio._execute("GET", name, query_params={"lifecycle": ""})
    data: bytes = response.data
    return data


def _lifecycle(document: bytes) -> tuple[S3LifecycleRuleObs, ...]:
    """The rules of a lifecycle configuration document; ValueError when it is not one."""
    try:
        root = ElementTree.fromstring(document)
    except ElementTree.ParseError as error:
        raise ValueError(f"the lifecycle configuration is not XML ({error})") from error
    rules = []
    for rule in _children(root, "Rule"):
        # A prefix is where the rule's filter says, or (the original form) on the rule itself.
        rule_filter = _child(rule, "Filter")
        prefix = _text(rule, "Prefix")
        if rule_filter is not None:
            prefix = _text(rule_filter, "Prefix")
            if prefix is None and (conjunction := _child(rule_filter, "And")) is not None:
                prefix = _text(conjunction, "Prefix")
        expiration = _child(rule, "Expiration")
        noncurrent = _child(rule, "NoncurrentVersionExpiration")
        rules.append(
            S3LifecycleRuleObs(
                id=_text(rule, "ID"),
                prefix=prefix,
                enabled=_text(rule, "Status") == "Enabled",
                expiration_days=_number(expiration, "Days"),
                noncurrent_expiration_days=_number(noncurrent, "NoncurrentDays"),
            )
        )
    return tuple(rules)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(element: ElementTree.Element, name: str) -> list[ElementTree.Element]:
    """Children named `name` in any (or no) XML namespace: servers differ."""
    return [child for child in element if _local(child.tag) == name]


def _child(element: ElementTree.Element, name: str) -> ElementTree.Element | None:
    return next(iter(_children(element, name)), None)


def _text(element: ElementTree.Element, name: str) -> str | None:
    child = _child(element, name)
    return None if child is None else (child.text or "").strip()


def _number(element: ElementTree.Element | None, name: str) -> int | None:
    text = None if element is None else _text(element, name)
    if not text:
        return None
    try:
        return int(text)
    except ValueError as error:
        raise ValueError(f"the lifecycle configuration says {name} {text!r}") from error


def _encryption(config: Any) -> str:
    if config is None or config.rule is None:
        return "none"
    algorithm: str = config.rule.sse_algorithm
    return algorithm


# --- anonymous access ------------------------------------------------------------

# What each level lets anyone do with the bucket's objects: reading them, and
# writing them, which overwriting or deleting does as much as creating.
_LEVEL_ACTIONS = (
    ("read", "s3:GetObject"),
    ("write", "s3:PutObject"),
    ("write", "s3:DeleteObject"),
)
_ARN_PREFIX = "arn:aws:s3:::"
# Condition keys an anonymous request never carries: they name who signed it
# (or the AWS service acting for whom), and an anonymous request is signed by nobody.
_SIGNER_KEYS = frozenset(
    {
        "aws:principalaccount",
        "aws:principalarn",
        "aws:principalorgid",
        "aws:principalorgpaths",
        "aws:principalservicename",
        "aws:sourceaccount",
        "aws:sourcearn",
        "aws:sourceorgid",
        "aws:sourceorgpaths",
        "aws:sourceowner",
        "aws:username",
    }
)
_SIGNER_KEY_PREFIXES = ("aws:principaltag/",)


def anonymous_access(policy: str, bucket: str) -> str:
    """none | read | write | readwrite: what the policy lets anyone do with the bucket's objects.

    Counts Allow statements whose principal is everyone (`"*"`, `{"AWS": "*"}`,
    `{"AWS": ["*"]}`, or a NotPrincipal that does not exclude `"*"`) for
    s3:GetObject (read), s3:PutObject or s3:DeleteObject (write), directly or
    through a wildcard such as `s3:*`, on any object of the bucket (a prefix is
    enough: a public part of a bucket is public).

    Conditions are judged only where an anonymous request settles them: one that
    requires a key naming the signer (`aws:PrincipalOrgID`, `aws:PrincipalAccount`,
    `aws:SourceArn`, ...) is never met by an unsigned request, and a negated one
    on such a key (`StringNotEquals aws:PrincipalOrgID`) always is. Any other
    condition (`aws:SourceIp`, `aws:SecureTransport`) depends on the request, so
    an Allow carrying it still counts (some anonymous callers get in) and a Deny
    carrying it takes nothing away. A Deny to everyone takes the access away
    where its resources cover the Allow's: every object, or the Allow's own prefix.
    """
    if not policy.strip():
        return "none"
    document = json.loads(policy)
    statements = document.get("Statement", []) if isinstance(document, dict) else []
    if isinstance(statements, dict):
        statements = [statements]
    public = [s for s in statements if isinstance(s, dict) and _to_everyone(s)]
    allows = [s for s in public if s.get("Effect") == "Allow" and _applies(s) is not False]
    denies = [s for s in public if s.get("Effect") == "Deny" and _applies(s) is True]
    access: set[str] = set()
    for level, action in _LEVEL_ACTIONS:
        blocking = [s for s in denies if _covers_action(s, action)]
        if any(_covers_all_objects(s, bucket) for s in blocking):
            continue
        if any(_covers_action(s, action) and _reaches_objects(s, bucket, blocking) for s in allows):
            access.add(level)
    if access == {"read", "write"}:
        return "readwrite"
    return next(iter(access)) if access else "none"


def _to_everyone(statement: Mapping[str, Any]) -> bool:
    if "NotPrincipal" in statement:
        # Everyone except the listed principals: anonymous callers included
        # unless "*" itself is excluded.
        return not _is_everyone(statement["NotPrincipal"])
    return _is_everyone(statement.get("Principal"))


def _is_everyone(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, dict):
        aws = principal.get("AWS")
        return aws == "*" or (isinstance(aws, list) and "*" in aws)
    return False


def _applies(statement: Mapping[str, Any]) -> bool | None:
    """Whether the statement's Condition holds for an anonymous request; None: it depends.

    Every operator of a Condition must hold. For a key the request lacks, AWS
    makes a positive operator and a `ForAnyValue:` one false, and a negated one,
    an `...IfExists` one, a `ForAllValues:` one and `Null: true` true.
    """
    condition = statement.get("Condition")
    if condition is None:
        return True
    if not isinstance(condition, dict):
        return None
    outcomes = [
        _absent_key_outcome(str(operator), values)
        if str(key).lower() in _SIGNER_KEYS or str(key).lower().startswith(_SIGNER_KEY_PREFIXES)
        else None
        for operator, block in condition.items()
        for key, values in (block.items() if isinstance(block, dict) else [(None, None)])
    ]
    if False in outcomes:
        return False
    return True if outcomes and all(outcomes) else None


def _absent_key_outcome(operator: str, values: Any) -> bool:
    name = operator.lower()
    if name == "null":
        # Null: "true" asks for the key to be absent, "false" for it to be present.
        return all(str(value).lower() == "true" for value in _strings(values) or [values])
    if name.startswith(("forallvalues:", "foranyvalue:")):
        # A set operator over no values: "all of none" holds, "any of none" does not.
        return name.startswith("forallvalues:")
    return name.endswith("ifexists") or "not" in name


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable) and not isinstance(value, dict):
        return [item for item in value if isinstance(item, str)]
    return []


def _glob(pattern: str, *, ignore_case: bool = False) -> re.Pattern[str]:
    """IAM wildcards: `*` any run of characters, `?` one; nothing else is special."""
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), (re.IGNORECASE if ignore_case else 0) | re.DOTALL)


def _covers_action(statement: Mapping[str, Any], action: str) -> bool:
    # Action names are case-insensitive; resource ARNs are not.
    if "NotAction" in statement:
        return not any(
            _glob(p, ignore_case=True).fullmatch(action) for p in _strings(statement["NotAction"])
        )
    return any(
        _glob(p, ignore_case=True).fullmatch(action) for p in _strings(statement.get("Action"))
    )


def _reaches_objects(
    statement: Mapping[str, Any], bucket: str, denies: Sequence[Mapping[str, Any]]
) -> bool:
    """Whether the statement's resources include an object of the bucket no Deny covers."""
    if "NotResource" in statement:
        # Everything but the listed resources: some object is left unless the
        # whole bucket's objects are excluded.
        return not any(_all_objects(r, bucket) for r in _strings(statement["NotResource"]))
    denied = [r for s in denies if "NotResource" not in s for r in _strings(s.get("Resource"))]
    return any(
        _some_objects(r, bucket) and not any(_pattern_covers(d, r) for d in denied)
        for r in _strings(statement.get("Resource"))
    )


def _pattern_covers(outer: str, inner: str) -> bool:
    """Whether every resource `inner` matches, `outer` matches too (`uploads/*` covers `uploads/public/*`).

    A wildcard of `inner` can stand for anything, so only a `*` of `outer` may
    take it; `outer`'s `?` takes one character that is not a `*`.
    """
    parts = (".*" if c == "*" else "[^*]" if c == "?" else re.escape(c) for c in outer)
    return re.fullmatch("".join(parts), inner, re.DOTALL) is not None


def _covers_all_objects(statement: Mapping[str, Any], bucket: str) -> bool:
    if "NotResource" in statement:
        return False
    return any(_all_objects(r, bucket) for r in _strings(statement.get("Resource")))


def _some_objects(resource: str, bucket: str) -> bool:
    """Whether some key k makes the resource match `<bucket>/k`."""
    if resource == "*":
        return True
    if not resource.startswith(_ARN_PREFIX):
        return False
    pattern = resource[len(_ARN_PREFIX) :]
    if "/" in pattern:
        # Bucket names hold no "/", so the part before the first one names buckets.
        return bool(_glob(pattern.split("/", 1)[0]).fullmatch(bucket))
    # `arn:aws:s3:::upl*` reaches objects only through a `*` that can take the
    # "/": what comes before that `*` must match the start of the bucket name.
    return any(
        _matches_a_start(pattern[:star], bucket)
        for star, character in enumerate(pattern)
        if character == "*"
    )


def _all_objects(resource: str, bucket: str) -> bool:
    """Whether the resource matches `<bucket>/k` for every key k: it ends in a `*` that
    follows a match of the start of `<bucket>/` (`uploads/*`, `*/*`, `upl*`, `*`)."""
    if resource == "*":
        return True
    if not resource.startswith(_ARN_PREFIX) or not resource.endswith("*"):
        return False
    return _matches_a_start(resource[len(_ARN_PREFIX) : -1], f"{bucket}/")


def _matches_a_start(pattern: str, text: str) -> bool:
    compiled = _glob(pattern)
    return any(compiled.fullmatch(text[:end]) for end in range(len(text) + 1))


# --- backup artifacts ------------------------------------------------------------


async def newest_object(
    target: Target, bucket: str, prefix: str, clients: ClientPool | None = None
) -> S3PrefixObs:
    """The newest object under `prefix`, its size, and how many objects the prefix holds.

    The listing is consumed page by page as it arrives (ListObjectsV2, 1,000
    keys a page), keeping only the newest object seen, so a prefix of millions
    of objects costs time, never memory.
    """

    async def read(reading: _Reading) -> S3PrefixObs:
        return await asyncio.to_thread(_newest, reading, bucket, prefix)

    return await _with_client(target, clients, read)


def _newest(reading: _Reading, bucket: str, prefix: str) -> S3PrefixObs:
    step = f"listing objects of {bucket} under {prefix!r}"
    reading.step = step
    listing = reading.client.minio.list_objects(bucket, prefix=prefix or None, recursive=True)
    count = 0
    newest = None
    try:
        for item in listing:
            # Each page is a request; the deadline is checked between objects
            # so a huge listing stops at the timeout instead of reading on.
            if count % 1000 == 0 and time.monotonic() > reading.deadline:
                raise StoreTimeout(f"while {step}: not done within {reading.timeout:g}s")
            if item.is_dir:
                continue
            count += 1
            if newest is None or (
                item.last_modified is not None
                and (newest.last_modified is None or item.last_modified > newest.last_modified)
            ):
                newest = item
    except S3Error as error:
        if error.code == "NoSuchBucket":
            return S3PrefixObs(bucket=bucket, prefix=prefix, objects=0, bucket_exists=False)
        raise reading.failure(step, error) from error
    except StoreError:
        raise
    except Exception as error:
        raise reading.failure(step, error) from error
    return S3PrefixObs(
        bucket=bucket,
        prefix=prefix,
        objects=count,
        newest_key=newest.object_name if newest else None,
        newest_modified=newest.last_modified if newest else None,
        newest_size=newest.size if newest else None,
    )
