"""The MongoDB probe against FerretDB v1.24 (SQLite backend), the dev server.

What FerretDB v1.24 can show, and so what these tests create and observe:
collections, capped collections, and indexes with their key fields, order and
uniqueness. What it cannot (`create`/`createIndexes` answer NotImplemented,
code 238): validators with their level and action, time-series collections,
views, TTL `expireAfterSeconds`, partial filters and collations; it also
accepts `sparse: true` and then does not report it, and runs standalone, with
no replica set name. Nor has it `$listCatalog`, so the probe's fallback
(listCollections plus concurrent listIndexes) is what runs here; the catalog
path is covered by entries shaped as MongoDB's own tests show them. The
comparer's unit tables cover every one of these features with observed facts.
"""

from __future__ import annotations

import asyncio
import errno
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydantic import SecretStr
from pymongo import AsyncMongoClient, monitoring
from pymongo.database import Database
from pymongo.errors import OperationFailure

from conftest import free_port
from datarch.claims import Store
from datarch.comparison.mongodb import compare_mongodb
from datarch.errors import AccessDenied, StoreTimeout, StoreUnreachable
from datarch.findings import Finding, FindingKind, Severity
from datarch.observations import MongoCollectionObs, MongoDatabaseObs, MongoIndexObs
from datarch.probes.base import ClientPool, Target
from datarch.probes.mongodb import client_options, observe

pytestmark = pytest.mark.integration

# Commands that only read: the catalog, server facts, cursor paging and session cleanup.
READ_COMMANDS = frozenset(
    {
        "hello",
        "isMaster",
        "buildInfo",
        "ping",
        "listDatabases",
        "listCollections",
        "listIndexes",
        "aggregate",
        "getMore",
        "killCursors",
        "endSessions",
    }
)
# Aggregation stages that write; none may appear in an aggregate the probe sends.
WRITING_STAGES = frozenset({"$out", "$merge"})

ID_INDEX = MongoIndexObs("_id_", (("_id", 1),), unique=True)


def mongo_store(strict: bool = False, **mongodb: Any) -> Store:
    return Store.model_validate(
        {"name": "runtime", "kind": "mongodb", "strict": strict, "mongodb": mongodb or None}
    )


def target(store: Store, uri: str, timeout: float = 5.0) -> Target:
    """The URI arrives as the Secret's `uri` key, as it would in a cluster."""
    return Target(store=store, timeout=timeout, secret=SecretStr(uri), secret_key="uri")


class CommandRecorder(monitoring.CommandListener):
    """Every command the client sends, as pymongo's command monitoring publishes it."""

    def __init__(self) -> None:
        self.commands: list[tuple[str, dict[str, Any]]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.commands.append((event.command_name, dict(event.command)))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture
def mongo_uri() -> str:
    uri = os.environ.get("DATARCH_MONGO_URI")
    if not uri:
        pytest.fail(
            'DATARCH_MONGO_URI is not set: `make env` and `eval "$(make -s env-vars)"`.',
            pytrace=False,
        )
    return uri


@pytest.fixture
def shop(mongo_database: Database[Any]) -> Iterator[Database[Any]]:
    """A database with what FerretDB can hold: plain and capped collections, indexes."""
    mongo_database.create_collection("users")
    mongo_database.users.create_index("email", unique=True)
    mongo_database.users.create_index([("org_id", 1), ("created_at", -1)], name="by_org")
    mongo_database.users.create_index("nickname", sparse=True)
    mongo_database.create_collection("events", capped=True, size=65536)
    mongo_database.create_collection("scratch")
    yield mongo_database


@pytest.fixture
def silent_server(silent_port: int) -> str:
    """A URI whose server accepts TCP connections and never answers a byte."""
    return f"mongodb://127.0.0.1:{silent_port}/"


@pytest.fixture
def refusing_uri() -> str:
    """A URI on a loopback port nothing listens on."""
    return f"mongodb://127.0.0.1:{free_port()}/"


# --- what is observed ------------------------------------------------------------------


async def test_collections_and_indexes_are_observed_as_ferretdb_reports_them(
    shop: Database[Any], mongo_uri: str
) -> None:
    store = mongo_store(
        databases=[
            {
                "name": shop.name,
                "collections": [{"name": "users", "indexes": []}, {"name": "events"}],
            }
        ]
    )
    observed = await observe(target(store, mongo_uri))

    assert observed.version == "7.0.42"  # FerretDB's buildInfo answers as the MongoDB it emulates
    assert observed.replica_set is None
    assert shop.name in observed.all_databases
    assert observed.databases == (
        MongoDatabaseObs(
            shop.name,
            (
                # Indexes are read only where the claim lists them.
                MongoCollectionObs("events", "collection", capped=True, indexes=None),
                MongoCollectionObs(
                    "users",
                    "collection",
                    indexes=(
                        ID_INDEX,
                        MongoIndexObs("by_org", (("org_id", 1), ("created_at", -1))),
                        MongoIndexObs("email_1", (("email", 1),), unique=True),
                        # Created sparse; FerretDB v1.24 does not report it.
                        MongoIndexObs("nickname_1", (("nickname", 1),), sparse=False),
                    ),
                ),
            ),
        ),
    )


async def test_a_claim_that_matches_ferretdb_has_no_findings_and_a_drifted_one_does(
    shop: Database[Any], mongo_uri: str
) -> None:
    users = {
        "name": "users",
        "indexes": [
            {"keys": [{"field": "email"}], "unique": True},
            {"name": "by_org", "keys": [{"field": "org_id"}, {"field": "created_at", "order": -1}]},
            {"keys": [{"field": "nickname"}]},
        ],
    }
    events = {"name": "events", "type": "collection", "capped": True}
    matching = mongo_store(
        strict=True,
        databases=[{"name": shop.name, "collections": [users, events, {"name": "scratch"}]}],
    )
    assert compare_mongodb(matching, await observe(target(matching, mongo_uri))) == []

    shop.users.drop_index("email_1")
    shop.create_collection("undocumented")
    drifted = mongo_store(
        strict=True,
        databases=[
            {"name": shop.name, "collections": [users, events, {"name": "scratch"}]},
            {"name": f"{shop.name}_gone"},
        ],
    )
    assert compare_mongodb(drifted, await observe(target(drifted, mongo_uri))) == [
        Finding(
            f"{shop.name}.users.indexes.email_1",
            FindingKind.MISSING,
            Severity.CRITICAL,
            expected="unique {email: 1}",
        ),
        Finding(
            f"{shop.name}.undocumented",
            FindingKind.UNEXPECTED,
            Severity.WARNING,
            observed="collection",
        ),
        Finding(f"{shop.name}_gone", FindingKind.MISSING, Severity.CRITICAL, expected="database"),
    ]


async def test_only_documented_collections_are_read_unless_strict_mode_needs_them_all(
    shop: Database[Any], mongo_uri: str
) -> None:
    databases = [{"name": shop.name, "collections": [{"name": "users"}]}]

    relaxed = await observe(target(mongo_store(databases=databases), mongo_uri))
    strict = await observe(target(mongo_store(strict=True, databases=databases), mongo_uri))

    assert [c.name for c in relaxed.databases[0].collections] == ["users"]
    assert [c.name for c in strict.databases[0].collections] == ["events", "scratch", "users"]


async def test_a_database_the_server_lacks_is_left_out_of_the_observation(
    mongo_database: Database[Any], mongo_uri: str
) -> None:
    mongo_database.create_collection("present")
    store = mongo_store(
        databases=[{"name": "nowhere_" + mongo_database.name}, {"name": mongo_database.name}]
    )

    observed = await observe(target(store, mongo_uri))

    assert [database.name for database in observed.databases] == [mongo_database.name]


async def test_without_a_mongodb_block_only_server_facts_are_read(mongo_uri: str) -> None:
    recorder = CommandRecorder()
    pool = ClientPool()
    probe_target = target(mongo_store(), mongo_uri)
    await pool.get(probe_target.pool_key, lambda: recorded_client(probe_target, recorder), close)
    try:
        observed = await observe(probe_target, pool)
    finally:
        await pool.close()

    assert (observed.version, observed.replica_set, observed.databases) == ("7.0.42", None, ())
    assert {name for name, _ in recorder.commands} == {"hello", "buildInfo", "endSessions"}


def test_ferretdb_refuses_what_the_comparer_is_tested_for_with_observed_facts(
    mongo_database: Database[Any],
) -> None:
    """If this fails, FerretDB learned a feature: observe it here instead of in unit tables only."""
    mongo_database.create_collection("base")
    refused: dict[str, Callable[[], object]] = {
        "validator": lambda: mongo_database.create_collection(
            "validated", validator={"a": {"$type": "string"}}
        ),
        "timeseries": lambda: mongo_database.create_collection(
            "series", timeseries={"timeField": "ts"}
        ),
        "view": lambda: mongo_database.command("create", "view", viewOn="base", pipeline=[]),
        "ttl": lambda: mongo_database.base.create_index("at", expireAfterSeconds=60),
        "partial": lambda: mongo_database.base.create_index(
            "a", partialFilterExpression={"a": {"$gt": 1}}
        ),
        "collation": lambda: mongo_database.base.create_index("b", collation={"locale": "fr"}),
    }
    codes = {}
    for feature, attempt in refused.items():
        with pytest.raises(OperationFailure) as raised:
            attempt()
        codes[feature] = raised.value.code
    assert codes == dict.fromkeys(refused, 238)  # NotImplemented


# --- read only ------------------------------------------------------------------------


async def recorded_client(probe_target: Target, recorder: CommandRecorder) -> AsyncMongoClient[Any]:
    """The client observe would open, plus a command listener."""
    uri = probe_target.secret.get_secret_value() if probe_target.secret else ""
    return AsyncMongoClient(uri, **client_options(probe_target), event_listeners=[recorder])


async def close(client: AsyncMongoClient[Any]) -> None:
    await client.close()


async def test_the_probe_sends_only_read_commands(shop: Database[Any], mongo_uri: str) -> None:
    """FerretDB v1.24 has no read-only user to prove this with.

    Without the experimental `--test-enable-new-auth` it has no createUser at
    all (CommandNotFound) and accepts any PLAIN credentials on SQLite; with it,
    createUser rejects every role (`roles` must be empty) and an authenticated
    user may write anything. So the proof is the other way round: every command
    the probe's client issues is recorded through pymongo's command monitoring,
    in strict mode with indexes documented (the widest observation), and each
    must be a read.
    """
    store = mongo_store(
        strict=True,
        replicaSet="rs0",
        databases=[
            {
                "name": shop.name,
                "collections": [
                    {"name": "users", "indexes": []},
                    {"name": "events", "indexes": []},
                ],
            },
            {"name": "nowhere_" + shop.name},
        ],
    )
    probe_target = target(store, mongo_uri)
    recorder = CommandRecorder()
    pool = ClientPool()
    await pool.get(probe_target.pool_key, lambda: recorded_client(probe_target, recorder), close)
    try:
        await observe(probe_target, pool)
    finally:
        await pool.close()

    names = Counter(name for name, _ in recorder.commands)
    assert set(names) <= READ_COMMANDS, names
    stages = {
        stage
        for name, command in recorder.commands
        if name == "aggregate"
        for step in command["pipeline"]
        for stage in step
    }
    assert stages == {"$listCatalog", "$match"}
    assert not stages & WRITING_STAGES
    # The round trips on a server without $listCatalog: one concurrent round of
    # four, listCollections per existing database, listIndexes per documented collection.
    assert names == Counter(
        hello=1,
        buildInfo=1,
        listDatabases=1,
        aggregate=1,
        listCollections=1,
        listIndexes=2,
        endSessions=1,
    )


# --- failures -----------------------------------------------------------------------------


async def test_a_server_that_never_answers_is_a_store_timeout_within_the_timeout(
    silent_server: str,
) -> None:
    started = time.monotonic()
    # The probe's own budget, 0.9 of the claim's 1s, is what fires and says so: the error is
    # the probe's, and verification's deadline at the claim's timeout never has to cut it.
    with pytest.raises(StoreTimeout, match=r"^while reading MongoDB: no answer within 0\.9s$"):
        await observe(target(mongo_store(), silent_server, timeout=1.0))
    # Slack for a loaded machine; the driver's own default (30s server selection) is far past.
    assert time.monotonic() - started < 2.5


async def test_a_refused_connection_is_unreachable_and_drops_the_pooled_client(
    refusing_uri: str,
) -> None:
    pool = ClientPool()
    with pytest.raises(StoreUnreachable) as raised:
        # Inside a caller's deadline of the claim's timeout, as verification sets it: an
        # `absent: true` store must read as refused, not as timed out. 2s leaves the probe's
        # budget (1.8s) a margin over the time it takes to start, on a loaded machine too.
        await asyncio.wait_for(observe(target(mongo_store(), refusing_uri, timeout=2.0), pool), 2.0)

    assert not isinstance(raised.value, StoreTimeout)
    assert str(raised.value).startswith("while connecting to MongoDB: 127.0.0.1:")
    assert f"[Errno {errno.ECONNREFUSED}]" in str(raised.value)
    assert raised.value.__cause__ is not None
    assert len(pool) == 0


async def test_refused_credentials_are_access_denied_and_never_quoted(mongo_uri: str) -> None:
    """FerretDB on SQLite answers SCRAM with AuthenticationFailed (18): PLAIN is all it has."""
    host = mongo_uri.split("://", 1)[1]
    uri = f"mongodb://reader:s3cret-Pa55word@{host}"
    with pytest.raises(AccessDenied) as raised:
        await observe(target(mongo_store(), uri))

    assert str(raised.value).startswith("while reading the MongoDB ")
    assert "s3cret-Pa55word" not in str(raised.value)
    assert isinstance(raised.value.__cause__, OperationFailure)
    assert raised.value.__cause__.code == 18


async def test_a_pool_reuses_one_client_across_observations(
    shop: Database[Any], mongo_uri: str
) -> None:
    store = mongo_store(databases=[{"name": shop.name}])
    pool = ClientPool()
    try:
        first = await observe(target(store, mongo_uri), pool)
        second = await observe(target(store, mongo_uri), pool)
    finally:
        await pool.close()

    assert first == second
    assert pool.opened == 1
