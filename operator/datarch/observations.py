"""Observed facts: frozen values a probe read from a live store, one type per store kind.

Observations say what is there, never whether it is right; only comparison judges.
Field values keep the store's own vocabulary (PostgreSQL's format_type, NATS's
retention names) so a person can match them to the store's own tools.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A fact the probe could not read: why, and the grant that would let it (None: none would)."""

    reason: str
    grant: str | None = None


# --- PostgreSQL -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PgColumnObs:
    name: str
    type: str  # format_type(atttypid, atttypmod), e.g. "character varying(255)"
    nullable: bool
    default: str | None  # pg_get_expr of the default, e.g. "now()"
    identity: str | None = None  # "always" | "by default"
    generated: str | None = None  # expression of a stored generated column


@dataclass(frozen=True, slots=True)
class PgConstraintObs:
    name: str
    type: str  # "p" primary key, "u" unique, "f" foreign key, "c" check
    columns: tuple[str, ...]
    ref_schema: str | None = None
    ref_table: str | None = None
    ref_columns: tuple[str, ...] = ()
    on_delete: str | None = None  # "cascade", "restrict", "no action", "set null", "set default"
    on_update: str | None = None
    # A check's expression (pg_get_expr, pretty), e.g. "amount > 0::numeric";
    # an exclusion constraint's pg_get_constraintdef.
    definition: str | None = None
    index: str | None = None  # the index backing a primary key or unique constraint


@dataclass(frozen=True, slots=True)
class PgIndexObs:
    name: str
    columns: tuple[str, ...]  # key columns: a column's name, or an expression's text
    unique: bool
    primary: bool
    method: str
    predicate: str | None = None
    # Per key column: its operator class (schema-qualified outside pg_catalog), whether
    # that is its type's default for the method, and its collation where it is not the
    # column's own (an expression's: the database default), else None.
    opclasses: tuple[str, ...] = ()
    default_opclasses: tuple[bool, ...] = ()
    collations: tuple[str | None, ...] = ()


@dataclass(frozen=True, slots=True)
class PgTableObs:
    schema: str
    name: str
    kind: str  # "table", "partitioned table", "view", "materialized view", "foreign table"
    columns: tuple[PgColumnObs, ...] = ()
    constraints: tuple[PgConstraintObs, ...] = ()
    indexes: tuple[PgIndexObs, ...] = ()
    partition_strategy: str | None = None  # "range" | "list" | "hash"
    # Each part as pg_get_partkeydef writes it: `created_at`, `"Id"`, `lower(name)`,
    # `name COLLATE "C" text_pattern_ops`.
    partition_key: tuple[str, ...] = ()
    partition_of: str | None = None  # "schema.table" of the parent, for a partition


@dataclass(frozen=True, slots=True)
class PgMigrationHistory:
    """A migration tool's history table as read; what each identifier is depends on the tool.

    `applied` holds one identifier per applied migration, in migration order:
    drizzle: `created_at` (the journal entry's `when`, ms), in that order;
    flyway: `version` of each successful versioned migration, by version;
    golang-migrate: the one current `version`; alembic: the current head(s);
    prisma: `migration_name`; liquibase: the changeset `id`; both in the order applied.
    `aliases[i]` are other names of `applied[i]`: drizzle's `hash`, flyway's `script`,
    liquibase's `filename::id::author` and `tag`.
    """

    tool: str
    table: str  # "schema.table" that was read (or looked for)
    found: bool
    applied: tuple[str, ...] = ()
    aliases: tuple[tuple[str, ...], ...] = ()
    failed: tuple[str, ...] = ()  # failed entries not since resolved
    rolled_back: tuple[str, ...] = ()  # prisma entries marked rolled back (resolved failures)
    dirty: bool = False  # golang-migrate's dirty flag
    unreadable: Unreadable | None = None  # there, but this role may not read it


@dataclass(frozen=True, slots=True)
class ObservedPostgres:
    version: str  # server_version, e.g. "15.18"
    version_num: int  # server_version_num, e.g. 150018
    database: str
    schemas: tuple[str, ...]
    tables: tuple[PgTableObs, ...]
    extensions: Mapping[str, str]  # name -> installed version
    # The schemas extensions are installed in (pg_catalog, public, `extensions`...).
    extension_schemas: tuple[str, ...] = ()
    migrations: PgMigrationHistory | None = None
    queries: int = 0  # catalog queries issued, reported by the benchmark


# --- MongoDB ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MongoIndexObs:
    name: str
    keys: tuple[tuple[str, Any], ...]  # (field, 1 | -1 | "text" | ...)
    unique: bool = False
    sparse: bool = False
    expire_after_seconds: int | None = None
    partial_filter_expression: Mapping[str, Any] | None = None
    collation: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class MongoCollectionObs:
    name: str
    type: str  # "collection" | "view" | "timeseries"
    capped: bool = False
    timeseries: Mapping[str, Any] | None = None
    validator: Mapping[str, Any] | None = None
    validation_level: str | None = None
    validation_action: str | None = None
    # None: not read (the probe lists indexes only where the claim documents them)
    indexes: tuple[MongoIndexObs, ...] | None = None


@dataclass(frozen=True, slots=True)
class MongoDatabaseObs:
    name: str
    collections: tuple[MongoCollectionObs, ...] = ()


@dataclass(frozen=True, slots=True)
class ObservedMongo:
    version: str
    replica_set: str | None
    databases: tuple[MongoDatabaseObs, ...]
    all_databases: tuple[str, ...] = ()  # every database name the server listed


# --- NATS JetStream -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NatsConsumerObs:
    name: str
    durable: bool
    ack_policy: str
    deliver_policy: str
    filter_subjects: tuple[str, ...]
    max_deliver: int
    ack_wait_seconds: float
    max_ack_pending: int
    num_pending: int
    num_ack_pending: int
    num_redelivered: int
    # 0 when nothing is outstanding; None when not read: the probe looks it up
    # only for consumers the claim names, and a message already gone cannot be timed.
    # Never too high: when JetStream cannot say which message after the ack floor
    # still awaits an ack (others were acked out of order or exhausted max_deliver),
    # it is a lower bound, `exact` is False and `at_most` the upper bound.
    oldest_unacked_age_seconds: float | None
    oldest_unacked_age_exact: bool = True
    oldest_unacked_age_at_most_seconds: float | None = None
    # Messages that exhausted max_deliver, as counted by a stream recording the
    # consumer's MAX_DELIVERIES advisories; None when no stream records them (the
    # server itself keeps no count).
    num_max_delivered: int | None = None


@dataclass(frozen=True, slots=True)
class NatsStreamObs:
    name: str
    subjects: tuple[str, ...]
    retention: str  # "limits" | "interest" | "workqueue"
    storage: str  # "file" | "memory"
    replicas: int
    max_age_seconds: float  # 0 = unlimited
    max_bytes: int
    max_msgs: int
    max_msg_size: int
    discard: str
    duplicate_window_seconds: float
    allow_direct: bool
    sealed: bool
    mirror: str | None
    sources: tuple[str, ...]
    consumers: tuple[NatsConsumerObs, ...] = ()
    # False when the probe did not list this stream's consumers (the claim does
    # not list them): an empty `consumers` then says nothing.
    consumers_listed: bool = True
    messages: int = 0
    history: int = 1  # max_msgs_per_subject, the KV history


@dataclass(frozen=True, slots=True)
class ObservedNats:
    version: str
    streams: tuple[NatsStreamObs, ...]
    api_requests: int = 0  # JetStream API requests issued, reported by the benchmark


# --- S3 -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class S3LifecycleRuleObs:
    id: str | None
    prefix: str | None
    enabled: bool
    expiration_days: int | None
    noncurrent_expiration_days: int | None


@dataclass(frozen=True, slots=True)
class S3ObjectLockObs:
    enabled: bool
    mode: str | None  # "governance" | "compliance"
    days: int | None
    years: int | None


@dataclass(frozen=True, slots=True)
class S3BucketObs:
    name: str
    exists: bool
    versioning: str | None = None  # "enabled" | "suspended" | "disabled"
    object_lock: S3ObjectLockObs | None = None
    lifecycle: tuple[S3LifecycleRuleObs, ...] = ()
    anonymous_access: str | None = None  # "none" | "read" | "write" | "readwrite"
    encryption: str | None = None  # "none" | "AES256" | "aws:kms"
    tags: Mapping[str, str] = field(default_factory=dict)
    # Facets the probe could not read (claim field name -> why, e.g. "encryption" ->
    # "the server does not implement it"); their values above mean nothing.
    unreadable: Mapping[str, Unreadable] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class S3PrefixObs:
    """The newest object under a prefix, for backup artifacts."""

    bucket: str
    prefix: str
    objects: int  # objects under the prefix, counted while listing
    newest_key: str | None = None
    newest_modified: datetime | None = None
    newest_size: int | None = None
    bucket_exists: bool = True  # False: no bucket, so no objects (not merely an empty prefix)


@dataclass(frozen=True, slots=True)
class ObservedS3:
    buckets: tuple[S3BucketObs, ...]
    all_buckets: tuple[str, ...] = ()
    version: str | None = None


# --- Redis --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RedisKeyPatternObs:
    pattern: str
    scanned: int  # keys matched and examined
    without_ttl: int
    max_ttl_seconds: int | None  # None when no matching key expires
    complete: bool  # the SCAN finished before the sample size was reached


@dataclass(frozen=True, slots=True)
class ObservedRedis:
    version: str
    role: str  # "master" | "replica"
    maxmemory: int  # bytes, 0 = unlimited
    maxmemory_policy: str
    aof: bool
    save: str | None  # RDB save rules, "" when off, None when not read (see `unreadable`)
    keyspace: Mapping[int, int]  # db number -> keys
    key_patterns: tuple[RedisKeyPatternObs, ...] = ()
    # Facts the probe could not read, by claim field: "persistence.save" (CONFIG GET
    # refused or disabled), "patterns.<pattern>" (SCAN or TTL refused).
    unreadable: Mapping[str, Unreadable] = field(default_factory=dict)


Observation = ObservedPostgres | ObservedMongo | ObservedNats | ObservedS3 | ObservedRedis
