"""Fixtures that reach the local dev servers and give each test a resource of its own.

The servers are the ones `make env` starts (dev/env.py); their addresses and
credentials come only from the environment that `make -s env-vars` prints,
which the Makefile's test targets export. A missing variable fails the test
with that advice: a test that needs a server never skips.

Session fixtures hold one client per server. Function fixtures create a
uniquely named database, bucket, stream prefix or namespace, hand over admin
and read-only access to it, and remove it afterwards, so tests run in any
order, and in parallel.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import nats
import psycopg
import pytest
import pytest_asyncio
import redis
from kubernetes import client as kube
from kubernetes import config as kube_config
from kubernetes.client.exceptions import ApiException
from minio import Minio
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from psycopg import sql
from pymongo import MongoClient
from pymongo.database import Database

from datarch.crd import crd


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(
            f"{name} is not set. Start the local servers with `make env` and export their "
            'settings with `eval "$(make -s env-vars)"` (`make test` does both).',
            pytrace=False,
        )
    return value


def unique_name(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def with_path(url: str, path: str) -> str:
    """`url` pointing at another database: the path of a PostgreSQL or Redis URL."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{path}"))


# --------------------------------------------------------------------------- PostgreSQL


@dataclass(frozen=True)
class PgDatabase:
    name: str
    dsn: str  # superuser, connected to this database
    ro_dsn: str  # the read-only role (default_transaction_read_only), same database
    statement_log: Path  # the server logs every statement here (log_statement = 'all')


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[psycopg.Connection]:
    with psycopg.connect(env("DATARCH_PG_DSN"), autocommit=True, connect_timeout=5) as conn:
        yield conn


@pytest.fixture
def pg_database(pg_admin: psycopg.Connection) -> Iterator[PgDatabase]:
    name = unique_name("t_")
    pg_admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield PgDatabase(
            name=name,
            dsn=with_path(env("DATARCH_PG_DSN"), name),
            ro_dsn=with_path(env("DATARCH_PG_RO_DSN"), name),
            statement_log=Path(env("DATARCH_PG_LOG")),
        )
    finally:
        # FORCE: a test may leave a connection open behind it.
        pg_admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


# --------------------------------------------------------------------------- MongoDB (FerretDB)


@pytest.fixture(scope="session")
def mongo_client() -> Iterator[MongoClient]:
    mongo: MongoClient = MongoClient(env("DATARCH_MONGO_URI"), serverSelectionTimeoutMS=5000)
    try:
        yield mongo
    finally:
        mongo.close()


@pytest.fixture
def mongo_database(mongo_client: MongoClient) -> Iterator[Database]:
    name = unique_name("t_")
    try:
        yield mongo_client[name]
    finally:
        mongo_client.drop_database(name)


# --------------------------------------------------------------------------- NATS JetStream


@dataclass(frozen=True)
class NatsStreams:
    """Admin JetStream access. Name streams `prefix + ...` and give them subjects under
    `subject_prefix + "."`: teardown deletes the streams carrying the prefix."""

    nc: NatsClient
    js: JetStreamContext
    prefix: str
    subject_prefix: str
    ro_url: str  # the read-only user, which may only read JetStream state


@pytest_asyncio.fixture
async def nats_js() -> AsyncIterator[NatsStreams]:
    nc = await nats.connect(env("DATARCH_NATS_URL"), connect_timeout=5, max_reconnect_attempts=1)
    token = uuid.uuid4().hex[:12]
    streams = NatsStreams(
        nc=nc,
        js=nc.jetstream(),
        prefix=f"T{token}_",
        subject_prefix=f"t{token}",
        ro_url=env("DATARCH_NATS_RO_URL"),
    )
    try:
        yield streams
    finally:
        # streams_info() answers one page (256 streams) at a time: walk them all, since
        # a benchmark may have left hundreds, and a KV or object store bucket named with
        # the prefix lives in a stream KV_<prefix>... or OBJ_<prefix>....
        names: list[str] = []
        while page := await streams.js.streams_info(offset=len(names)):
            names += [info.config.name or "" for info in page]
        for name in names:
            if name.removeprefix("KV_").removeprefix("OBJ_").startswith(streams.prefix):
                await streams.js.delete_stream(name)
        await nc.close()


# --------------------------------------------------------------------------- S3 (SeaweedFS)


@dataclass(frozen=True)
class S3Bucket:
    name: str
    client: Minio  # admin key
    ro_client: Minio  # read-only key: s3:Get* and s3:List* only


@pytest.fixture(scope="session")
def s3_client() -> Minio:
    return Minio(
        env("DATARCH_S3_ENDPOINT"),
        access_key=env("DATARCH_S3_ACCESS_KEY"),
        secret_key=env("DATARCH_S3_SECRET_KEY"),
        secure=False,
    )


@pytest.fixture
def s3_bucket(s3_client: Minio) -> Iterator[S3Bucket]:
    name = unique_name("t-")
    s3_client.make_bucket(name)
    ro_client = Minio(
        env("DATARCH_S3_ENDPOINT"),
        access_key=env("DATARCH_S3_RO_ACCESS_KEY"),
        secret_key=env("DATARCH_S3_RO_SECRET_KEY"),
        secure=False,
    )
    try:
        yield S3Bucket(name=name, client=s3_client, ro_client=ro_client)
    finally:
        # Every version and delete marker too, in case the test enabled versioning.
        for obj in s3_client.list_objects(name, recursive=True, include_version=True):
            if obj.object_name is not None:
                s3_client.remove_object(name, obj.object_name, version_id=obj.version_id)
        s3_client.remove_bucket(name)


# --------------------------------------------------------------------------- Redis


@dataclass(frozen=True)
class RedisDb:
    client: redis.Redis
    db: int
    url: str


@pytest.fixture
def redis_db() -> Iterator[RedisDb]:
    """A database number of its own, claimed in db 0 so parallel test processes never share one."""
    base_url = env("DATARCH_REDIS_URL")
    registry = redis.Redis.from_url(with_path(base_url, "0"), socket_timeout=5)
    token = uuid.uuid4().hex
    databases = int(registry.config_get("databases")["databases"])
    claimed = next(
        (
            db
            for db in range(1, databases)
            # Expires on its own if a test process dies without releasing it.
            if registry.set(f"datarch-tests:db:{db}", token, nx=True, ex=3600)
        ),
        None,
    )
    if claimed is None:
        pytest.fail(f"all {databases - 1} Redis test databases are in use")
    url = with_path(base_url, str(claimed))
    redis_client = redis.Redis.from_url(url, socket_timeout=5)
    redis_client.flushdb()
    try:
        yield RedisDb(client=redis_client, db=claimed, url=url)
    finally:
        redis_client.flushdb()
        redis_client.close()
        registry.delete(f"datarch-tests:db:{claimed}")
        registry.close()


# --------------------------------------------------------------------------- Kubernetes


@pytest.fixture(scope="session")
def kube_api() -> Iterator[kube.ApiClient]:
    api = kube_config.new_client_from_config(config_file=env("KUBECONFIG"))
    try:
        yield api
    finally:
        api.close()


@pytest.fixture
def kube_namespace(kube_api: kube.ApiClient) -> Iterator[str]:
    name = unique_name("t-")
    kube.CoreV1Api(kube_api).create_namespace(
        kube.V1Namespace(metadata=kube.V1ObjectMeta(name=name))
    )
    try:
        yield name
    finally:
        delete_namespace(kube_api, name)


def delete_namespace(api: kube.ApiClient, name: str) -> None:
    """Delete a namespace as the namespace controller would, which this control plane lacks:
    empty it, then release its finalizer. Otherwise it stays Terminating and its objects
    stay visible to anything listing across namespaces."""
    core = kube.CoreV1Api(api)
    custom = kube.CustomObjectsApi(api)
    deletions = [
        core.delete_collection_namespaced_config_map,
        core.delete_collection_namespaced_secret,
        core.delete_collection_namespaced_service_account,
        core.delete_collection_namespaced_service,
        core.delete_collection_namespaced_pod,
        core.delete_collection_namespaced_event,
        core.delete_collection_namespaced_persistent_volume_claim,
    ]
    for group in kube.ApisApi(api).get_api_versions().groups:
        preferred = group.preferred_version
        group_version = preferred.group_version if preferred else group.versions[0].group_version
        version = group_version.split("/")[1]
        for resource in custom.get_api_resources(group.name, version).resources:
            deletable = resource.namespaced and "deletecollection" in (resource.verbs or [])
            if deletable and "/" not in resource.name:  # "/": a subresource
                deletions.append(
                    lambda ns, g=group.name, v=version, r=resource.name: (
                        custom.delete_collection_namespaced_custom_object(g, v, ns, r)
                    )
                )
    for delete_collection in deletions:
        try:
            delete_collection(name)
        except ApiException as exc:
            if exc.status not in (404, 405):
                raise
    try:
        core.delete_namespace(name)
        namespace = core.read_namespace(name)
    except ApiException as exc:
        if exc.status == 404:
            return
        raise
    namespace.spec.finalizers = []
    core.replace_namespace_finalize(name, namespace)


def install_crd(
    api: kube.ApiClient, document: dict[str, Any] | None = None, *, replace: bool = True
) -> None:
    """Create a CRD (the one `datarch crd` prints unless `document` is given), bring it up to
    date when `replace`, and wait until it is Established."""
    extensions: Any = kube.ApiextensionsV1Api(api)  # Any: dict bodies, model annotations
    body = dict(document) if document is not None else crd()
    name = body["metadata"]["name"]
    try:
        extensions.create_custom_resource_definition(body)
    except ApiException as error:
        if error.status != 409:
            raise
        if replace:
            current = extensions.read_custom_resource_definition(name)
            body["metadata"] = {
                **body["metadata"],
                "resourceVersion": current.metadata.resource_version,
            }
            extensions.replace_custom_resource_definition(name, body)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        conditions = extensions.read_custom_resource_definition(name).status.conditions or []
        if any(c.type == "Established" and c.status == "True" for c in conditions):
            return
        time.sleep(0.2)
    pytest.fail(f"CRD {name} not established within 30s")


# --------------------------------------------------------------------------- dead and hung stores


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released): connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest_asyncio.fixture
async def silent_port() -> AsyncIterator[int]:
    """A loopback port whose server accepts TCP connections and never answers a byte:
    what a hung store looks like to a client."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


def tool(name: str) -> str:
    """A command of the local environment (kubectl, helm, promtool) from PATH, or a clear failure."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not on PATH. Start the local environment with `make env` and export "
            'its settings with `eval "$(make -s env-vars)"` (`make test` does both).',
            pytrace=False,
        )
    return path


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The reliability suite's figure line (tests/reliability/reliability_figures.py), if it ran."""
    figures = sys.modules.get("reliability_figures")
    line = figures.figure_line() if figures is not None else ""
    if line:
        terminalreporter.write_line(line)
