"""MongoDB comparison: claimed databases, collections and indexes against ObservedMongo; no I/O.

Paths read `db.collection.indexes.name.field`. An index the claim does not name
is matched by its key fields and order, and its path uses the name MongoDB
would have given it (`user_id_1_created_at_-1`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from datarch.claims import MongoCollection, MongoIndex, Store
from datarch.comparison.scope import in_scope
from datarch.findings import Finding, FindingKind, Outcome, Severity, Unchecked
from datarch.observations import MongoCollectionObs, MongoIndexObs, ObservedMongo

# The values MongoDB applies when a collection states none.
_DEFAULT_VALIDATION_LEVEL = "strict"
_DEFAULT_VALIDATION_ACTION = "error"
_ID_INDEX = "_id_"
# Longest rendering of a document (validator, filter) in a finding; findings are read by people.
_DOCUMENT_TEXT_MAX = 160


def compare_mongodb(store: Store, observed: ObservedMongo) -> list[Outcome]:
    expected = store.mongodb
    if expected is None:
        return []
    findings: list[Outcome] = []
    if expected.replica_set is not None and observed.replica_set != expected.replica_set:
        findings.append(
            Finding(
                "replicaSet",
                FindingKind.DIFFERENT,
                Severity.CRITICAL,
                expected=expected.replica_set,
                observed=observed.replica_set or "standalone",
            )
        )
    observed_databases = {database.name: database for database in observed.databases}
    for database in expected.databases or ():
        observed_database = observed_databases.get(database.name)
        if observed_database is None:
            findings.append(
                Finding(database.name, FindingKind.MISSING, Severity.CRITICAL, expected="database")
            )
            continue
        if database.collections is None:
            continue
        observed_collections = {c.name: c for c in observed_database.collections}
        for collection in database.collections:
            path = f"{database.name}.{collection.name}"
            observed_collection = observed_collections.get(collection.name)
            if observed_collection is None:
                findings.append(
                    Finding(
                        path,
                        FindingKind.MISSING,
                        Severity.CRITICAL,
                        expected=collection.type or "collection",
                    )
                )
                continue
            findings.extend(
                _compare_collection(database.name, collection, observed_collection, store)
            )
        if store.strict:
            documented = {collection.name for collection in database.collections}
            for observed_collection in observed_database.collections:
                name = observed_collection.name
                if (
                    name in documented
                    # system.views, system.buckets.*: the server's own, not the application's
                    or name.startswith("system.")
                    or not in_scope(store.scope, name, f"{database.name}.{name}")
                ):
                    continue
                findings.append(
                    Finding(
                        f"{database.name}.{name}",
                        FindingKind.UNEXPECTED,
                        Severity.WARNING,
                        observed=observed_collection.type,
                    )
                )
    return findings


def _compare_collection(
    database: str, expected: MongoCollection, observed: MongoCollectionObs, store: Store
) -> list[Outcome]:
    path = f"{database}.{expected.name}"
    if expected.type is not None and expected.type != observed.type:
        # Everything else about a collection follows from its type (a view has no
        # indexes, no validator): one finding says it, the rest would be noise.
        return [
            Finding(
                f"{path}.type",
                FindingKind.DIFFERENT,
                Severity.CRITICAL,
                expected=expected.type,
                observed=observed.type,
            )
        ]
    findings: list[Outcome] = [
        *_stated(f"{path}.capped", expected.capped, observed.capped, Severity.CRITICAL, _yes_no)
    ]
    if expected.timeseries is not None:
        findings.extend(_compare_timeseries(path, expected, observed))
    if expected.validator is not None:
        wanted = dict(expected.validator)
        actual = dict(observed.validator or {})
        if wanted != actual:
            findings.append(
                Finding(
                    f"{path}.validator",
                    FindingKind.DIFFERENT,
                    Severity.WARNING,
                    expected=_document_text(wanted),
                    observed=_document_text(actual) if actual else "none",
                )
            )
    findings += _stated(
        f"{path}.validationLevel",
        expected.validation_level,
        observed.validation_level or _DEFAULT_VALIDATION_LEVEL,
        Severity.WARNING,
    )
    findings += _stated(
        f"{path}.validationAction",
        expected.validation_action,
        observed.validation_action or _DEFAULT_VALIDATION_ACTION,
        Severity.WARNING,
    )
    if expected.indexes is not None and observed.indexes is not None:
        findings.extend(
            _compare_indexes(database, expected.name, expected.indexes, observed.indexes, store)
        )
    elif expected.indexes is not None and observed.type != "view":
        # Documented and not read: neither judged nor passed (a view has no indexes).
        findings.append(Unchecked(f"{path}.indexes", "the probe did not read its indexes"))
    return findings


def _compare_timeseries(
    path: str, expected: MongoCollection, observed: MongoCollectionObs
) -> list[Finding]:
    wanted = expected.timeseries
    assert wanted is not None
    options = observed.timeseries
    if options is None:
        return [
            Finding(
                f"{path}.timeseries",
                FindingKind.DIFFERENT,
                Severity.CRITICAL,
                expected=f"timeField {wanted.time_field}",
                observed="not a time-series collection",
            )
        ]
    findings = []
    for field, wanted_value, severity in (
        ("timeField", wanted.time_field, Severity.CRITICAL),
        ("metaField", wanted.meta_field, Severity.CRITICAL),
        # Granularity tunes bucketing, it does not change what is stored.
        ("granularity", wanted.granularity, Severity.WARNING),
    ):
        actual = options.get(field)
        if wanted_value is not None and wanted_value != actual:
            findings.append(
                Finding(
                    f"{path}.timeseries.{field}",
                    FindingKind.DIFFERENT,
                    severity,
                    expected=wanted_value,
                    observed=str(actual) if actual is not None else "none",
                )
            )
    return findings


def _compare_indexes(
    database: str,
    collection: str,
    expected: Sequence[MongoIndex],
    observed: Sequence[MongoIndexObs],
    store: Store,
) -> list[Finding]:
    path = f"{database}.{collection}"
    matches = _match_indexes(expected, observed)
    findings: list[Finding] = []
    for index, match in zip(expected, matches, strict=True):
        index_path = f"{path}.indexes.{index.name or _default_name(index)}"
        # A missing unique index leaves duplicates possible: data integrity, not speed.
        severity = Severity.CRITICAL if index.unique else Severity.WARNING
        if match is None:
            findings.append(
                Finding(index_path, FindingKind.MISSING, severity, expected=_expected_text(index))
            )
            continue
        findings.extend(_compare_index(index_path, index, match, severity))
    if store.strict and in_scope(store.scope, collection, path):
        matched = {match.name for match in matches if match is not None}
        for index_obs in observed:
            if index_obs.name in matched or index_obs.name == _ID_INDEX:
                continue
            findings.append(
                Finding(
                    f"{path}.indexes.{index_obs.name}",
                    FindingKind.UNEXPECTED,
                    Severity.WARNING,
                    observed=_keys_text(index_obs.keys),
                )
            )
    return findings


def _match_indexes(
    expected: Sequence[MongoIndex], observed: Sequence[MongoIndexObs]
) -> list[MongoIndexObs | None]:
    """Named indexes first by name, then the rest by keys among the indexes left over.

    A named index that is not there under its name but is under another (same
    keys) is matched too, so a rename reads as a different name, not as a
    missing index next to an undocumented one.
    """
    by_name = {index.name: index for index in observed}
    matches: list[MongoIndexObs | None] = [
        by_name.get(index.name) if index.name is not None else None for index in expected
    ]
    taken = {match.name for match in matches if match is not None}
    for position, index in enumerate(expected):
        if matches[position] is not None:
            continue
        wanted_keys = tuple((key.field, key.order) for key in index.keys)
        candidates = [
            candidate
            for candidate in observed
            if candidate.name not in taken and candidate.keys == wanted_keys
        ]
        # Same keys may be indexed twice (another collation or partial filter): the
        # one that agrees with the claim is the documented one.
        candidates.sort(
            key=lambda candidate: len(_compare_index("", index, candidate, Severity.INFO))
        )
        if candidates:
            matches[position] = candidates[0]
            taken.add(candidates[0].name)
    return matches


def _compare_index(
    path: str, expected: MongoIndex, observed: MongoIndexObs, severity: Severity
) -> list[Finding]:
    wanted_keys = tuple((key.field, key.order) for key in expected.keys)
    findings = [
        *_stated(f"{path}.name", expected.name, observed.name, Severity.WARNING),
        *_stated(f"{path}.keys", wanted_keys, observed.keys, severity, _keys_text),
        *_stated(
            f"{path}.unique",
            expected.unique,
            observed.unique,
            # Not unique where the docs say unique: duplicates can be written.
            Severity.CRITICAL if expected.unique else Severity.WARNING,
            _yes_no,
        ),
        *_stated(f"{path}.sparse", expected.sparse, observed.sparse, Severity.WARNING, _yes_no),
    ]
    if (
        expected.expire_after_seconds is not None
        and expected.expire_after_seconds != observed.expire_after_seconds
    ):
        findings.append(
            Finding(
                f"{path}.expireAfterSeconds",
                FindingKind.DIFFERENT,
                Severity.WARNING,
                expected=f"{expected.expire_after_seconds}s",
                observed=(
                    f"{observed.expire_after_seconds}s"
                    if observed.expire_after_seconds is not None
                    else "no TTL"
                ),
            )
        )
    if expected.partial_filter_expression is not None and dict(
        expected.partial_filter_expression
    ) != dict(observed.partial_filter_expression or {}):
        findings.append(
            Finding(
                f"{path}.partialFilterExpression",
                FindingKind.DIFFERENT,
                Severity.WARNING,
                expected=_document_text(expected.partial_filter_expression),
                observed=(
                    _document_text(observed.partial_filter_expression)
                    if observed.partial_filter_expression
                    else "none"
                ),
            )
        )
    if expected.collation is not None:
        wanted: dict[str, Any] = {"locale": expected.collation.locale}
        if expected.collation.strength is not None:
            wanted["strength"] = expected.collation.strength
        actual = observed.collation or {}
        if any(actual.get(key) != value for key, value in wanted.items()):
            findings.append(
                Finding(
                    f"{path}.collation",
                    FindingKind.DIFFERENT,
                    Severity.WARNING,
                    expected=_collation_text(wanted),
                    observed=_collation_text(actual) if actual else "none",
                )
            )
    return findings


def _stated(
    path: str,
    expected: Any,
    observed: Any,
    severity: Severity,
    text: Callable[[Any], str] = str,
) -> list[Finding]:
    """One finding when the claim states a value (not None) and another is observed."""
    if expected is None or expected == observed:
        return []
    return [
        Finding(
            path, FindingKind.DIFFERENT, severity, expected=text(expected), observed=text(observed)
        )
    ]


def _default_name(index: MongoIndex) -> str:
    """The name MongoDB gives an index created without one: `field_order` joined by `_`."""
    return "_".join(f"{key.field}_{key.order}" for key in index.keys)


def _keys_text(keys: Sequence[tuple[str, Any]]) -> str:
    return "{" + ", ".join(f"{field}: {order}" for field, order in keys) + "}"


def _expected_text(index: MongoIndex) -> str:
    text = _keys_text([(key.field, key.order) for key in index.keys])
    return f"unique {text}" if index.unique else text


def _collation_text(collation: Mapping[str, Any]) -> str:
    text = str(collation.get("locale", "?"))
    if collation.get("strength") is not None:
        text += f" strength {collation['strength']}"
    return text


def _document_text(document: Mapping[str, Any]) -> str:
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    if len(text) > _DOCUMENT_TEXT_MAX:
        return text[: _DOCUMENT_TEXT_MAX - 1] + "…"
    return text


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"
