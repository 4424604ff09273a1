"""MongoDB probe: server facts, collections and indexes through pymongo's async API; never writes.

Round trips: one concurrent round of hello, buildInfo, listDatabases and a
collectionless `$listCatalog` aggregation (every collection and index of the
claimed databases at once). A server without `$listCatalog` (before 6.0,
FerretDB, restricted Atlas tiers) gets listCollections per claimed database,
then concurrent listIndexes for the collections whose indexes the claim
documents. Every command is a read; only names from the claim travel, and only
as command arguments.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar

import pymongo
from pymongo import AsyncMongoClient
from pymongo.errors import (
    ExecutionTimeout,
    NetworkTimeout,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
    WaitQueueTimeoutError,
)

from datarch.claims import MongoDatabase, MongoExpectations
from datarch.errors import AccessDenied, StoreError, StoreTimeout, StoreUnreachable
from datarch.observations import (
    MongoCollectionObs,
    MongoDatabaseObs,
    MongoIndexObs,
    ObservedMongo,
)
from datarch.probes.base import ClientPool, Target, lease

T = TypeVar("T")
Client = AsyncMongoClient[dict[str, Any]]

# AuthenticationFailed, Unauthorized: the credentials or the role, not the network.
_ACCESS_DENIED_CODES = frozenset({18, 13})
# How a server says it has no collectionless $listCatalog for us: FailedToParse
# (FerretDB: "aggregate must specify a collection name"), CommandNotFound,
# Unauthorized (a role without it may still list per database), NotImplemented,
# InvalidNamespace, Atlas's AtlasError, and "unrecognized pipeline stage".
_NO_LIST_CATALOG_CODES = frozenset({9, 59, 13, 238, 73, 8000, 40324})
# A verifier should not claim a hundred connections of a production server.
_MAX_POOL_SIZE = 8
_CREDENTIALS_IN_URI = re.compile(r"(?<=://)[^/@]*@")


def budget_seconds(target: Target) -> float:
    """The driver's deadline: a little under the claim's timeout.

    The caller cancels the probe at the claim's timeout; finishing first lets the
    driver's own error say what happened. That matters most for a refused
    connection, which pymongo reports only when server selection gives up: past
    the caller's deadline it would read as a timeout, and an `absent: true`
    store that is indeed absent would look unverifiable.
    """
    return target.timeout - min(1.0, target.timeout / 10)


def client_options(target: Target) -> dict[str, Any]:
    """Driver options for a client that observes `target`; tests add their own listeners to these."""
    timeout_ms = max(1, round(budget_seconds(target) * 1000))
    return {
        "serverSelectionTimeoutMS": timeout_ms,
        "connectTimeoutMS": timeout_ms,
        "socketTimeoutMS": timeout_ms,
        "appname": "datarch",
        "maxPoolSize": _MAX_POOL_SIZE,
        # The catalog is read from a secondary when no primary is there, rather than not at all.
        "readPreference": "primaryPreferred",
    }


async def observe(target: Target, clients: ClientPool | None = None) -> ObservedMongo:
    async with lease(clients, target.pool_key, lambda: _open(target), _close) as client:
        return await _observe_in_time(client, target)


async def _open(target: Target) -> Client:
    uri = target.secret.get_secret_value() if target.secret is not None else target.url
    if not uri:
        raise StoreUnreachable(
            "while connecting to MongoDB: no URI (secretRef key `uri` or connection.url)"
        )
    try:
        # Connecting is lazy: nothing is sent before the first command.
        return AsyncMongoClient(uri, **client_options(target))
    except PyMongoError as error:
        raise _store_error(error, "connecting to MongoDB", target) from error


async def _close(client: Client) -> None:
    await client.close()


async def _observe_in_time(client: Client, target: Target) -> ObservedMongo:
    """`_observe` cut at the budget, even where the driver would overrun it.

    pymongo re-checks server selection every half second, so a refused server
    is reported up to 0.5 s after serverSelectionTimeoutMS; past the budget the
    server's last check in the topology says whether it refused or kept silent.
    """
    budget = budget_seconds(target)
    try:
        async with asyncio.timeout(budget):
            return await _observe(client, target)
    except TimeoutError as error:
        for server in client.topology_description.server_descriptions().values():
            # A check that failed other than by timing out: refused, DNS, TLS.
            if server.error is not None and "timed out" not in str(server.error):
                raise _store_error(server.error, "connecting to MongoDB", target) from error
        raise StoreTimeout(f"while reading MongoDB: no answer within {budget:g}s") from error


async def _observe(client: Client, target: Target) -> ObservedMongo:
    expected = target.store.mongodb
    claimed = _claimed_databases(expected)
    # One deadline for the whole observation, whatever the pooled client was opened with.
    with pymongo.timeout(budget_seconds(target)):
        hello, build_info, all_databases, catalog = await _gather(
            _command(client, "hello", "reading the MongoDB replica set name", target),
            _command(client, "buildInfo", "reading the MongoDB server version", target),
            _list_database_names(client, target) if claimed else _nothing(()),
            _list_catalog(client, list(claimed), target) if claimed else _nothing(None),
        )
        existing = [claimed[name] for name in claimed if name in all_databases]
        strict = target.store.strict
        if catalog is not None:
            databases = await _databases_from_catalog(client, existing, catalog, target)
        else:
            databases = await _databases_from_listings(client, existing, strict, target)
    return ObservedMongo(
        version=str(build_info.get("version", "")),
        replica_set=hello.get("setName"),
        databases=tuple(databases),
        all_databases=tuple(all_databases),
    )


def _claimed_databases(expected: MongoExpectations | None) -> dict[str, MongoDatabase]:
    if expected is None:
        return {}
    # A database named twice is read once; the first mention decides what is read.
    claimed: dict[str, MongoDatabase] = {}
    for database in expected.databases or ():
        claimed.setdefault(database.name, database)
    return claimed


def _documented_indexes(database: MongoDatabase) -> set[str]:
    """Collections whose indexes the claim lists: the only ones worth a listIndexes."""
    return {c.name for c in database.collections or () if c.indexes is not None}


# --- round one: server facts, database names, the catalog -------------------------


async def _command(client: Client, name: str, doing: str, target: Target) -> dict[str, Any]:
    try:
        reply: dict[str, Any] = await client.admin.command(name)
    except OperationFailure as error:
        if name == "hello" and error.code == 59:
            # Servers before 4.4.2 only know the legacy name.
            return await _command(client, "isMaster", doing, target)
        raise _store_error(error, doing, target) from error
    except PyMongoError as error:
        raise _store_error(error, doing, target) from error
    return reply


async def _list_database_names(client: Client, target: Target) -> list[str]:
    try:
        return await client.list_database_names()
    except PyMongoError as error:
        raise _store_error(error, "listing MongoDB databases", target) from error


async def _list_catalog(
    client: Client, databases: list[str], target: Target
) -> list[dict[str, Any]] | None:
    """Every catalog entry of `databases`, or None when the server has no $listCatalog for us."""
    pipeline: list[dict[str, Any]] = [{"$listCatalog": {}}, {"$match": {"db": {"$in": databases}}}]
    try:
        cursor = await client.admin.aggregate(pipeline)
        entries: list[dict[str, Any]] = await cursor.to_list()
    except OperationFailure as error:
        if error.code in _NO_LIST_CATALOG_CODES:
            return None
        raise _store_error(error, "reading the MongoDB catalog", target) from error
    except PyMongoError as error:
        raise _store_error(error, "reading the MongoDB catalog", target) from error
    return entries


async def _nothing(value: T) -> T:
    return value


# --- round two (and three): collections and indexes ---------------------------------


async def _databases_from_catalog(
    client: Client,
    databases: Sequence[MongoDatabase],
    catalog: Iterable[Mapping[str, Any]],
    target: Target,
) -> list[MongoDatabaseObs]:
    collections = catalog_collections(catalog)
    # A time-series collection's indexes live on its buckets in the catalog, in
    # the buckets' own key format; listIndexes translates them back.
    pending = [
        (database.name, collection.name)
        for database in databases
        for collection in collections.get(database.name, ())
        if collection.type == "timeseries" and collection.name in _documented_indexes(database)
    ]
    listed = await _gather(*(_list_indexes(client, db, name, target) for db, name in pending))
    translated = dict(zip(pending, listed, strict=True))
    observed = []
    for database in databases:
        observed_collections = tuple(
            replace(
                collection,
                indexes=translated.get((database.name, collection.name), collection.indexes),
            )
            for collection in collections.get(database.name, ())
        )
        observed.append(MongoDatabaseObs(database.name, observed_collections))
    return observed


def catalog_collections(
    catalog: Iterable[Mapping[str, Any]],
) -> dict[str, list[MongoCollectionObs]]:
    """Collections by database from `$listCatalog` entries (db, name, type, md.options, md.indexes).

    A time-series collection appears twice before MongoDB 8.0: as a `timeseries`
    entry viewing `system.buckets.<name>`, whose entry holds the options. A
    sharded cluster lists a collection once per shard; the first is kept.
    """
    entries = {(e.get("db"), e.get("name")): e for e in reversed(list(catalog))}
    collections: dict[str, list[MongoCollectionObs]] = {}
    for (database, name), entry in sorted(
        entries.items(), key=lambda item: (str(item[0][0]), str(item[0][1]))
    ):
        if not isinstance(database, str) or not isinstance(name, str):
            continue
        kind = str(entry.get("type", "collection"))
        metadata = entry.get("md") or {}
        options = metadata.get("options") or {}
        if kind == "timeseries" and "timeseries" not in options:
            buckets = entries.get((database, f"system.buckets.{name}"), {})
            options = (buckets.get("md") or {}).get("options") or {}
        indexes: tuple[MongoIndexObs, ...] | None = None
        if kind == "collection":
            indexes = tuple(
                _index(index["spec"])
                for index in metadata.get("indexes") or ()
                # An index still being built is not listed by listIndexes either.
                if index.get("ready", True) and "spec" in index
            )
        collections.setdefault(database, []).append(_collection(name, kind, options, indexes))
    return collections


async def _databases_from_listings(
    client: Client, databases: Sequence[MongoDatabase], strict: bool, target: Target
) -> list[MongoDatabaseObs]:
    listings = await _gather(
        *(_list_collections(client, database, strict, target) for database in databases)
    )
    pending = [
        (database.name, info["name"])
        for database, infos in zip(databases, listings, strict=True)
        for info in infos
        if info.get("type", "collection") != "view"
        and info["name"] in _documented_indexes(database)
    ]
    listed = await _gather(*(_list_indexes(client, db, name, target) for db, name in pending))
    indexes = dict(zip(pending, listed, strict=True))
    return [
        MongoDatabaseObs(
            database.name,
            tuple(
                _collection(
                    info["name"],
                    str(info.get("type", "collection")),
                    info.get("options") or {},
                    indexes.get((database.name, info["name"])),
                )
                for info in sorted(infos, key=lambda info: str(info["name"]))
            ),
        )
        for database, infos in zip(databases, listings, strict=True)
    ]


async def _list_collections(
    client: Client, database: MongoDatabase, strict: bool, target: Target
) -> Sequence[Mapping[str, Any]]:
    # Strict mode needs every name; otherwise only the documented collections matter.
    names = (
        None if strict or database.collections is None else [c.name for c in database.collections]
    )
    try:
        cursor = await client[database.name].list_collections(
            filter={"name": {"$in": names}} if names is not None else None
        )
        infos: Sequence[Mapping[str, Any]] = await cursor.to_list()
    except PyMongoError as error:
        raise _store_error(
            error, f"listing MongoDB collections of {database.name}", target
        ) from error
    return infos


async def _list_indexes(
    client: Client, database: str, collection: str, target: Target
) -> tuple[MongoIndexObs, ...]:
    try:
        cursor = await client[database][collection].list_indexes()
        specs: Sequence[Mapping[str, Any]] = await cursor.to_list()
    except PyMongoError as error:
        raise _store_error(
            error, f"listing MongoDB indexes of {database}.{collection}", target
        ) from error
    return tuple(_index(spec) for spec in specs)


# --- facts from documents --------------------------------------------------------------


def _collection(
    name: str, kind: str, options: Mapping[str, Any], indexes: tuple[MongoIndexObs, ...] | None
) -> MongoCollectionObs:
    timeseries = options.get("timeseries")
    validator = options.get("validator")
    return MongoCollectionObs(
        name=name,
        type=kind,
        capped=bool(options.get("capped", False)),
        timeseries=dict(timeseries) if isinstance(timeseries, Mapping) else None,
        validator=dict(validator) if isinstance(validator, Mapping) else None,
        validation_level=options.get("validationLevel"),
        validation_action=options.get("validationAction"),
        indexes=None if kind == "view" else indexes,
    )


def _index(spec: Mapping[str, Any]) -> MongoIndexObs:
    ttl = spec.get("expireAfterSeconds")
    partial = spec.get("partialFilterExpression")
    collation = spec.get("collation")
    return MongoIndexObs(
        name=str(spec.get("name", "")),
        keys=tuple(
            (str(field), _key_order(value)) for field, value in (spec.get("key") or {}).items()
        ),
        # The catalog keeps options as written (sparse: 12345); listIndexes says true.
        # The _id index is unique without saying so.
        unique=bool(spec.get("unique", False)) or spec.get("name") == "_id_",
        sparse=bool(spec.get("sparse", False)),
        expire_after_seconds=(
            int(ttl) if isinstance(ttl, int | float) and math.isfinite(ttl) else None
        ),
        partial_filter_expression=dict(partial) if isinstance(partial, Mapping) else None,
        collation=dict(collation) if isinstance(collation, Mapping) else None,
    )


def _key_order(value: Any) -> Any:
    """1 or -1 for the direction of a number (2.0 ascends like 1); "text", "2dsphere" as they are."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return -1 if value < 0 else 1
    return value


# --- concurrency and errors --------------------------------------------------------------


async def _gather(*coroutines: Coroutine[Any, Any, Any]) -> list[Any]:
    """Run concurrently; the first failure cancels the rest and is raised as it is."""
    tasks: list[asyncio.Task[Any]] = []
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(coroutine) for coroutine in coroutines]
    except BaseExceptionGroup as failures:
        first = failures.exceptions[0]
        raise first from first.__cause__
    return [task.result() for task in tasks]


def _store_error(error: Exception, doing: str, target: Target) -> StoreError:
    if isinstance(error, ServerSelectionTimeoutError):
        # No server was ever selected: whichever command came first, none was sent.
        doing = "connecting to MongoDB"
    message = f"while {doing}: {_cause(error, target)}"
    if isinstance(error, OperationFailure) and error.code in _ACCESS_DENIED_CODES:
        return AccessDenied(message)
    if isinstance(error, NetworkTimeout | ExecutionTimeout | WaitQueueTimeoutError):
        return StoreTimeout(message)
    if isinstance(error, ServerSelectionTimeoutError):
        # The driver gives up on selection both when the server refuses (the text
        # names the OS error) and when it never answers its hello.
        text = str(error)
        if "timed out" in text or "No servers found yet" in text:
            return StoreTimeout(message)
        return StoreUnreachable(message)
    # Anything else (a member shutting down or recovering, a backend error
    # behind FerretDB) is still a store that could not be read: an error the
    # caller knows by type, reported as unreachable.
    return StoreUnreachable(message)


def _cause(error: Exception, target: Target) -> str:
    """The driver's message, first line, without its topology dump and without any credential."""
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    if text.startswith("No servers found yet"):
        # Selection ran out before the driver's first hello came back.
        return f"no answer within {budget_seconds(target):g}s"
    for tail in (", full error:", ", Timeout:", " (configured timeouts"):
        text = text.split(tail, 1)[0]
    if target.secret is not None:
        secret = target.secret.get_secret_value()
        if secret:
            text = text.replace(secret, "***")
        for userinfo in _CREDENTIALS_IN_URI.findall(secret):
            text = text.replace(userinfo, "***@")
            _, _, password = userinfo[:-1].partition(":")
            # A very short password would blank out ordinary words of the message.
            if len(password) >= 4:
                text = text.replace(password, "***")
    return text
