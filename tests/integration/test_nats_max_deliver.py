"""A message that exhausted MaxDeliver is not lag: the oldest unacked age never counts it,
and abandoned messages are counted as their own fact where their advisories are kept.

The server leaves the consumer's ack floor below such a message until nothing
is pending, so "the first message after the ack floor" is the abandoned one.
JetStream's API does not say which messages after the floor still await an
ack; the probe reads a lower bound (never too high) and an upper bound, and
comparison judges only what the bounds decide: a finding only when even the
lower bound exceeds the claim, a pass only when the upper bound is within it,
"could not check" between them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig
from pydantic import SecretStr

from conftest import NatsStreams
from datarch.claims import Store
from datarch.comparison.nats import compare_nats
from datarch.findings import Finding, Unchecked
from datarch.probes.base import Target
from datarch.probes.nats import observe

pytestmark = pytest.mark.integration

TIMEOUT = 5.0


def _store(stream: str, lag: dict[str, Any]) -> Store:
    return Store.model_validate(
        {
            "name": "events",
            "kind": "nats",
            "nats": {"streams": [{"name": stream, "consumers": [{"name": "worker", "lag": lag}]}]},
        }
    )


async def _poisoned(nats_js: NatsStreams, *, recorded: bool = False) -> str:
    """MaxDeliver 2, AckWait 1s: a poison message delivered twice and abandoned, then one
    good message delivered and awaiting its ack. Returns the stream name.

    `recorded`: a dead-letter stream keeps the consumer's MAX_DELIVERIES advisories,
    as the NATS docs suggest for finding abandoned messages."""
    stream, subject = f"{nats_js.prefix}POISON", f"{nats_js.subject_prefix}.poison"
    if recorded:
        await nats_js.js.add_stream(
            StreamConfig(
                name=f"{nats_js.prefix}DEAD",
                subjects=[f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{stream}.*"],
            )
        )
    await nats_js.js.add_stream(StreamConfig(name=stream, subjects=[f"{subject}.>"]))
    await nats_js.js.add_consumer(
        stream,
        ConsumerConfig(
            durable_name="worker", ack_policy=AckPolicy.EXPLICIT, max_deliver=2, ack_wait=1
        ),
    )
    worker = await nats_js.js.pull_subscribe_bind(durable="worker", stream=stream)
    await nats_js.js.publish(f"{subject}.jobs", b"poison")
    for _ in range(2):  # delivered, never acked, redelivered after AckWait, abandoned
        (message,) = await worker.fetch(1, timeout=TIMEOUT)
        assert message.data == b"poison"
        await asyncio.sleep(1.3)
    await asyncio.sleep(1.5)  # the poison message is now clearly older than the good one
    await nats_js.js.publish(f"{subject}.jobs", b"good")
    (good,) = await worker.fetch(1, timeout=TIMEOUT)
    assert good.data == b"good" and good.metadata.num_delivered == 1
    info = await nats_js.js.consumer_info(stream, "worker")
    # The server's own view: one message awaiting an ack, the floor stuck below the poison.
    assert (info.num_ack_pending, info.ack_floor.stream_seq, info.delivered.stream_seq) == (1, 0, 2)
    return stream


async def test_an_abandoned_message_is_never_timed_as_the_oldest_unacked(
    nats_js: NatsStreams,
) -> None:
    stream = await _poisoned(nats_js)
    store = _store(stream, {"maxOldestUnackedAge": "2s"})

    observed = await observe(
        Target(store=store, timeout=TIMEOUT, secret=SecretStr(nats_js.ro_url), secret_key="url")
    )
    outcomes = compare_nats(store, observed)

    # Every stream on the server is listed (sorted): pick this test's own.
    (found,) = [s for s in observed.streams if s.name == stream]
    (consumer,) = found.consumers
    # The bound the probe reports is never too high: the good message is under a second old.
    assert consumer.oldest_unacked_age_seconds is not None
    assert consumer.oldest_unacked_age_seconds < 1.0
    assert not consumer.oldest_unacked_age_exact
    assert consumer.oldest_unacked_age_at_most_seconds is not None
    assert consumer.oldest_unacked_age_at_most_seconds > 3.5  # the poison message
    assert [o for o in outcomes if isinstance(o, Finding)] == []
    (unchecked,) = outcomes
    assert isinstance(unchecked, Unchecked)
    assert unchecked.path == f"{stream}.consumers.worker.lag.maxOldestUnackedAge"
    assert "exhausted maxDeliver" in unchecked.reason


async def test_bounds_within_the_claim_pass_and_a_lower_bound_beyond_it_is_a_finding(
    nats_js: NatsStreams,
) -> None:
    stream = await _poisoned(nats_js)
    loose, tight = _store(stream, {"maxOldestUnackedAge": "1m"}), _store(stream, {})
    await asyncio.sleep(0.3)

    observed = await observe(
        Target(store=loose, timeout=TIMEOUT, secret=SecretStr(nats_js.ro_url), secret_key="url")
    )
    tight = _store(stream, {"maxOldestUnackedAge": "100ms"})

    assert compare_nats(loose, observed) == []
    (finding,) = compare_nats(tight, observed)
    assert isinstance(finding, Finding)
    assert finding.observed is not None and finding.observed.startswith("at least ")
    assert "lower bound" in finding.message


async def test_abandoned_messages_are_counted_where_a_stream_records_their_advisories(
    nats_js: NatsStreams,
) -> None:
    stream = await _poisoned(nats_js, recorded=True)
    none_allowed, one_allowed = (
        _store(stream, {"maxMaxDelivered": 0}),
        _store(stream, {"maxMaxDelivered": 1}),
    )

    observed = await observe(
        Target(
            store=none_allowed, timeout=TIMEOUT, secret=SecretStr(nats_js.ro_url), secret_key="url"
        )
    )

    (found,) = [s for s in observed.streams if s.name == stream]
    assert found.consumers[0].num_max_delivered == 1
    (finding,) = compare_nats(none_allowed, observed)
    assert isinstance(finding, Finding)
    assert (finding.path, finding.expected, finding.observed) == (
        f"{stream}.consumers.worker.lag.maxMaxDelivered",
        "<= 0",
        "1",
    )
    assert compare_nats(one_allowed, observed) == []


async def test_without_a_record_of_the_advisories_abandoned_messages_are_could_not_check(
    nats_js: NatsStreams,
) -> None:
    stream = await _poisoned(nats_js)
    store = _store(stream, {"maxMaxDelivered": 0})

    observed = await observe(
        Target(store=store, timeout=TIMEOUT, secret=SecretStr(nats_js.ro_url), secret_key="url")
    )

    (found,) = [s for s in observed.streams if s.name == stream]
    assert found.consumers[0].num_max_delivered is None
    (unchecked,) = compare_nats(store, observed)
    assert isinstance(unchecked, Unchecked)
    assert "MAX_DELIVERIES" in unchecked.reason
