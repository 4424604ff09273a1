"""The claim contract: parsing, validation messages, durations, severity overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from datarch.claims import Claim, load_claim, parse_claim
from datarch.durations import format_duration, parse_duration
from datarch.errors import ClaimInvalid
from datarch.findings import (
    Finding,
    FindingKind,
    Severity,
    SeverityOverride,
    apply_overrides,
    sort_findings,
)

DESIGN_EXAMPLE = """
apiVersion: datarch.io/v1alpha1
kind: DataArchitectureClaim
metadata: {name: platform, namespace: data}
spec:
  interval: 5m
  timeout: 30s
  suspend: false
  stores:
    - name: main
      kind: postgres
      connection:
        secretRef: {name: pg-readonly, key: dsn}
      strict: false
      scope: []
      version: ">=15"
      postgres:
        database: app
        schemas:
          - name: public
            tables:
              - name: users
                columns:
                  - {name: id, type: uuid, nullable: false}
                  - {name: email, type: varchar(255), nullable: false}
                  - {name: created_at, type: timestamptz, nullable: false, default: now()}
                primaryKey: [id]
                uniques: [[email]]
                foreignKeys:
                  - {columns: [org_id], references: {table: orgs, columns: [id]}, onDelete: cascade}
                indexes:
                  - {name: users_org_idx, columns: [org_id], unique: false}
                partitioning: {strategy: range, key: [created_at]}
        extensions: [pgcrypto]
        migrations: {tool: drizzle, latest: "0006_x"}
    - name: runtime
      kind: mongodb
      connection: {secretRef: {name: mongo-readonly, key: uri}}
      mongodb:
        databases:
          - name: bot_runner
            collections:
              - name: bots
                indexes:
                  - {keys: [{field: user_id, order: 1}], unique: false}
                  - {keys: [{field: created_at, order: 1}], expireAfterSeconds: 86400}
    - name: events
      kind: nats
      connection: {url: "nats://nats.data:4222", secretRef: {name: nats-readonly, key: creds}}
      nats:
        streams:
          - name: EVENTS
            subjects: ["app.events.>"]
            retention: limits
            storage: file
            maxAge: 168h
            consumers:
              - name: worker
                ackPolicy: explicit
                lag: {maxPending: 1000, maxAckPending: 100, maxOldestUnackedAge: 5m}
    - name: objects
      kind: s3
      connection: {endpoint: "minio.data:9000", secure: false, secretRef: {name: s3-readonly}}
      s3:
        buckets:
          - name: uploads
            versioning: enabled
            anonymousAccess: none
            lifecycle: [{prefix: "tmp/", expirationDays: 7}]
    - name: cache
      kind: redis
      absent: true
  backups:
    - name: main-nightly
      store: main
      cronJob: {name: pg-backup}
      schedule: "0 2 * * *"
      maxAge: 26h
      artifact: {store: objects, bucket: backups, prefix: "postgres/", minSizeBytes: 1024}
"""


def test_the_design_example_claim_parses_with_every_store_kind(tmp_path: Path) -> None:
    path = tmp_path / "claim.yaml"
    path.write_text(DESIGN_EXAMPLE)
    claim = load_claim(path)
    assert [s.kind for s in claim.spec.stores] == ["postgres", "mongodb", "nats", "s3", "redis"]
    users = claim.spec.stores[0].postgres.schemas[0].tables[0]  # type: ignore[union-attr,index]
    assert users.foreign_keys[0].on_delete == "cascade"  # type: ignore[index]
    assert claim.spec.stores[2].nats.streams[0].consumers[0].lag.max_pending == 1000  # type: ignore[union-attr,index]
    assert claim.spec.backups[0].cron_job.name == "pg-backup"
    assert claim.spec.interval_seconds == 300
    assert claim.metadata.namespace == "data"


def _spec(**overrides: object) -> dict[str, object]:
    spec: dict[str, object] = {"stores": [{"name": "main", "kind": "postgres"}]}
    spec.update(overrides)
    return {"spec": spec}


@pytest.mark.parametrize(
    ("document", "named"),
    [
        (_spec(interval="5 minutes"), "spec.interval"),
        (
            _spec(interval="0s"),
            "spec.interval: Value error, '0s' is shorter than the minimum of 1s",
        ),
        (
            _spec(timeout="10ms"),
            "spec.timeout: Value error, '10ms' is shorter than the minimum of 100ms",
        ),
        (_spec(stores=[]), "spec.stores"),
        (_spec(stores=[{"name": "main", "kind": "oracle"}]), "spec.stores[0].kind"),
        (_spec(stores=[{"name": "Main!", "kind": "postgres"}]), "spec.stores[0].name"),
        (
            _spec(stores=[{"name": "main", "kind": "redis", "postgres": {}}]),
            "postgres is only allowed",
        ),
        (
            _spec(stores=[{"name": "a", "kind": "redis"}, {"name": "a", "kind": "redis"}]),
            "unique: a",
        ),
        (_spec(backups=[{"name": "b", "store": "nope", "cronJob": {"name": "c"}}]), "store 'nope'"),
        (
            _spec(stores=[{"name": "c", "kind": "redis", "absent": True, "version": ">=7"}]),
            "absent",
        ),
        (
            _spec(stores=[{"name": "main", "kind": "postgres", "colour": "blue"}]),
            "spec.stores[0].colour",
        ),
        (
            _spec(
                stores=[
                    {
                        "name": "q",
                        "kind": "nats",
                        "nats": {"streams": [{"name": "S", "maxAge": "a week"}]},
                    }
                ]
            ),
            "spec.stores[0].nats.streams[0].maxAge",
        ),
    ],
)
def test_an_invalid_claim_is_refused_with_a_message_naming_the_field(
    document: dict[str, object], named: str
) -> None:
    with pytest.raises(ClaimInvalid) as error:
        parse_claim(document)
    assert named in str(error.value)


def test_a_claim_file_that_is_not_yaml_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("spec: [unclosed\n")
    with pytest.raises(ClaimInvalid, match=r"broken\.yaml"):
        load_claim(path)


def test_a_missing_claim_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(ClaimInvalid, match=r"nothing\.yaml"):
        load_claim(tmp_path / "nothing.yaml")


def test_a_document_of_another_kind_is_refused() -> None:
    with pytest.raises(ClaimInvalid, match="ConfigMap"):
        parse_claim({"kind": "ConfigMap", "spec": {}})


def test_defaults_fill_interval_timeout_and_empty_lists() -> None:
    claim = Claim.model_validate(_spec())
    assert (claim.spec.interval, claim.spec.timeout, claim.spec.backups) == ("5m", "30s", [])


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h30m", 5400), ("168h", 604800), ("250ms", 0.25), ("1.5h", 5400)],
)
def test_go_durations_parse_to_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "5 m", "m5", "-1s", "1d"])
def test_malformed_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (90, "1m30s"), (604800, "168h"), (3661, "1h1m1s")]
)
def test_durations_print_in_their_shortest_go_form(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_the_first_matching_severity_override_wins() -> None:
    findings = [
        Finding("public.users.indexes.x", FindingKind.MISSING, Severity.WARNING),
        Finding(
            "public.users.columns.id.type", FindingKind.DIFFERENT, Severity.CRITICAL, "uuid", "text"
        ),
    ]
    overrides = [
        SeverityOverride("public.users.indexes.*", Severity.INFO),
        SeverityOverride("public.*", Severity.WARNING),
    ]
    assert [f.severity for f in apply_overrides(findings, overrides)] == [
        Severity.INFO,
        Severity.WARNING,
    ]


def test_findings_sort_worst_first_then_by_path() -> None:
    info = Finding("a", FindingKind.DIFFERENT, Severity.INFO)
    critical = Finding("z", FindingKind.MISSING, Severity.CRITICAL)
    warning = Finding("b", FindingKind.MISSING, Severity.WARNING)
    assert sort_findings([info, warning, critical]) == [critical, warning, info]
