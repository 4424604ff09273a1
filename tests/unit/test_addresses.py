"""A store's address is checked for shape before a driver sees it, and never quoted.

The well-formed examples are the documented forms of each driver's own manual:
PostgreSQL's libpq "Connection Strings" (postgresql.org/docs/15/libpq-connect.html,
PostgreSQL Licence), MongoDB's "Connection String URI Format"
(mongodb.com/docs/manual/reference/connection-string), redis-py's
`Redis.from_url` docstring (MIT), nats.py's `connect(servers=...)` (Apache-2.0)
and MinIO's Python client quickstart (Apache-2.0).
"""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from datarch.claims import Store
from datarch.errors import InvalidConnection
from datarch.probes.addresses import check_connection
from datarch.probes.base import Target
from datarch.verification import _redacted

KEYS = {"postgres": "dsn", "mongodb": "uri", "nats": "url", "redis": "url"}

WELL_FORMED = [
    ("postgres", "postgresql://"),
    ("postgres", "postgresql://localhost"),
    ("postgres", "postgresql://localhost:5433"),
    ("postgres", "postgresql://localhost/mydb"),
    ("postgres", "postgresql://user@localhost"),
    ("postgres", "postgresql://user:secret@localhost"),
    ("postgres", "postgresql://other@localhost/otherdb?connect_timeout=10&application_name=myapp"),
    ("postgres", "postgresql://host1:123,host2:456/somedb?target_session_attrs=any"),
    ("postgres", "postgresql://[2001:db8::1234]/database"),
    ("postgres", "postgresql:///dbname?host=/var/lib/postgresql"),
    ("postgres", "postgresql://%2Fvar%2Flib%2Fpostgresql/dbname"),
    ("postgres", "host=localhost port=5432 dbname=mydb connect_timeout=10"),
    ("postgres", "host=localhost port=5432 dbname=mydb password='it\\'s \\\\ ok'"),
    ("postgres", "host=host1,host2 port=5432,5433 dbname=app"),
    ("mongodb", "mongodb://myDatabaseUser:D1fficultP%40ssw0rd@mongodb0.example.com:27017/"),
    ("mongodb", "mongodb+srv://myDatabaseUser:D1fficultP%40ssw0rd@cluster0.example.mongodb.net/"),
    (
        "mongodb",
        "mongodb://mongodb0.example.com:27017,mongodb1.example.com:27017/?replicaSet=myRepl",
    ),
    ("mongodb", "mongodb://%2Ftmp%2Fmongodb-27017.sock"),
    ("nats", "nats://demo.nats.io:4222"),
    ("nats", "nats://a:pw@127.0.0.1:4222,nats://127.0.0.1:4223"),
    ("nats", "tls://demo.nats.io:4443"),
    ("nats", "127.0.0.1:4222"),
    ("redis", "redis://[[username]:[password]]@localhost:6379/0"),
    ("redis", "rediss://:secret@localhost:6380/0"),
    ("redis", "unix:///path/to/socket.sock?db=0"),
    ("redis", "redis://localhost"),
]


def _target(kind: str, secret: str) -> Target:
    store = Store.model_validate(
        {"name": "x", "kind": kind, "connection": {"secretRef": {"name": "creds"}}}
    )
    return Target(store, 5.0, secret=SecretStr(secret), secret_key=KEYS[kind])


def _s3(endpoint: str) -> Target:
    store = Store.model_validate({"name": "x", "kind": "s3", "connection": {"endpoint": endpoint}})
    return Target(store, 5.0)


@pytest.mark.parametrize(("kind", "text"), WELL_FORMED)
def test_every_documented_form_passes(kind: str, text: str) -> None:
    if text.startswith("redis://[["):  # redis-py's placeholder syntax, filled in
        text = "redis://reader:pw@localhost:6379/0"
    check_connection(_target(kind, text))


@pytest.mark.parametrize(
    "endpoint",
    ["s3.amazonaws.com", "play.min.io:9000", "https://minio.data:9000", "http://[::1]:9000/"],
)
def test_documented_s3_endpoints_pass(endpoint: str) -> None:
    check_connection(_s3(endpoint))


MALFORMED = [
    ("nats", "nats://readonly:canary-pw@[127.0.0.1:notaport", "IPv6"),
    ("nats", "nats://readonly:canary-pw@127.0.0.1:notaport", "port"),
    ("nats", "nats://readonly:canary-pw@127.0.0.1:4222,nats://x:99999", "port"),
    ("redis", "redis://:canary-pw@127.0.0.1:notaport/0", "port"),
    ("redis", "redis://:canary-pw@[127.0.0.1:6379/0", "IPv6"),
    ("redis", "http://:canary-pw@127.0.0.1:6379/0", "scheme"),
    ("postgres", "postgresql://u:canary-pw@127.0.0.1:notaport/db", "port"),
    ("postgres", "host=db password='canary-pw", "key=value"),
    ("postgres", "host=db port=five password=canary-pw", "port"),
    ("postgres", "postgresql://u:canary-pw@db:0/app", "port"),
    ("mongodb", "mongodb://u:canary-pw@127.0.0.1:notaport/", "port"),
    ("mongodb", "mongodb://u:canary@pw@127.0.0.1/", "@"),
    ("mongodb", "canary-pw", "not a URL"),
    ("mongodb", "mongodb://u:canary-pw@", "no host"),
]


@pytest.mark.parametrize(("kind", "text", "problem"), MALFORMED)
def test_a_malformed_address_is_invalid_naming_the_field_never_the_secret(
    kind: str, text: str, problem: str
) -> None:
    with pytest.raises(InvalidConnection) as caught:
        check_connection(_target(kind, text))
    message = str(caught.value)
    assert message.startswith(f"while reading secret creds key {KEYS[kind]}: ")
    assert problem in message
    assert "canary" not in message
    assert "notaport" not in message


@pytest.mark.parametrize(
    "endpoint", ["127.0.0.1:notaport", "[::1:9000", "minio/bucket", "http://minio:9000/bucket"]
)
def test_a_malformed_s3_endpoint_is_invalid_naming_the_field(endpoint: str) -> None:
    with pytest.raises(InvalidConnection, match=r"^while reading connection\.endpoint: "):
        check_connection(_s3(endpoint))


def test_redis_with_a_password_only_secret_and_no_url_names_both_places() -> None:
    with pytest.raises(InvalidConnection) as caught:
        check_connection(_target("redis", "canary-pw"))
    assert "connection.url" in str(caught.value)
    assert "canary" not in str(caught.value)


@pytest.mark.parametrize(
    "secret",
    [
        "nats://readonly:canary-pw@[127.0.0.1:notaport",
        "redis://:canary-pw@127.0.0.1:notaport/0",
        "nats://a:canary-pw@h:1,nats://b:canary-pw2@[h",
        "postgresql://u:canary%2Dpw@h/db",
    ],
)
def test_redaction_is_total_on_malformed_urls(secret: str) -> None:
    """It raised ValueError: Invalid IPv6 URL while redacting the very error it was about."""
    target = _target("nats", secret)
    text = _redacted(f"ValueError: cannot dial {secret} (canary-pw, canary-pw2, canary-pw)", target)
    assert "canary" not in text


def test_redaction_drops_user_information_a_driver_quoted_in_another_form() -> None:
    target = _target("postgres", "host=db user=u password=other")
    text = _redacted("could not parse postgresql://u:canary-pw@db:x/app", target)
    assert "canary" not in text
