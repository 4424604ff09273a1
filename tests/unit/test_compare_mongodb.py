"""compare_mongodb: tables of claims against observed facts, one finding kind at a time.

Several features here cannot be shown on the dev server (FerretDB v1.24 on
SQLite): validators, TTL expiry, collation, capped and time-series collections,
partial filters, sparse indexes and replica sets. Those cases are built from the
observed facts MongoDB reports, which is exactly what the comparer receives.
"""

from __future__ import annotations

from typing import Any

import pytest

from datarch.claims import Store
from datarch.comparison.mongodb import compare_mongodb
from datarch.findings import Finding, FindingKind, Severity, Unchecked
from datarch.observations import (
    MongoCollectionObs,
    MongoDatabaseObs,
    MongoIndexObs,
    ObservedMongo,
)

MISSING, UNEXPECTED, DIFFERENT = FindingKind.MISSING, FindingKind.UNEXPECTED, FindingKind.DIFFERENT
CRITICAL, WARNING = Severity.CRITICAL, Severity.WARNING

ID_INDEX = MongoIndexObs(name="_id_", keys=(("_id", 1),), unique=True)


def claim(
    collections: list[dict[str, Any]] | None = None,
    *,
    strict: bool = False,
    scope: list[str] | None = None,
    **mongodb: Any,
) -> Store:
    """A store whose one documented database, `app`, holds `collections`."""
    if collections is not None:
        mongodb.setdefault("databases", [{"name": "app", "collections": collections}])
    return Store.model_validate(
        {
            "name": "runtime",
            "kind": "mongodb",
            "strict": strict,
            "scope": scope or [],
            "mongodb": mongodb,
        }
    )


def observed(*collections: MongoCollectionObs, replica_set: str | None = None) -> ObservedMongo:
    return ObservedMongo(
        version="7.0.14",
        replica_set=replica_set,
        databases=(MongoDatabaseObs("app", collections),),
        all_databases=("admin", "app"),
    )


def users(*indexes: MongoIndexObs, **fields: Any) -> MongoCollectionObs:
    return MongoCollectionObs(
        name="users", type=fields.pop("type", "collection"), indexes=(ID_INDEX, *indexes), **fields
    )


EMAIL = MongoIndexObs(name="email_1", keys=(("email", 1),), unique=True)


# --- nothing to report ----------------------------------------------------------


@pytest.mark.parametrize(
    ("store", "facts"),
    [
        pytest.param(claim(None), observed(), id="no mongodb block"),
        pytest.param(claim([{"name": "users"}]), observed(users()), id="collection present"),
        pytest.param(
            claim([{"name": "users", "indexes": [{"keys": [{"field": "email"}], "unique": True}]}]),
            observed(users(EMAIL)),
            id="index matched by keys",
        ),
        pytest.param(
            claim(
                [{"name": "users", "indexes": [{"name": "email_1", "keys": [{"field": "email"}]}]}]
            ),
            observed(users(EMAIL)),
            id="index matched by name, unique not stated so not checked",
        ),
        pytest.param(
            claim(
                [
                    {
                        "name": "users",
                        "validator": {"$jsonSchema": {"required": ["email"]}},
                        "validationLevel": "strict",
                        "validationAction": "error",
                    }
                ]
            ),
            observed(users(validator={"$jsonSchema": {"required": ["email"]}})),
            id="validator equal, level and action are the server defaults",
        ),
        pytest.param(
            claim(
                [
                    {
                        "name": "metrics",
                        "type": "timeseries",
                        "timeseries": {"timeField": "ts", "metaField": "host"},
                    }
                ]
            ),
            observed(
                MongoCollectionObs(
                    "metrics",
                    "timeseries",
                    timeseries={"timeField": "ts", "metaField": "host", "granularity": "seconds"},
                )
            ),
            id="time-series options equal, granularity not stated",
        ),
        pytest.param(
            claim(
                [
                    {
                        "name": "sessions",
                        "indexes": [
                            {
                                "keys": [{"field": "created_at"}],
                                "expireAfterSeconds": 86400,
                                "collation": {"locale": "en"},
                            }
                        ],
                    }
                ]
            ),
            observed(
                MongoCollectionObs(
                    "sessions",
                    "collection",
                    indexes=(
                        MongoIndexObs(
                            "created_at_1",
                            (("created_at", 1),),
                            expire_after_seconds=86400,
                            collation={"locale": "en", "strength": 3, "caseLevel": False},
                        ),
                    ),
                )
            ),
            id="TTL and collation equal; collation fields the claim omits are not checked",
        ),
        pytest.param(
            claim([{"name": "users"}], replicaSet="rs0"),
            observed(users(), replica_set="rs0"),
            id="replica set name equal",
        ),
    ],
)
def test_a_store_as_documented_has_no_findings(store: Store, facts: ObservedMongo) -> None:
    assert compare_mongodb(store, facts) == []


def test_documented_indexes_the_probe_did_not_read_are_could_not_check_not_a_pass() -> None:
    store = claim([{"name": "users", "indexes": [{"keys": [{"field": "email"}]}]}])
    facts = observed(MongoCollectionObs("users", "collection", indexes=None))
    assert compare_mongodb(store, facts) == [
        Unchecked("app.users.indexes", "the probe did not read its indexes")
    ]


# --- databases and collections ----------------------------------------------------


def test_a_missing_database_is_a_critical_finding() -> None:
    store = claim(databases=[{"name": "billing", "collections": [{"name": "invoices"}]}])
    assert compare_mongodb(store, observed(users())) == [
        Finding("billing", MISSING, CRITICAL, expected="database")
    ]


def test_a_missing_collection_is_a_critical_finding() -> None:
    store = claim([{"name": "users"}, {"name": "audit", "type": "view"}])
    assert compare_mongodb(store, observed(users())) == [
        Finding("app.audit", MISSING, CRITICAL, expected="view")
    ]


@pytest.mark.parametrize(
    ("collection", "facts", "finding"),
    [
        pytest.param(
            {"name": "users", "type": "collection", "indexes": [{"keys": [{"field": "email"}]}]},
            MongoCollectionObs("users", "view"),
            Finding("app.users.type", DIFFERENT, CRITICAL, expected="collection", observed="view"),
            id="a view where a collection is documented: one finding, indexes not judged",
        ),
        pytest.param(
            {"name": "users", "capped": True},
            users(),
            Finding("app.users.capped", DIFFERENT, CRITICAL, expected="yes", observed="no"),
            id="capped",
        ),
        pytest.param(
            {"name": "users", "capped": False},
            users(capped=True),
            Finding("app.users.capped", DIFFERENT, CRITICAL, expected="no", observed="yes"),
            id="capped where the docs say not",
        ),
        pytest.param(
            {"name": "users", "timeseries": {"timeField": "ts"}},
            users(),
            Finding(
                "app.users.timeseries",
                DIFFERENT,
                CRITICAL,
                expected="timeField ts",
                observed="not a time-series collection",
            ),
            id="time-series options on a plain collection",
        ),
        pytest.param(
            {"name": "users", "timeseries": {"timeField": "ts", "metaField": "host"}},
            users(type="timeseries", timeseries={"timeField": "at", "metaField": "host"}),
            Finding(
                "app.users.timeseries.timeField", DIFFERENT, CRITICAL, expected="ts", observed="at"
            ),
            id="time field",
        ),
        pytest.param(
            {"name": "users", "timeseries": {"timeField": "ts", "metaField": "host"}},
            users(type="timeseries", timeseries={"timeField": "ts"}),
            Finding(
                "app.users.timeseries.metaField",
                DIFFERENT,
                CRITICAL,
                expected="host",
                observed="none",
            ),
            id="meta field",
        ),
        pytest.param(
            {"name": "users", "timeseries": {"timeField": "ts", "granularity": "hours"}},
            users(type="timeseries", timeseries={"timeField": "ts", "granularity": "seconds"}),
            Finding(
                "app.users.timeseries.granularity",
                DIFFERENT,
                WARNING,
                expected="hours",
                observed="seconds",
            ),
            id="granularity is a warning: it tunes storage, not what is stored",
        ),
        pytest.param(
            {"name": "users", "validator": {"email": {"$type": "string"}}},
            users(),
            Finding(
                "app.users.validator",
                DIFFERENT,
                WARNING,
                expected='{"email":{"$type":"string"}}',
                observed="none",
            ),
            id="validator missing",
        ),
        pytest.param(
            {"name": "users", "validator": {"email": {"$type": "string"}}},
            users(validator={"email": {"$type": "int"}}),
            Finding(
                "app.users.validator",
                DIFFERENT,
                WARNING,
                expected='{"email":{"$type":"string"}}',
                observed='{"email":{"$type":"int"}}',
            ),
            id="validator different",
        ),
        pytest.param(
            {"name": "users", "validationLevel": "moderate"},
            users(validator={"a": 1}),
            Finding(
                "app.users.validationLevel",
                DIFFERENT,
                WARNING,
                expected="moderate",
                observed="strict",
            ),
            id="validation level, unstated on the server means strict",
        ),
        pytest.param(
            {"name": "users", "validationAction": "error"},
            users(validator={"a": 1}, validation_action="warn"),
            Finding(
                "app.users.validationAction", DIFFERENT, WARNING, expected="error", observed="warn"
            ),
            id="validation action",
        ),
    ],
)
def test_a_collection_unlike_its_documentation_is_a_finding(
    collection: dict[str, Any], facts: MongoCollectionObs, finding: Finding
) -> None:
    assert compare_mongodb(claim([collection]), observed(facts)) == [finding]


def test_a_long_validator_is_shortened_in_the_finding() -> None:
    wanted = {"$jsonSchema": {"required": [f"field_{n}" for n in range(40)]}}
    [finding] = compare_mongodb(claim([{"name": "users", "validator": wanted}]), observed(users()))
    assert finding.expected is not None
    assert len(finding.expected) == 160
    assert finding.expected.endswith("…")


# --- indexes --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("index", "facts", "finding"),
    [
        pytest.param(
            {"keys": [{"field": "user_id"}, {"field": "created_at", "order": -1}]},
            users(),
            Finding(
                "app.users.indexes.user_id_1_created_at_-1",
                MISSING,
                WARNING,
                expected="{user_id: 1, created_at: -1}",
            ),
            id="missing index is a warning, named as MongoDB would name it",
        ),
        pytest.param(
            {"keys": [{"field": "email"}], "unique": True},
            users(),
            Finding("app.users.indexes.email_1", MISSING, CRITICAL, expected="unique {email: 1}"),
            id="missing unique index is critical",
        ),
        pytest.param(
            {"keys": [{"field": "email", "order": -1}], "unique": True},
            users(EMAIL),
            Finding("app.users.indexes.email_-1", MISSING, CRITICAL, expected="unique {email: -1}"),
            id="the key order is part of the match",
        ),
        pytest.param(
            {"name": "by_email", "keys": [{"field": "email"}]},
            users(MongoIndexObs("by_email", (("email", 1), ("org", 1)))),
            Finding(
                "app.users.indexes.by_email.keys",
                DIFFERENT,
                WARNING,
                expected="{email: 1}",
                observed="{email: 1, org: 1}",
            ),
            id="a named index is matched by name, then its keys compared",
        ),
        pytest.param(
            {"name": "by_email", "keys": [{"field": "email"}], "unique": True},
            users(EMAIL),
            Finding(
                "app.users.indexes.by_email.name",
                DIFFERENT,
                WARNING,
                expected="by_email",
                observed="email_1",
            ),
            id="a renamed index is a different name, not a missing unique index",
        ),
        pytest.param(
            {"keys": [{"field": "email"}], "unique": True},
            users(MongoIndexObs("email_1", (("email", 1),))),
            Finding(
                "app.users.indexes.email_1.unique",
                DIFFERENT,
                CRITICAL,
                expected="yes",
                observed="no",
            ),
            id="not unique where documented unique is critical",
        ),
        pytest.param(
            {"keys": [{"field": "email"}], "unique": False},
            users(EMAIL),
            Finding(
                "app.users.indexes.email_1.unique",
                DIFFERENT,
                WARNING,
                expected="no",
                observed="yes",
            ),
            id="unique where documented not unique is a warning",
        ),
        pytest.param(
            {"keys": [{"field": "email"}], "sparse": True},
            users(EMAIL),
            Finding(
                "app.users.indexes.email_1.sparse",
                DIFFERENT,
                WARNING,
                expected="yes",
                observed="no",
            ),
            id="sparse",
        ),
        pytest.param(
            {"keys": [{"field": "created_at"}], "expireAfterSeconds": 86400},
            users(MongoIndexObs("created_at_1", (("created_at", 1),), expire_after_seconds=3600)),
            Finding(
                "app.users.indexes.created_at_1.expireAfterSeconds",
                DIFFERENT,
                WARNING,
                expected="86400s",
                observed="3600s",
            ),
            id="different TTL",
        ),
        pytest.param(
            {"keys": [{"field": "created_at"}], "expireAfterSeconds": 86400},
            users(MongoIndexObs("created_at_1", (("created_at", 1),))),
            Finding(
                "app.users.indexes.created_at_1.expireAfterSeconds",
                DIFFERENT,
                WARNING,
                expected="86400s",
                observed="no TTL",
            ),
            id="no TTL at all",
        ),
        pytest.param(
            {"keys": [{"field": "email"}], "partialFilterExpression": {"active": True}},
            users(EMAIL),
            Finding(
                "app.users.indexes.email_1.partialFilterExpression",
                DIFFERENT,
                WARNING,
                expected='{"active":true}',
                observed="none",
            ),
            id="partial filter",
        ),
        pytest.param(
            {"keys": [{"field": "email"}], "collation": {"locale": "fr", "strength": 2}},
            users(
                MongoIndexObs("email_1", (("email", 1),), collation={"locale": "fr", "strength": 3})
            ),
            Finding(
                "app.users.indexes.email_1.collation",
                DIFFERENT,
                WARNING,
                expected="fr strength 2",
                observed="fr strength 3",
            ),
            id="collation strength",
        ),
        pytest.param(
            {"keys": [{"field": "email"}], "collation": {"locale": "fr"}},
            users(EMAIL),
            Finding(
                "app.users.indexes.email_1.collation",
                DIFFERENT,
                WARNING,
                expected="fr",
                observed="none",
            ),
            id="no collation",
        ),
    ],
)
def test_an_index_unlike_its_documentation_is_a_finding(
    index: dict[str, Any], facts: MongoCollectionObs, finding: Finding
) -> None:
    assert compare_mongodb(claim([{"name": "users", "indexes": [index]}]), observed(facts)) == [
        finding
    ]


def test_of_two_indexes_on_the_same_keys_the_one_agreeing_with_the_claim_is_matched() -> None:
    """MongoDB allows the same keys twice when the collation or partial filter differs."""
    store = claim(
        [
            {
                "name": "users",
                "indexes": [{"keys": [{"field": "email"}], "collation": {"locale": "fr"}}],
            }
        ],
        strict=True,
    )
    plain = MongoIndexObs("email_1", (("email", 1),))
    french = MongoIndexObs("email_fr", (("email", 1),), collation={"locale": "fr", "strength": 3})
    assert compare_mongodb(store, observed(users(plain, french))) == [
        Finding("app.users.indexes.email_1", UNEXPECTED, WARNING, observed="{email: 1}")
    ]


def test_a_replica_set_documented_but_standalone_is_a_critical_finding() -> None:
    assert compare_mongodb(claim([], replicaSet="rs0"), observed()) == [
        Finding("replicaSet", DIFFERENT, CRITICAL, expected="rs0", observed="standalone")
    ]


# --- strict mode ----------------------------------------------------------------


def test_strict_mode_reports_undocumented_collections_and_indexes_but_never_id() -> None:
    store = claim(
        [{"name": "users", "indexes": [{"keys": [{"field": "email"}], "unique": True}]}],
        strict=True,
    )
    facts = observed(
        users(EMAIL, MongoIndexObs("org_1", (("org", 1), ("age", -1)))),
        MongoCollectionObs("scratch", "collection"),
        MongoCollectionObs("recent", "view"),
        # The server's own collections are not the application's to document.
        MongoCollectionObs("system.views", "collection"),
        MongoCollectionObs("system.buckets.metrics", "collection"),
    )
    assert compare_mongodb(store, facts) == [
        Finding("app.users.indexes.org_1", UNEXPECTED, WARNING, observed="{org: 1, age: -1}"),
        Finding("app.scratch", UNEXPECTED, WARNING, observed="collection"),
        Finding("app.recent", UNEXPECTED, WARNING, observed="view"),
    ]


def test_strict_mode_counts_only_inside_the_documented_databases() -> None:
    store = claim([{"name": "users"}], strict=True)
    facts = ObservedMongo(
        version="7.0.14",
        replica_set=None,
        databases=(MongoDatabaseObs("app", (users(),)),),
        all_databases=("admin", "app", "other", "local"),
    )
    assert compare_mongodb(store, facts) == []


def test_strict_mode_scope_globs_limit_what_is_counted() -> None:
    store = claim(
        [{"name": "THE0_users", "indexes": []}, {"name": "legacy", "indexes": []}],
        strict=True,
        scope=["THE0_*", "app.audit_*"],
    )
    index = MongoIndexObs("org_1", (("org", 1),))
    facts = observed(
        MongoCollectionObs("THE0_users", "collection", indexes=(ID_INDEX, index)),
        MongoCollectionObs("legacy", "collection", indexes=(ID_INDEX, index)),
        MongoCollectionObs("THE0_jobs", "collection"),
        MongoCollectionObs("audit_2024", "collection"),
        MongoCollectionObs("scratch", "collection"),
    )
    assert compare_mongodb(store, facts) == [
        Finding("app.THE0_users.indexes.org_1", UNEXPECTED, WARNING, observed="{org: 1}"),
        Finding("app.THE0_jobs", UNEXPECTED, WARNING, observed="collection"),
        Finding("app.audit_2024", UNEXPECTED, WARNING, observed="collection"),
    ]


def test_strict_mode_leaves_alone_what_the_claim_does_not_list() -> None:
    """A database without a collections list, or a collection without indexes, is not enumerated."""
    store = claim(
        strict=True,
        databases=[{"name": "app", "collections": [{"name": "users"}]}, {"name": "logs"}],
    )
    facts = ObservedMongo(
        version="7.0.14",
        replica_set=None,
        databases=(
            MongoDatabaseObs("app", (users(MongoIndexObs("org_1", (("org", 1),))),)),
            MongoDatabaseObs("logs", (MongoCollectionObs("anything", "collection"),)),
        ),
    )
    assert compare_mongodb(store, facts) == []


def test_without_strict_mode_undocumented_objects_are_not_findings() -> None:
    store = claim([{"name": "users", "indexes": []}])
    facts = observed(
        users(MongoIndexObs("org_1", (("org", 1),))), MongoCollectionObs("scratch", "collection")
    )
    assert compare_mongodb(store, facts) == []
