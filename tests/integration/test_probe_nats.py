"""The NATS JetStream probe against the dev nats-server: config, lag, buckets, errors, read-only use."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from typing import Any

import nats
import pytest
from nats.aio.msg import Msg
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
    StreamSource,
)
from pydantic import SecretStr

from conftest import NatsStreams, env
from datarch.claims import Store
from datarch.comparison.nats import compare_nats
from datarch.errors import AccessDenied, StoreTimeout, StoreUnreachable
from datarch.findings import Finding, FindingKind, Severity
from datarch.observations import NatsConsumerObs, NatsStreamObs, ObservedNats
from datarch.probes.base import ClientPool, Target
from datarch.probes.nats import _Connection, observe

pytestmark = pytest.mark.integration

TIMEOUT = 5.0
# Server and test share the host's clock; this covers the rounding of its readings.
CLOCK_SLACK = 0.005


def target(url: str, nats_block: dict[str, Any] | None, timeout: float = TIMEOUT) -> Target:
    store = Store.model_validate({"name": "events", "kind": "nats", "nats": nats_block})
    return Target(store=store, timeout=timeout, secret=SecretStr(url), secret_key="url")


def stream_named(observed: ObservedNats, name: str) -> NatsStreamObs:
    [stream] = [s for s in observed.streams if s.name == name]
    return stream


def untimed(stream: NatsStreamObs) -> NatsStreamObs:
    return replace(
        stream,
        consumers=tuple(replace(c, oldest_unacked_age_seconds=None) for c in stream.consumers),
    )


def consumer_named(stream: NatsStreamObs, name: str) -> NatsConsumerObs:
    [consumer] = [c for c in stream.consumers if c.name == name]
    return consumer


async def publish(nats_js: NatsStreams, subject: str, count: int) -> list[tuple[float, float]]:
    """Publishes `count` messages; the wall-clock time before and after each one's ack."""
    bounds = []
    for index in range(count):
        before = time.time()
        await nats_js.js.publish(subject, f"{index}".encode())
        bounds.append((before, time.time()))
    return bounds


async def fetch(subscription: Any, count: int) -> list[Msg]:
    messages: list[Msg] = await subscription.fetch(count, timeout=TIMEOUT)
    assert len(messages) == count
    return messages


@pytest.mark.parametrize("allow_direct", [False, True], ids=["message get", "direct get"])
async def test_lag_figures_after_publishing_consuming_and_acking_part_are_exact(
    nats_js: NatsStreams, allow_direct: bool
) -> None:
    stream, subject = f"{nats_js.prefix}LAG", f"{nats_js.subject_prefix}.lag"
    await nats_js.js.add_stream(
        StreamConfig(name=stream, subjects=[f"{subject}.>"], allow_direct=allow_direct)
    )
    bounds = await publish(nats_js, f"{subject}.orders", 10)
    worker = await nats_js.js.pull_subscribe(
        f"{subject}.>", durable="worker", stream=stream, config=ConsumerConfig(ack_wait=60)
    )
    delivered = await fetch(worker, 6)  # sequences 1-6
    for index in (0, 1, 3):  # 1, 2 and 4: the ack floor stops at 2
        await delivered[index].ack_sync()
    # A nak sent as a request, as ack_sync sends an ack: answered once the server has it.
    await nats_js.nc.request(delivered[4].reply, b"-NAK", timeout=TIMEOUT)
    [again] = await fetch(worker, 1)
    assert again.metadata.sequence.stream == 5 and again.metadata.num_delivered == 2
    idle = await nats_js.js.pull_subscribe(f"{subject}.>", durable="idle", stream=stream)
    for message in await fetch(idle, 2):
        await message.ack_sync()
    await asyncio.sleep(0.05)  # an age clearly above zero

    started = time.time()
    observed = await observe(
        target(
            nats_js.ro_url,
            {"streams": [{"name": stream, "consumers": [{"name": "worker"}, {"name": "idle"}]}]},
        )
    )
    finished = time.time()

    lagging = consumer_named(stream_named(observed, stream), "worker")
    assert (lagging.num_pending, lagging.num_ack_pending, lagging.num_redelivered) == (4, 3, 1)
    # Awaiting an ack: 3, 5 and 6; 4 was acked out of order. JetStream says only "3 of
    # the 4 after the floor", so the oldest is 3 (upper bound: the first after the floor)
    # or 4 (lower bound: 3 distinct sequences end at 6 at the latest from 4).
    assert not lagging.oldest_unacked_age_exact
    upper, lower = lagging.oldest_unacked_age_at_most_seconds, lagging.oldest_unacked_age_seconds
    assert upper is not None and lower is not None
    assert started - bounds[2][1] - CLOCK_SLACK <= upper <= finished - bounds[2][0] + CLOCK_SLACK
    assert started - bounds[3][1] - CLOCK_SLACK <= lower <= finished - bounds[3][0] + CLOCK_SLACK
    caught_up = consumer_named(stream_named(observed, stream), "idle")
    assert (caught_up.num_pending, caught_up.num_ack_pending, caught_up.num_redelivered) == (
        8,
        0,
        0,
    )
    assert caught_up.oldest_unacked_age_seconds == 0.0


async def test_the_oldest_unacked_message_is_the_first_after_the_ack_floor_on_the_consumers_filter(
    nats_js: NatsStreams,
) -> None:
    stream, subject = f"{nats_js.prefix}FILTER", f"{nats_js.subject_prefix}.filter"
    await nats_js.js.add_stream(StreamConfig(name=stream, subjects=[f"{subject}.>"]))
    await publish(nats_js, f"{subject}.other", 3)  # older, but not the consumer's
    await asyncio.sleep(0.3)
    bounds = await publish(nats_js, f"{subject}.mine", 2)
    await nats_js.js.add_consumer(
        stream,
        ConsumerConfig(
            durable_name="picky",
            ack_policy=AckPolicy.EXPLICIT,
            filter_subjects=[f"{subject}.mine", f"{subject}.none"],
        ),
    )
    picky = await nats_js.js.pull_subscribe_bind(durable="picky", stream=stream)
    await fetch(picky, 2)

    started = time.time()
    observed = await observe(
        target(nats_js.ro_url, {"streams": [{"name": stream, "consumers": [{"name": "picky"}]}]})
    )
    finished = time.time()

    consumer = consumer_named(stream_named(observed, stream), "picky")
    assert consumer.filter_subjects == (f"{subject}.mine", f"{subject}.none")
    # Both delivered messages await an ack: the first after the floor is the oldest.
    assert consumer.oldest_unacked_age_exact
    assert consumer.oldest_unacked_age_seconds is not None
    assert started - bounds[0][1] - CLOCK_SLACK <= consumer.oldest_unacked_age_seconds
    assert consumer.oldest_unacked_age_seconds <= finished - bounds[0][0] + CLOCK_SLACK


async def test_the_age_is_read_only_for_consumers_the_claim_names(nats_js: NatsStreams) -> None:
    stream, subject = f"{nats_js.prefix}NAMED", f"{nats_js.subject_prefix}.named"
    await nats_js.js.add_stream(StreamConfig(name=stream, subjects=[f"{subject}.>"]))
    await publish(nats_js, f"{subject}.x", 2)
    for durable in ("named", "other"):
        await fetch(
            await nats_js.js.pull_subscribe(f"{subject}.>", durable=durable, stream=stream), 1
        )

    observed = await observe(
        target(
            env("DATARCH_NATS_URL"),
            {"streams": [{"name": stream, "consumers": [{"name": "named"}]}]},
        )
    )

    found = stream_named(observed, stream)
    assert consumer_named(found, "named").oldest_unacked_age_seconds is not None
    assert consumer_named(found, "other").oldest_unacked_age_seconds is None
    # One stream list page or more, one consumer list, one message get for "named".
    pages = -(-len(observed.streams) // 256)
    assert observed.api_requests == pages + 2


async def test_stream_and_consumer_configuration_is_observed(nats_js: NatsStreams) -> None:
    origin, subject = f"{nats_js.prefix}ORIGIN", f"{nats_js.subject_prefix}.origin"
    await nats_js.js.add_stream(
        StreamConfig(
            name=origin,
            subjects=[f"{subject}.a", f"{subject}.b"],
            retention=RetentionPolicy.INTEREST,
            storage=StorageType.MEMORY,
            max_age=3600,
            max_bytes=1 << 20,
            max_msgs=1000,
            max_msg_size=4096,
            max_msgs_per_subject=5,
            discard=DiscardPolicy.NEW,
            duplicate_window=30,
            allow_direct=True,
        )
    )
    await nats_js.js.add_consumer(
        origin,
        ConsumerConfig(
            durable_name="worker",
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.NEW,
            filter_subject=f"{subject}.a",
            max_deliver=5,
            ack_wait=45,
            max_ack_pending=100,
        ),
    )
    await nats_js.js.add_stream(
        StreamConfig(name=f"{nats_js.prefix}MIRROR", mirror=StreamSource(name=origin))
    )
    await nats_js.js.add_stream(
        StreamConfig(name=f"{nats_js.prefix}SOURCED", sources=[StreamSource(name=origin)])
    )

    observed = await observe(
        target(
            nats_js.ro_url,
            {"streams": [{"name": origin, "consumers": []}, {"name": f"{nats_js.prefix}MIRROR"}]},
        )
    )

    assert stream_named(observed, origin) == NatsStreamObs(
        name=origin,
        subjects=(f"{subject}.a", f"{subject}.b"),
        retention="interest",
        storage="memory",
        replicas=1,
        max_age_seconds=3600.0,
        max_bytes=1 << 20,
        max_msgs=1000,
        max_msg_size=4096,
        discard="new",
        duplicate_window_seconds=30.0,
        allow_direct=True,
        sealed=False,
        mirror=None,
        sources=(),
        consumers=(
            NatsConsumerObs(
                name="worker",
                durable=True,
                ack_policy="explicit",
                deliver_policy="new",
                filter_subjects=(f"{subject}.a",),
                max_deliver=5,
                ack_wait_seconds=45.0,
                max_ack_pending=100,
                num_pending=0,
                num_ack_pending=0,
                num_redelivered=0,
                oldest_unacked_age_seconds=None,
            ),
        ),
        consumers_listed=True,
        messages=0,
        history=5,
    )
    assert stream_named(observed, f"{nats_js.prefix}MIRROR").mirror == origin
    sourced = stream_named(observed, f"{nats_js.prefix}SOURCED")
    assert (sourced.sources, sourced.consumers_listed) == ((origin,), False)
    assert observed.version.count(".") >= 2


async def test_kv_buckets_and_object_stores_are_reported_by_bucket_name(
    nats_js: NatsStreams,
) -> None:
    kv_bucket, object_bucket = f"{nats_js.prefix}kv", f"{nats_js.prefix}obj"
    await nats_js.js.create_key_value(bucket=kv_bucket, history=3, ttl=3600)
    await nats_js.js.create_object_store(object_bucket)
    try:
        claim = {
            "streams": [],
            "keyValues": [{"bucket": kv_bucket, "history": 5, "ttl": "1h", "storage": "file"}],
            "objectStores": [{"bucket": object_bucket, "storage": "file"}],
        }
        store_target = target(nats_js.ro_url, claim)
        observed = await observe(store_target)
        assert stream_named(observed, f"KV_{kv_bucket}").history == 3
        assert stream_named(observed, f"OBJ_{object_bucket}").storage == "file"
        store = store_target.store.model_copy(
            update={"strict": True, "scope": [f"{nats_js.prefix}*"]}
        )
        assert compare_nats(store, observed) == [
            Finding(f"kv.{kv_bucket}.history", FindingKind.DIFFERENT, Severity.WARNING, "5", "3")
        ]
    finally:
        await nats_js.js.delete_key_value(kv_bucket)
        await nats_js.js.delete_object_store(object_bucket)


async def test_the_read_only_user_runs_the_whole_probe_and_may_not_create(
    nats_js: NatsStreams,
) -> None:
    """Proves the probe sends no write: the read-only user may publish only to JetStream
    info, list and message-get subjects, and the server refuses anything else."""
    stream, subject = f"{nats_js.prefix}RO", f"{nats_js.subject_prefix}.ro"
    await nats_js.js.add_stream(StreamConfig(name=stream, subjects=[f"{subject}.>"]))
    await publish(nats_js, f"{subject}.x", 3)
    await fetch(await nats_js.js.pull_subscribe(f"{subject}.>", durable="worker", stream=stream), 2)
    claim = {"streams": [{"name": stream, "consumers": [{"name": "worker"}]}]}

    as_admin = stream_named(await observe(target(env("DATARCH_NATS_URL"), claim)), stream)
    as_reader = stream_named(await observe(target(nats_js.ro_url, claim)), stream)

    assert consumer_named(as_reader, "worker").oldest_unacked_age_seconds is not None
    assert consumer_named(as_reader, "worker").num_ack_pending == 2
    # The same facts as the admin reads, but for the age, which grows between the two reads.
    assert untimed(as_reader) == untimed(as_admin)

    refusals: list[str] = []

    async def on_error(error: Exception) -> None:
        refusals.append(str(error))

    reader = await nats.connect(nats_js.ro_url, error_cb=on_error, allow_reconnect=False)
    try:
        create = json.dumps({"name": f"{nats_js.prefix}NEVER", "subjects": [f"{subject}.never"]})
        with pytest.raises(nats.errors.TimeoutError):
            await reader.request(
                f"$JS.API.STREAM.CREATE.{nats_js.prefix}NEVER", create.encode(), timeout=1
            )
    finally:
        await reader.close()
    assert any("permissions violation" in refusal.lower() for refusal in refusals)
    with pytest.raises(nats.js.errors.NotFoundError):
        await nats_js.js.stream_info(f"{nats_js.prefix}NEVER")


async def test_a_refused_api_subject_is_access_denied_at_once(nats_js: NatsStreams) -> None:
    """nats-py reports a refused publish only to its error callback and lets the request time
    out; the probe's connection hears the refusal. No subject the probe itself sends is refused
    to the read-only user, so this sends a create through the probe's connection."""
    connection = await _Connection.open(target(nats_js.ro_url, {"streams": []}))
    started = time.monotonic()
    try:
        with pytest.raises(
            AccessDenied, match=r"^while creating at nats://127\.0\.0\.1:\d+: permissions violation"
        ):
            await connection.request(
                f"$JS.API.STREAM.CREATE.{nats_js.prefix}NEVER",
                b"{}",
                "while creating",
                asyncio.get_running_loop().time() + TIMEOUT,
                TIMEOUT,
            )
    finally:
        await connection.close()
    assert time.monotonic() - started < TIMEOUT / 2


async def test_wrong_credentials_are_access_denied(nats_js: NatsStreams) -> None:
    wrong = nats_js.ro_url.replace("readonly@", "wrong@", 1).replace(":readonly@", ":wrong@", 1)
    with pytest.raises(AccessDenied) as raised:
        await observe(target(wrong, {"streams": []}))
    assert "wrong" not in str(raised.value)
    assert raised.value.__cause__ is not None


async def test_a_refused_connection_is_unreachable_not_a_timeout() -> None:
    with pytest.raises(StoreUnreachable, match="connection refused") as raised:
        await observe(target("nats://127.0.0.1:1", {"streams": []}))
    assert not isinstance(raised.value, StoreTimeout)


@pytest.fixture
def silent_server(silent_port: int) -> str:
    return f"nats://127.0.0.1:{silent_port}"


async def test_a_server_that_accepts_and_never_answers_times_out_within_the_timeout(
    silent_server: str,
) -> None:
    # 1.1s: nats-py's own connect timeout is whole seconds (here 2s), so the probe's
    # deadline is the one to fire, with room for a loaded machine before nats-py's would.
    started = time.monotonic()
    with pytest.raises(StoreTimeout, match=r"no answer within 1\.1s"):
        await observe(target(silent_server, {"streams": []}, timeout=1.1))
    assert time.monotonic() - started < 1.9


async def test_a_pool_reuses_one_connection_across_passes(nats_js: NatsStreams) -> None:
    pool = ClientPool()
    try:
        for _ in range(3):
            await observe(target(nats_js.ro_url, {"streams": []}), pool)
        assert (pool.opened, len(pool)) == (1, 1)
    finally:
        await pool.close()


async def test_without_a_nats_block_only_the_server_is_observed(nats_js: NatsStreams) -> None:
    observed = await observe(target(nats_js.ro_url, None))
    assert (observed.streams, observed.api_requests) == ((), 0)
    assert observed.version[0].isdigit()
