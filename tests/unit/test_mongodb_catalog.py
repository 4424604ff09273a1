"""The MongoDB probe's judgement-free parts, without a server: turning `$listCatalog` entries
into observed collections, and mapping the driver's errors onto typed store errors.

FerretDB, the dev server, has no `$listCatalog`, and cannot be made to fail on cue as a
member shutting down or a lost cursor would: these are fed what MongoDB itself answers.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr
from pymongo.errors import CursorNotFound, InvalidOperation, OperationFailure

from datarch.claims import Store
from datarch.errors import AccessDenied, StoreTimeout, StoreUnreachable
from datarch.observations import MongoCollectionObs, MongoIndexObs
from datarch.probes.base import Target
from datarch.probes.mongodb import _store_error, catalog_collections

ID_INDEX = MongoIndexObs("_id_", (("_id", 1),), unique=True)


# --- the $listCatalog path FerretDB cannot run ------------------------------------------------


def test_catalog_entries_become_collections_with_their_options_and_indexes() -> None:
    """Entries shaped as MongoDB 7.0 returns them (jstests/core/catalog/list_catalog.js)."""
    catalog: list[dict[str, Any]] = [
        {
            "db": "app",
            "name": "users",
            "type": "collection",
            "md": {
                "options": {"validator": {"a": 1}, "validationLevel": "moderate"},
                "indexes": [
                    {"spec": {"v": 2, "key": {"_id": 1}, "name": "_id_"}, "ready": True},
                    {
                        "spec": {
                            "v": 2,
                            "key": {"at": 1.0},
                            "name": "at_1",
                            "expireAfterSeconds": 3600,
                            "sparse": 12345,  # the catalog keeps options as written
                        },
                        "ready": True,
                    },
                    {"spec": {"v": 2, "key": {"b": -1}, "name": "b_-1"}, "ready": False},
                ],
            },
        },
        {"db": "app", "name": "recent", "type": "view", "viewOn": "users", "pipeline": []},
        {"db": "app", "name": "metrics", "type": "timeseries", "viewOn": "system.buckets.metrics"},
        {
            "db": "app",
            "name": "system.buckets.metrics",
            "type": "collection",
            "md": {
                "options": {"timeseries": {"timeField": "ts", "granularity": "seconds"}},
                "indexes": [],
            },
        },
        # A sharded cluster repeats a collection per shard.
        {"db": "app", "name": "recent", "type": "view", "shard": "rs1"},
    ]

    collections = catalog_collections(catalog)

    assert collections == {
        "app": [
            MongoCollectionObs(
                "metrics",
                "timeseries",
                timeseries={"timeField": "ts", "granularity": "seconds"},
                indexes=None,
            ),
            MongoCollectionObs("recent", "view"),
            MongoCollectionObs(
                "system.buckets.metrics",
                "collection",
                timeseries={"timeField": "ts", "granularity": "seconds"},
                indexes=(),
            ),
            MongoCollectionObs(
                "users",
                "collection",
                validator={"a": 1},
                validation_level="moderate",
                indexes=(
                    ID_INDEX,
                    MongoIndexObs("at_1", (("at", 1),), sparse=True, expire_after_seconds=3600),
                ),
            ),
        ]
    }


# --- errors the dev server cannot be made to raise ---------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        OperationFailure("interrupted at shutdown", code=11600),
        OperationFailure("node is not in primary or recovering state", code=13436),
        OperationFailure("PostgreSQL backend: connection reset", code=1),
        InvalidOperation("cannot use MongoClient after close"),
        CursorNotFound("cursor id 42 not found", code=43),
    ],
    ids=["shutting down", "recovering member", "FerretDB backend", "closed client", "lost cursor"],
)
def test_every_driver_error_is_a_typed_store_error(error: Exception) -> None:
    """A member shutting down or recovering, a FerretDB backend failing: the dev server cannot
    be made to do these on cue, so the mapping is tested on the driver's own errors. Each must
    be one of the types verification reports by name, never the bare base class."""
    uri = "mongodb://datarch:s3cr3t-pass@db.example:27017/app"
    store = Store.model_validate({"name": "runtime", "kind": "mongodb"})
    target = Target(store=store, timeout=5.0, secret=SecretStr(uri), secret_key="uri")

    translated = _store_error(error, "listing MongoDB databases", target)

    assert type(translated) in (StoreUnreachable, StoreTimeout, AccessDenied)
    assert str(translated).startswith("while listing MongoDB databases: ")
    assert "s3cr3t-pass" not in str(translated)
