"""The local dev servers answer, and each fixture's resource is usable and isolated.

These guard the environment the probe tests stand on: if one fails, look at
`make env-status` and the server's log under $DATARCH_ENV_DIR/logs first.
"""

from __future__ import annotations

import io
import uuid
from typing import TYPE_CHECKING

import nats
import psycopg
import pytest
from minio.error import S3Error
from nats.errors import TimeoutError as NatsTimeoutError

if TYPE_CHECKING:
    from pymongo.database import Database
    from tests.conftest import NatsStreams, PgDatabase, RedisDb, S3Bucket

pytestmark = pytest.mark.integration


def test_postgres_query_and_read_only_role(pg_database: PgDatabase) -> None:
    with psycopg.connect(pg_database.dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL)")
        conn.execute("INSERT INTO notes VALUES (1, 'hello')")
        row = conn.execute("SELECT current_database(), count(*) FROM notes").fetchone()
        assert row == (pg_database.name, 1)

    with psycopg.connect(pg_database.ro_dsn) as ro:
        assert ro.execute("SELECT body FROM notes").fetchall() == [("hello",)]
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            ro.execute("INSERT INTO notes VALUES (2, 'nope')")


def test_postgres_logs_every_statement(pg_database: PgDatabase) -> None:
    marker = f"statement-log-{uuid.uuid4().hex}"
    with psycopg.connect(pg_database.ro_dsn) as ro:
        ro.execute("SELECT %s::text", (marker,))
    assert marker in pg_database.statement_log.read_text(errors="replace")


def test_mongo_insert_and_find(mongo_database: Database) -> None:
    mongo_database.bots.insert_one({"_id": "bot-1", "user_id": 7})
    assert mongo_database.bots.find_one({"user_id": 7}) == {"_id": "bot-1", "user_id": 7}
    assert mongo_database.list_collection_names() == ["bots"]


async def test_jetstream_stream_create(nats_js: NatsStreams) -> None:
    name = f"{nats_js.prefix}EVENTS"
    await nats_js.js.add_stream(name=name, subjects=[f"{nats_js.subject_prefix}.>"])
    ack = await nats_js.js.publish(f"{nats_js.subject_prefix}.created", b"{}")
    assert ack.stream == name
    assert (await nats_js.js.stream_info(name)).state.messages == 1


async def test_jetstream_read_only_user_reads_but_cannot_create(nats_js: NatsStreams) -> None:
    name = f"{nats_js.prefix}EVENTS"
    await nats_js.js.add_stream(name=name, subjects=[f"{nats_js.subject_prefix}.>"])

    ro = await nats.connect(nats_js.ro_url, connect_timeout=5, max_reconnect_attempts=1)
    try:
        ro_js = ro.jetstream(timeout=1)
        assert (await ro_js.stream_info(name)).config.name == name
        # Publishing to $JS.API.STREAM.CREATE is denied, so the request gets no answer.
        with pytest.raises(NatsTimeoutError):
            await ro_js.add_stream(name=f"{nats_js.prefix}DENIED", subjects=["denied.>"])
    finally:
        await ro.close()


def test_s3_put_and_get(s3_bucket: S3Bucket) -> None:
    s3_bucket.client.put_object(s3_bucket.name, "docs/a.txt", io.BytesIO(b"hello"), 5)

    for s3 in (s3_bucket.client, s3_bucket.ro_client):
        response = s3.get_object(s3_bucket.name, "docs/a.txt")
        try:
            assert response.read() == b"hello"
        finally:
            response.close()
            response.release_conn()

    with pytest.raises(S3Error) as denied:
        s3_bucket.ro_client.put_object(s3_bucket.name, "docs/b.txt", io.BytesIO(b"x"), 1)
    assert denied.value.code == "AccessDenied"


def test_redis_set_and_get(redis_db: RedisDb) -> None:
    redis_db.client.set("greeting", "hello")
    assert redis_db.client.get("greeting") == b"hello"
    assert redis_db.client.dbsize() == 1
