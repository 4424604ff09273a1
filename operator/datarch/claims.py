"""The DataArchitectureClaim contract: pydantic models of spec and status, and claim loading.

These models are the single source of truth: the CRD is generated from them
(`datarch crd`), the CLI and the operator validate with them. No I/O beyond
reading a claim file; no knowledge of any store driver.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

from datarch.documents import read_yaml_file
from datarch.durations import (
    BOUNDED_DURATION_PATTERN,
    BOUNDED_DURATION_RULE,
    DURATION_PATTERN,
    check_bounded,
    parse_duration,
)
from datarch.errors import ClaimInvalid
from datarch.findings import Severity, SeverityOverride

API_GROUP = "datarch.io"
API_VERSION = "v1alpha1"
KIND = "DataArchitectureClaim"
PLURAL = "dataarchitectureclaims"
SHORT_NAME = "dac"

StoreKind = Literal["postgres", "mongodb", "nats", "s3", "redis"]
STORE_KINDS: tuple[StoreKind, ...] = ("postgres", "mongodb", "nats", "s3", "redis")

# CEL needs bounded sizes to estimate a rule's cost; these bounds are generous
# for a claim stored in etcd (the CLI accepts the same models for huge schemas
# because pydantic does not enforce the CRD-only bounds below).
MAX_STORES = 64
MAX_BACKUPS = 64
NAME_MAX = 253


def _check_duration(value: str) -> str:
    parse_duration(value)
    return value


# Nested durations carry an OpenAPI pattern: CEL rules inside unbounded lists
# would exceed the API server's cost budget. Top-level ones get a CEL rule with
# a friendlier message.
Duration = Annotated[
    str,
    AfterValidator(_check_duration),
    Field(json_schema_extra={"pattern": DURATION_PATTERN, "maxLength": 64}),
]


def _at_least(minimum: str) -> Callable[[str], str]:
    floor = parse_duration(minimum)

    def check(value: str) -> str:
        check_bounded(value)
        if parse_duration(value) < floor:
            raise ValueError(f"{value!r} is shorter than the minimum of {minimum}")
        return value

    return check


def _top_duration_schema(minimum: str) -> JsonDict:
    """CEL rules for a top-level duration: well formed, within what CEL converts, at least
    `minimum`. Each rule is guarded by the one before, so a value gets one message."""
    return {
        "x-kubernetes-validations": [
            {
                "rule": f"self.matches('{DURATION_PATTERN}')",
                "message": "must be a duration such as 30s, 5m or 168h",
            },
            {
                "rule": f"!self.matches('{DURATION_PATTERN}') "
                f"|| self.matches('{BOUNDED_DURATION_PATTERN}')",
                "message": BOUNDED_DURATION_RULE,
            },
            {
                "rule": f"!self.matches('{BOUNDED_DURATION_PATTERN}') "
                f"|| duration(self) >= duration('{minimum}')",
                "message": f"must be at least {minimum}",
            },
        ],
        "maxLength": 64,
    }


# A pass every millisecond would be a busy loop; a zero timeout fails every store.
IntervalDuration = Annotated[
    str,
    AfterValidator(_check_duration),
    AfterValidator(_at_least("1s")),
    Field(json_schema_extra=_top_duration_schema("1s")),
]
TimeoutDuration = Annotated[
    str,
    AfterValidator(_check_duration),
    AfterValidator(_at_least("100ms")),
    Field(json_schema_extra=_top_duration_schema("100ms")),
]
MaxAgeDuration = Annotated[
    str,
    AfterValidator(_check_duration),
    AfterValidator(_at_least("1s")),
    Field(json_schema_extra=_top_duration_schema("1s")),
]
Name = Annotated[str, Field(min_length=1, json_schema_extra={"maxLength": NAME_MAX})]

# S3's bucket naming rules (docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html):
# 3 to 63 lowercase letters, digits, hyphens and dots, each dot-separated part beginning and
# ending with a letter or digit (so no "..", ".-" or "-."). An OpenAPI pattern, not a CEL
# rule: CEL inside the unbounded bucket list would exceed the API server's cost budget. The
# rules no RE2 pattern can say (not an IP address, reserved affixes) are the CLI's and the
# operator's, which parse every claim with these models.
S3_BUCKET_PATTERN = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?([.][a-z0-9]([a-z0-9-]*[a-z0-9])?)*$"
_S3_BUCKET = re.compile(S3_BUCKET_PATTERN)
_IPV4 = re.compile(r"^[0-9]+([.][0-9]+){3}$")
_S3_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_S3_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def _check_bucket_name(value: str) -> str:
    if not 3 <= len(value) <= 63:
        raise ValueError("an S3 bucket name must be 3 to 63 characters long")
    if not _S3_BUCKET.match(value):
        raise ValueError(
            "an S3 bucket name must have only lowercase letters, digits, hyphens and dots, and "
            "begin and end with a letter or digit on each side of every dot"
        )
    if _IPV4.match(value):
        raise ValueError("an S3 bucket name must not be formatted as an IP address")
    if value.startswith(_S3_RESERVED_PREFIXES) or value.endswith(_S3_RESERVED_SUFFIXES):
        raise ValueError(
            "an S3 bucket name must not start with xn--, sthree- or amzn-s3-demo-, nor end "
            "with -s3alias, --ol-s3, .mrap, --x-s3 or --table-s3 (reserved by S3)"
        )
    return value


BucketName = Annotated[
    str,
    AfterValidator(_check_bucket_name),
    Field(json_schema_extra={"pattern": S3_BUCKET_PATTERN, "minLength": 3, "maxLength": 63}),
]


class Model(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are errors, not ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )


# --- connections -------------------------------------------------------------


class SecretRef(Model):
    name: Name = Field(description="Name of a Secret in the claim's namespace.")
    key: str | None = Field(
        default=None,
        description=(
            "Key inside the Secret. Defaults: postgres `dsn`, mongodb `uri`, redis `url`, "
            "nats `url`, s3 `accessKey` and `secretKey`."
        ),
    )


class Connection(Model):
    secret_ref: SecretRef | None = Field(
        default=None, description="Credentials, only ever by reference to a Secret."
    )
    url: str | None = Field(
        default=None,
        description="Address without credentials (nats, redis), used when the Secret holds only credentials.",
    )
    endpoint: str | None = Field(default=None, description="host:port of an S3 endpoint.")
    secure: bool = Field(default=True, description="S3 only: use TLS.")
    region: str | None = Field(default=None, description="S3 only: the region to sign for.")


class SeverityOverrideSpec(Model):
    path: str = Field(
        description="Glob over the store-relative finding path, e.g. `public.*.indexes.*`."
    )
    severity: Severity = Field(description="Severity given to matching findings.")


# --- PostgreSQL -------------------------------------------------------------

ReferentialAction = Literal["cascade", "restrict", "no action", "set null", "set default"]


class PgColumn(Model):
    name: Name = Field(description="Column name, following PostgreSQL's case rules.")
    type: str | None = Field(
        default=None,
        description="Type as written in DDL, e.g. `varchar(255)`, `timestamptz`, `int[]`.",
    )
    nullable: bool | None = Field(default=None, description="Whether NULL is allowed.")
    default: str | None = Field(default=None, description="Default expression, e.g. `now()`.")
    identity: Literal["always", "by default"] | None = Field(
        default=None, description="GENERATED ... AS IDENTITY kind."
    )
    generated: str | None = Field(
        default=None, description="Expression of a GENERATED ALWAYS AS (...) STORED column."
    )


class PgReference(Model):
    schema_: str | None = Field(
        default=None, alias="schema", description="Schema of the referenced table (default: same)."
    )
    table: Name = Field(description="Referenced table.")
    columns: list[str] = Field(description="Referenced columns, in order.")


class PgForeignKey(Model):
    name: str | None = Field(default=None, description="Constraint name, checked when given.")
    columns: list[str] = Field(description="Referencing columns, in order.")
    references: PgReference = Field(description="The referenced table and columns.")
    on_delete: ReferentialAction | None = Field(default=None, description="ON DELETE action.")
    on_update: ReferentialAction | None = Field(default=None, description="ON UPDATE action.")


class PgIndex(Model):
    name: str | None = Field(
        default=None, description="Index name; matched by columns when omitted."
    )
    columns: list[str] = Field(description="Columns or expressions, in order.")
    unique: bool | None = Field(default=None, description="Whether the index is unique.")
    method: str | None = Field(
        default=None, description="Access method: btree, hash, gin, gist, brin."
    )
    where: str | None = Field(default=None, description="Predicate of a partial index.")


class PgCheck(Model):
    name: Name = Field(description="Check constraint name.")
    expression: str | None = Field(default=None, description="Its expression, e.g. `(amount > 0)`.")


class PgPartitioning(Model):
    strategy: Literal["range", "list", "hash"] = Field(description="Partitioning strategy.")
    key: list[str] = Field(description="Partition key columns or expressions.")


class PgTable(Model):
    name: Name = Field(description="Table name.")
    columns: list[PgColumn] | None = Field(default=None, description="Documented columns.")
    primary_key: list[str] | None = Field(
        default=None, description="Primary key columns, in order."
    )
    uniques: list[list[str]] | None = Field(
        default=None, description="Unique constraints, by columns."
    )
    foreign_keys: list[PgForeignKey] | None = Field(default=None, description="Foreign keys.")
    indexes: list[PgIndex] | None = Field(
        default=None, description="Indexes, beyond PK and uniques."
    )
    checks: list[PgCheck] | None = Field(default=None, description="Check constraints.")
    partitioning: PgPartitioning | None = Field(
        default=None, description="Set when the table is partitioned."
    )


class PgSchema(Model):
    name: Name = Field(description="Schema name.")
    tables: list[PgTable] | None = Field(default=None, description="Documented tables.")


MigrationTool = Literal["drizzle", "flyway", "golang-migrate", "alembic", "prisma", "liquibase"]


class PgMigrations(Model):
    tool: MigrationTool = Field(description="Migration tool whose history table is read.")
    latest: str | None = Field(
        default=None, description="Identifier of the latest migration the docs say is applied."
    )
    schema_: str | None = Field(
        default=None,
        alias="schema",
        description="Schema of the history table, when not the tool's default.",
    )


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


@lru_cache(maxsize=65536)  # a large claim repeats a few names (id, created_at) thousands of times
def pg_identifier(text: str) -> str:
    """A claim's identifier as PostgreSQL reads it: `"Quoted"` keeps its case, unquoted folds.

    Like the server, only ASCII letters fold; `""` inside quotes is one `"`.
    """
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return text[1:-1].replace('""', '"')
    return text.translate(_ASCII_LOWER)


class PostgresExpectations(Model):
    database: str | None = Field(default=None, description="Database the DSN must land in.")
    schemas: list[PgSchema] | None = Field(default=None, description="Documented schemas.")
    extensions: list[str] | None = Field(default=None, description="Installed extensions.")
    migrations: PgMigrations | None = Field(default=None, description="Migration history.")


# --- MongoDB ----------------------------------------------------------------


class MongoIndexKey(Model):
    field: Name = Field(description="Indexed field (dotted path).")
    order: Literal[1, -1] = Field(default=1, description="1 ascending, -1 descending.")


class MongoCollation(Model):
    locale: str = Field(description="Collation locale, e.g. `en`.")
    strength: int | None = Field(default=None, description="Collation strength 1-5.")


class MongoIndex(Model):
    name: str | None = Field(default=None, description="Index name; matched by keys when omitted.")
    keys: list[MongoIndexKey] = Field(description="Key fields, in order.")
    unique: bool | None = Field(default=None, description="Whether the index is unique.")
    sparse: bool | None = Field(default=None, description="Whether the index is sparse.")
    expire_after_seconds: int | None = Field(default=None, description="TTL of a TTL index.")
    partial_filter_expression: dict[str, Any] | None = Field(
        default=None, description="Partial filter expression."
    )
    collation: MongoCollation | None = Field(default=None, description="Index collation.")


class MongoTimeseries(Model):
    time_field: str = Field(description="timeField of the time-series collection.")
    meta_field: str | None = Field(default=None, description="metaField.")
    granularity: Literal["seconds", "minutes", "hours"] | None = Field(
        default=None, description="Bucket granularity."
    )


class MongoCollection(Model):
    name: Name = Field(description="Collection name.")
    type: Literal["collection", "view", "timeseries"] | None = Field(
        default=None, description="Collection type."
    )
    capped: bool | None = Field(default=None, description="Whether the collection is capped.")
    timeseries: MongoTimeseries | None = Field(default=None, description="Time-series options.")
    validator: dict[str, Any] | None = Field(default=None, description="Validator document.")
    validation_level: Literal["off", "strict", "moderate"] | None = Field(
        default=None, description="validationLevel of the validator."
    )
    validation_action: Literal["error", "warn"] | None = Field(
        default=None, description="validationAction of the validator."
    )
    indexes: list[MongoIndex] | None = Field(default=None, description="Indexes beyond _id.")


class MongoDatabase(Model):
    name: Name = Field(description="Database name.")
    collections: list[MongoCollection] | None = Field(
        default=None, description="Documented collections."
    )


class MongoExpectations(Model):
    databases: list[MongoDatabase] | None = Field(default=None, description="Documented databases.")
    replica_set: str | None = Field(default=None, description="Replica set name.")


# --- NATS JetStream --------------------------------------------------------


class ConsumerLag(Model):
    max_pending: int | None = Field(
        default=None, ge=0, description="Most unconsumed messages allowed."
    )
    max_ack_pending: int | None = Field(
        default=None, ge=0, description="Most delivered-but-unacknowledged messages allowed."
    )
    max_redelivered: int | None = Field(
        default=None, ge=0, description="Most redelivered messages allowed."
    )
    max_oldest_unacked_age: Duration | None = Field(
        default=None, description="Oldest unacknowledged message may be at most this old."
    )
    max_max_delivered: int | None = Field(
        default=None,
        ge=0,
        description=(
            "Most messages allowed to have exhausted maxDeliver (abandoned, not lag), as "
            "counted in a stream recording the consumer's MAX_DELIVERIES advisories."
        ),
    )


class NatsConsumer(Model):
    name: Name = Field(description="Durable consumer name.")
    ack_policy: Literal["explicit", "none", "all"] | None = Field(
        default=None, description="Acknowledgement policy."
    )
    deliver_policy: (
        Literal["all", "last", "new", "by_start_sequence", "by_start_time", "last_per_subject"]
        | None
    ) = Field(default=None, description="Where delivery starts.")
    filter_subjects: list[str] | None = Field(default=None, description="Filter subject(s).")
    max_deliver: int | None = Field(
        default=None, description="Most delivery attempts per message (-1 unlimited)."
    )
    ack_wait: Duration | None = Field(
        default=None, description="Time allowed for an acknowledgement."
    )
    max_ack_pending: int | None = Field(
        default=None, description="Most unacknowledged messages in flight."
    )
    lag: ConsumerLag | None = Field(default=None, description="Lag thresholds.")


class NatsStream(Model):
    name: Name = Field(description="Stream name.")
    subjects: list[str] | None = Field(default=None, description="Subjects the stream captures.")
    retention: Literal["limits", "interest", "workqueue"] | None = Field(
        default=None, description="Retention policy."
    )
    storage: Literal["file", "memory"] | None = Field(default=None, description="Storage backend.")
    replicas: int | None = Field(default=None, description="Number of replicas.", ge=1)
    max_age: Duration | None = Field(default=None, description="0s means unlimited.")
    max_bytes: int | None = Field(default=None, description="-1 means unlimited.")
    max_msgs: int | None = Field(default=None, description="-1 means unlimited.")
    max_msg_size: int | None = Field(default=None, description="-1 means unlimited.")
    discard: Literal["old", "new"] | None = Field(
        default=None, description="What is discarded when a limit is reached."
    )
    duplicate_window: Duration | None = Field(
        default=None, description="Window for duplicate detection."
    )
    allow_direct: bool | None = Field(default=None, description="Whether direct get is allowed.")
    sealed: bool | None = Field(default=None, description="Whether the stream is sealed.")
    mirror: str | None = Field(default=None, description="Name of the mirrored stream.")
    sources: list[str] | None = Field(default=None, description="Names of source streams.")
    consumers: list[NatsConsumer] | None = Field(
        default=None, description="Documented durable consumers."
    )


class NatsKeyValue(Model):
    bucket: Name = Field(description="KV bucket name (stream KV_<bucket>).")
    history: int | None = Field(default=None, description="Values kept per key.", ge=1)
    ttl: Duration | None = Field(default=None, description="How long a value lives.")
    max_bytes: int | None = Field(
        default=None, description="Size limit of the bucket (-1 unlimited)."
    )
    storage: Literal["file", "memory"] | None = Field(default=None, description="Storage backend.")
    replicas: int | None = Field(default=None, description="Number of replicas.", ge=1)


class NatsObjectStore(Model):
    bucket: Name = Field(description="Object store bucket name (stream OBJ_<bucket>).")
    ttl: Duration | None = Field(default=None, description="How long an object lives.")
    max_bytes: int | None = Field(
        default=None, description="Size limit of the bucket (-1 unlimited)."
    )
    storage: Literal["file", "memory"] | None = Field(default=None, description="Storage backend.")
    replicas: int | None = Field(default=None, description="Number of replicas.", ge=1)


class NatsExpectations(Model):
    streams: list[NatsStream] | None = Field(default=None, description="Documented streams.")
    key_values: list[NatsKeyValue] | None = Field(
        default=None, description="Documented KV buckets."
    )
    object_stores: list[NatsObjectStore] | None = Field(
        default=None, description="Documented object stores."
    )


# --- S3 ---------------------------------------------------------------------


class S3LifecycleRule(Model):
    id: str | None = Field(default=None, description="Rule ID.")
    prefix: str | None = Field(default=None, description="Prefix (or filter prefix) of the rule.")
    expiration_days: int | None = Field(
        default=None, description="Days after which current objects expire.", ge=0
    )
    noncurrent_expiration_days: int | None = Field(
        default=None, description="Days after which noncurrent versions expire.", ge=0
    )


class S3ObjectLock(Model):
    enabled: bool = Field(default=True, description="Whether object lock is enabled.")
    mode: Literal["governance", "compliance"] | None = Field(
        default=None, description="Default retention mode."
    )
    days: int | None = Field(default=None, description="Default retention in days.", ge=0)
    years: int | None = Field(default=None, description="Default retention in years.", ge=0)


class S3Bucket(Model):
    name: BucketName = Field(description="Bucket name (S3's naming rules).")
    versioning: Literal["enabled", "suspended", "disabled"] | None = Field(
        default=None, description="Versioning state."
    )
    anonymous_access: Literal["none", "read", "write", "readwrite"] | None = Field(
        default=None, description="Derived from the bucket policy's statements for Principal *."
    )
    lifecycle: list[S3LifecycleRule] | None = Field(default=None, description="Lifecycle rules.")
    object_lock: S3ObjectLock | None = Field(default=None, description="Object lock configuration.")
    encryption: Literal["none", "AES256", "aws:kms"] | None = Field(
        default=None, description="Default server-side encryption."
    )
    tags: dict[str, str] | None = Field(default=None, description="Bucket tags.")


class S3Expectations(Model):
    buckets: list[S3Bucket] | None = Field(default=None, description="Documented buckets.")


# --- Redis ------------------------------------------------------------------


class RedisPersistence(Model):
    aof: bool | None = Field(default=None, description="appendonly on or off.")
    rdb: bool | None = Field(default=None, description="Whether any RDB save rule is set.")
    save: str | None = Field(
        default=None, description="The exact RDB save rules, e.g. `3600 1 300 100`."
    )


class RedisKeyPattern(Model):
    pattern: str = Field(description="SCAN MATCH pattern, e.g. `session:*`.")
    ttl_required: bool | None = Field(default=None, description="Every matching key must expire.")
    max_ttl: Duration | None = Field(default=None, description="No matching key may live longer.")
    sample_size: int = Field(
        default=10_000, ge=1, description="Most keys scanned for this pattern."
    )


class RedisExpectations(Model):
    role: Literal["master", "replica"] | None = Field(default=None, description="Replication role.")
    maxmemory: str | None = Field(default=None, description="e.g. `256mb`; `0` means unlimited.")
    maxmemory_policy: str | None = Field(default=None, description="e.g. `allkeys-lru`.")
    persistence: RedisPersistence | None = Field(default=None, description="AOF and RDB settings.")
    databases: list[int] | None = Field(default=None, description="Database numbers holding keys.")
    key_patterns: list[RedisKeyPattern] | None = Field(
        default=None, description="Key patterns whose TTLs are checked by sampling."
    )


# --- stores and backups -------------------------------------------------------


_KIND_BLOCK_RULES: list[JsonDict] = [
    {
        "rule": f"self.kind == '{kind}' || !has(self.{kind})",
        "message": f"{kind} is only allowed when kind is {kind}",
        "fieldPath": f".{kind}",
    }
    for kind in STORE_KINDS
]
_ABSENT_RULE: JsonDict = {
    "rule": "!has(self.absent) || !self.absent || ("
    + " && ".join(f"!has(self.{kind})" for kind in STORE_KINDS)
    + " && !has(self.version) && (!has(self.strict) || !self.strict))",
    "message": "absent: true excludes expectations (version, strict and the kind's block)",
    "fieldPath": ".absent",
}


class Store(Model):
    model_config = ConfigDict(
        json_schema_extra={"x-kubernetes-validations": [*_KIND_BLOCK_RULES, _ABSENT_RULE]}
    )

    name: Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9_]*[a-z0-9])?$", max_length=63)] = Field(
        description="Unique within the claim; prefixes every finding path."
    )
    kind: StoreKind = Field(description="postgres | mongodb | nats | s3 | redis")
    connection: Connection | None = Field(default=None, description="How to reach the store.")
    strict: bool = Field(
        default=False, description="Objects that exist but are not documented are findings."
    )
    scope: list[str] = Field(
        default_factory=list,
        description='Globs limiting what strict mode counts (e.g. ["THE0_*"]).',
    )
    version: str | None = Field(default=None, description="Server version constraint, e.g. `>=15`.")
    absent: bool = Field(
        default=False, description="The docs say this store does not exist: verify that."
    )
    severity_overrides: list[SeverityOverrideSpec] | None = Field(
        default=None, description="Per-store severities for findings whose path matches a glob."
    )
    postgres: PostgresExpectations | None = Field(
        default=None, description="Expectations of a postgres store."
    )
    mongodb: MongoExpectations | None = Field(
        default=None, description="Expectations of a mongodb store."
    )
    nats: NatsExpectations | None = Field(default=None, description="Expectations of a nats store.")
    s3: S3Expectations | None = Field(default=None, description="Expectations of an s3 store.")
    redis: RedisExpectations | None = Field(
        default=None, description="Expectations of a redis store."
    )

    @model_validator(mode="after")
    def _one_block(self) -> Store:
        for kind in STORE_KINDS:
            if kind != self.kind and getattr(self, kind) is not None:
                raise ValueError(f"{kind} is only allowed when kind is {kind}")
        if self.absent and (
            self.version is not None or self.strict or getattr(self, self.kind) is not None
        ):
            raise ValueError(
                "absent: true excludes expectations (version, strict and the kind's block)"
            )
        return self

    def overrides(self) -> list[SeverityOverride]:
        return [SeverityOverride(o.path, o.severity) for o in self.severity_overrides or ()]


class CronJobRef(Model):
    name: Name = Field(description="CronJob name.")
    namespace: str | None = Field(default=None, description="Defaults to the claim's namespace.")


class BackupArtifact(Model):
    store: Name = Field(description="An s3 store of this claim.")
    bucket: BucketName = Field(description="Bucket holding the artifacts (S3's naming rules).")
    prefix: str = Field(default="", description="Key prefix of the artifacts.")
    min_size_bytes: int | None = Field(
        default=None, ge=0, description="Smallest acceptable artifact."
    )


class Backup(Model):
    name: Annotated[str, Field(max_length=63, min_length=1)] = Field(description="Backup name.")
    store: Name = Field(description="The store this backup protects (a store of this claim).")
    cron_job: CronJobRef = Field(description="The CronJob that runs the backup.")
    schedule: str | None = Field(default=None, description="Documented cron schedule.")
    time_zone: str | None = Field(default=None, description="Documented CronJob timeZone.")
    max_age: MaxAgeDuration | None = Field(
        default=None, description="Default: two schedule intervals, derived from the schedule."
    )
    artifact: BackupArtifact | None = Field(default=None, description="Optional artifact check.")


_SPEC_RULES: list[JsonDict] = [
    {
        "rule": "self.stores.all(s, self.stores.exists_one(t, t.name == s.name))",
        "message": "store names must be unique",
        "fieldPath": ".stores",
    },
    {
        "rule": "!has(self.backups) || self.backups.all(b, self.stores.exists(s, s.name == b.store))",
        "message": "every backup's store must name a store of this claim",
        "fieldPath": ".backups",
    },
    {
        "rule": "!has(self.backups) || self.backups.all(b, !has(b.artifact) || "
        "self.stores.exists(s, s.name == b.artifact.store && s.kind == 's3'))",
        "message": "every backup artifact's store must name an s3 store of this claim",
        "fieldPath": ".backups",
    },
    {
        "rule": "!has(self.backups) || self.backups.all(b, self.backups.exists_one(c, c.name == b.name))",
        "message": "backup names must be unique",
        "fieldPath": ".backups",
    },
]


class ClaimSpec(Model):
    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": _SPEC_RULES})  # type: ignore[dict-item]

    interval: IntervalDuration = Field(default="5m", description="Verification period.")
    timeout: TimeoutDuration = Field(default="30s", description="Time allowed for each store.")
    suspend: bool = Field(default=False, description="When true, no verification runs.")
    stores: list[Store] = Field(
        min_length=1,
        json_schema_extra={"maxItems": MAX_STORES},
        description="The documented stores.",
    )
    backups: list[Backup] = Field(
        default_factory=list,
        json_schema_extra={"maxItems": MAX_BACKUPS},
        description="The documented backups.",
    )

    @model_validator(mode="after")
    def _cross_references(self) -> ClaimSpec:
        names = [s.name for s in self.stores]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"store names must be unique: {', '.join(duplicates)}")
        kinds = {s.name: s.kind for s in self.stores}
        backup_names = [b.name for b in self.backups]
        for backup in self.backups:
            if backup.store not in kinds:
                raise ValueError(
                    f"backup {backup.name}: store {backup.store!r} is not a store of this claim"
                )
            if backup.artifact and kinds.get(backup.artifact.store) != "s3":
                raise ValueError(
                    f"backup {backup.name}: artifact store {backup.artifact.store!r} is not an s3 store"
                )
            if backup_names.count(backup.name) > 1:
                raise ValueError(f"backup names must be unique: {backup.name}")
        return self

    @property
    def interval_seconds(self) -> float:
        return parse_duration(self.interval)

    @property
    def timeout_seconds(self) -> float:
        return parse_duration(self.timeout)


# --- status -------------------------------------------------------------------


class Condition(Model):
    type: str = Field(description="Ready, StoresReachable, Conforming or BackupsFresh.")
    status: Literal["True", "False", "Unknown"] = Field(
        description="Unknown when it could not be told (a store or backup not read)."
    )
    reason: str = Field(description="CamelCase reason.")
    message: str = Field(default="", description="What a person needs to act on it.")
    last_transition_time: datetime = Field(description="Changes only when status flips.")
    observed_generation: int | None = Field(
        default=None, description="The spec generation this condition was computed from."
    )


class StoreStatus(Model):
    name: str = Field(description="Store name from the spec.")
    kind: StoreKind = Field(description="Store kind.")
    reachable: bool = Field(description="Whether the store answered in the last pass.")
    version: str | None = Field(default=None, description="Server version observed.")
    findings: int = Field(default=0, description="Findings in this store.")
    unchecked: int = Field(
        default=0,
        description=(
            "Documented fields the probe could not read (the message names them and the "
            "grant that would let it): the store's check is incomplete."
        ),
    )
    last_observed_at: datetime | None = Field(
        default=None, description="When the store was last read."
    )
    message: str = Field(
        default="", description="Why it could not be checked (or some field could not be)."
    )


class BackupStatus(Model):
    name: str = Field(description="Backup name from the spec.")
    last_successful_time: datetime | None = Field(
        default=None, description="The last successful run seen."
    )
    age_seconds: int | None = Field(default=None, description="Age of the last success.")
    fresh: bool = Field(default=False, description="Whether it is within maxAge.")
    artifact_age_seconds: int | None = Field(
        default=None, description="Age of the newest artifact, when one is documented."
    )
    message: str = Field(default="", description="Why it is not fresh, or could not be told.")


class FindingStatus(Model):
    path: str = Field(description="store/path of the object that differs.")
    kind: str = Field(description="missing | unexpected | different")
    severity: str = Field(description="critical | warning | info")
    expected: str | None = Field(default=None, description="What the claim says.")
    observed: str | None = Field(default=None, description="What the store showed.")
    message: str = Field(default="", description="The finding in one line.")


class Summary(Model):
    findings: int = Field(default=0, description="Total findings.")
    critical: int = Field(default=0, description="Critical findings.")
    warning: int = Field(default=0, description="Warning findings.")
    info: int = Field(default=0, description="Info findings.")
    stores_reachable: int = Field(default=0, description="Stores read in the last pass.")
    stores_total: int = Field(default=0, description="Stores in the spec.")
    stores: str = Field(default="0/0", description="Reachable of total, for the printer column.")
    backups_fresh: int = Field(default=0, description="Backups within maxAge.")
    backups_total: int = Field(default=0, description="Backups in the spec.")
    backups: str = Field(default="0/0", description="Fresh of total, for the printer column.")


class ClaimStatus(Model):
    observed_generation: int | None = Field(
        default=None, description="The spec generation last verified."
    )
    last_verified_at: datetime | None = Field(
        default=None,
        description="When a pass last changed the status (metrics carry every pass's time).",
    )
    conditions: list[Condition] = Field(
        default_factory=list, description="Ready, StoresReachable, Conforming, BackupsFresh."
    )
    summary: Summary = Field(default_factory=Summary, description="Counts at a glance.")
    stores: list[StoreStatus] = Field(default_factory=list, description="Each store's state.")
    backups: list[BackupStatus] = Field(default_factory=list, description="Each backup's state.")
    findings: list[FindingStatus] = Field(
        default_factory=list, description="Findings, worst first, at most 50."
    )
    findings_truncated: bool = Field(
        default=False, description="True when more than 50 findings exist."
    )


class ClaimMetadata(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str = "claim"
    namespace: str = "default"


class Claim(Model):
    """A whole claim document, as `datarch verify -f` reads it."""

    model_config = ConfigDict(extra="ignore")
    KIND: ClassVar[str] = KIND

    api_version: str = Field(default=f"{API_GROUP}/{API_VERSION}")
    kind: str = KIND
    metadata: ClaimMetadata = Field(default_factory=ClaimMetadata)
    spec: ClaimSpec


# --- loading ---------------------------------------------------------------


def parse_claim(document: Any, source: str = "claim") -> Claim:
    """Validate a parsed document; ClaimInvalid names every offending field."""
    if not isinstance(document, dict):
        raise ClaimInvalid(
            f"while reading {source}: expected a mapping, got {type(document).__name__}"
        )
    if document.get("kind", KIND) != KIND:
        raise ClaimInvalid(f"while reading {source}: kind is {document.get('kind')!r}, not {KIND}")
    try:
        return Claim.model_validate(document)
    except ValidationError as error:
        raise ClaimInvalid(
            f"while validating {source}: {format_validation_error(error)}"
        ) from error


def load_claim(path: Path) -> Claim:
    """The claim in a YAML file; ClaimInvalid, one line, for anything unreadable or invalid."""
    return parse_claim(read_yaml_file(path), str(path))


def format_validation_error(error: ValidationError) -> str:
    """`spec.stores[0].kind: Input should be ...; ...` with wire (camelCase) field names."""
    parts = []
    for item in error.errors()[:10]:
        location = ""
        for element in item["loc"]:
            location += f"[{element}]" if isinstance(element, int) else f".{element}"
        parts.append(f"{location.lstrip('.') or '(document)'}: {item['msg']}")
    more = error.error_count() - 10
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)
