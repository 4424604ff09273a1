"""Benchmark: datarch's NATS probe + comparison against natscli's `nats stream report`, 500 streams.

Sets up, idempotently, 500 streams (`datarch_bench_000` ...) with 2 durable
pull consumers each on the dev NATS server: `worker` holds 5 delivered,
unacknowledged messages (so every lag figure, the oldest unacked age included,
is read), `audit` has acknowledged what it took. Then it times, on the same
server, several runs of
- datarch: observe() with a fresh connection, then compare_nats(), for a claim
  naming all 500 streams and 1000 consumers with lag thresholds;
- natscli `nats stream report`, built from its Go module at NATSCLI_VERSION
  (once, cached in the datarch bin directory),
and prints the medians, the JetStream API requests each made and the ratios.
`nats stream report` reads the stream list only (its consumer column is the
stream state's count), so datarch is also timed with a claim that names the
streams without their consumers: the like-for-like figure.

The streams are removed at the end unless `--keep` is given (a kept set makes
the next run start at once). Their names sort after the test suite's `T...`
streams, so a test fixture listing one page of streams still sees its own.

    eval "$(make -s env-vars)"; .venv/bin/python bench/nats_lag.py [--runs 5] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nats
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig
from pydantic import SecretStr

from datarch.claims import Store
from datarch.comparison.nats import compare_nats
from datarch.probes.base import Target
from datarch.probes.nats import observe

NATSCLI_MODULE = "github.com/nats-io/natscli/nats"
# A recent natscli release whose go.mod asks for Go 1.26 at most.
NATSCLI_VERSION = "v0.5.1"
STREAMS = 500
PREFIX = "datarch_bench_"
PUBLISHED = 20  # messages per stream
UNACKED = 5  # delivered to `worker` and left unacknowledged
ACKED = 10  # delivered to `audit` and acknowledged
SETUP_CONCURRENCY = 16
TIMEOUT = 60.0
WIDTH = 47  # label column of the printed figures


def stream_name(index: int) -> str:
    return f"{PREFIX}{index:03d}"


def subject(index: int) -> str:
    return f"datarch.bench.{index:03d}"


# --- setup ------------------------------------------------------------------------------


async def existing_streams(nc: Any) -> set[str]:
    names: set[str] = set()
    offset = 0
    while True:
        reply = await nc.request(
            "$JS.API.STREAM.NAMES", json.dumps({"offset": offset}).encode(), timeout=10
        )
        page = json.loads(reply.data)
        names.update(page.get("streams") or ())
        offset += len(page.get("streams") or ())
        if not page.get("streams") or offset >= page["total"]:
            return names


async def create_stream(js: Any, index: int) -> None:
    name = stream_name(index)
    await js.add_stream(
        StreamConfig(
            name=name, subjects=[f"{subject(index)}.>"], storage=StorageType.FILE, max_msgs=1000
        )
    )
    for number in range(PUBLISHED):
        await js.publish(f"{subject(index)}.event", f"{number}".encode())
    for durable in ("worker", "audit"):
        await js.add_consumer(
            name, ConsumerConfig(durable_name=durable, ack_policy=AckPolicy.EXPLICIT, ack_wait=3600)
        )
    worker = await js.pull_subscribe_bind(durable="worker", stream=name)
    await worker.fetch(UNACKED, timeout=10)
    await worker.unsubscribe()
    audit = await js.pull_subscribe_bind(durable="audit", stream=name)
    for message in await audit.fetch(ACKED, timeout=10):
        await message.ack_sync()
    await audit.unsubscribe()


async def set_up(url: str) -> None:
    nc = await nats.connect(url, allow_reconnect=False)
    try:
        js = nc.jetstream(timeout=10)
        present = await existing_streams(nc)
        missing = [index for index in range(STREAMS) if stream_name(index) not in present]
        started = time.perf_counter()
        slots = asyncio.Semaphore(SETUP_CONCURRENCY)

        async def create(index: int) -> None:
            async with slots:
                await create_stream(js, index)

        await asyncio.gather(*(create(index) for index in missing))
        print(
            f"setup: {STREAMS} streams x 2 consumers, {len(missing)} created "
            f"in {time.perf_counter() - started:.1f}s, {STREAMS - len(missing)} already there"
        )
    finally:
        await nc.close()


async def tear_down(url: str) -> None:
    nc = await nats.connect(url, allow_reconnect=False)
    try:
        js = nc.jetstream(timeout=10)
        for name in sorted(await existing_streams(nc)):
            if name.startswith(PREFIX):
                await js.delete_stream(name)
    finally:
        await nc.close()


# --- datarch ------------------------------------------------------------------------------


def claim(with_consumers: bool) -> Store:
    lag = {
        "maxPending": 1000,
        "maxAckPending": 100,
        "maxRedelivered": 10,
        "maxOldestUnackedAge": "24h",
    }
    streams = [
        {
            "name": stream_name(index),
            "subjects": [f"{subject(index)}.>"],
            "retention": "limits",
            "storage": "file",
            "maxMsgs": 1000,
            "consumers": [
                {"name": "worker", "ackPolicy": "explicit", "ackWait": "1h", "lag": lag},
                {"name": "audit", "ackPolicy": "explicit", "lag": lag},
            ]
            if with_consumers
            else None,
        }
        for index in range(STREAMS)
    ]
    return Store.model_validate({"name": "bench", "kind": "nats", "nats": {"streams": streams}})


async def time_datarch(
    url: str, runs: int, with_consumers: bool
) -> tuple[list[float], int, int, int]:
    store = claim(with_consumers)
    target = Target(store=store, timeout=TIMEOUT, secret=SecretStr(url), secret_key="url")
    seconds, requests, findings, aged = [], 0, 0, 0
    for _ in range(runs):
        started = time.perf_counter()
        observed = await observe(target)
        found = compare_nats(store, observed)
        seconds.append(time.perf_counter() - started)
        requests, findings = observed.api_requests, len(found)
        aged = sum(
            1
            for stream in observed.streams
            for consumer in stream.consumers
            if stream.name.startswith(PREFIX) and (consumer.oldest_unacked_age_seconds or 0) > 0
        )
    return seconds, requests, findings, aged


# --- natscli ------------------------------------------------------------------------------


def natscli() -> Path:
    """natscli at NATSCLI_VERSION, built with the local Go toolchain the first time."""
    cache = Path(os.environ.get("DATARCH_CACHE_DIR") or Path.home() / ".cache" / "datarch")
    binary = cache / "bin" / "nats"
    if binary.exists():
        shown = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
        if (shown.stdout + shown.stderr).strip() == NATSCLI_VERSION:
            return binary
    print(f"building natscli {NATSCLI_VERSION} from its Go module (once) ...", flush=True)
    subprocess.run(
        ["go", "install", f"{NATSCLI_MODULE}@{NATSCLI_VERSION}"],
        env={**os.environ, "GOBIN": str(binary.parent), "GOTOOLCHAIN": "local"},
        check=True,
    )
    return binary


def time_natscli(binary: Path, url: str, runs: int) -> tuple[list[float], int]:
    with tempfile.TemporaryDirectory() as config_home:
        # No context of the user's may redirect or slow the run.
        env = {**os.environ, "XDG_CONFIG_HOME": config_home, "NATS_CONTEXT": ""}
        command = [str(binary), "--no-context", "-s", url, "--timeout=60s", "stream", "report"]
        seconds = []
        for _ in range(runs):
            started = time.perf_counter()
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            seconds.append(time.perf_counter() - started)
            if done.returncode != 0 or stream_name(STREAMS - 1) not in done.stdout:
                sys.exit(
                    f"nats stream report failed ({done.returncode}): {done.stderr.strip()[:500]}"
                )
        # --trace logs each JetStream API request it sends: count them in an untimed run.
        traced = subprocess.run(
            [*command[:-2], "--trace", *command[-2:]],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        requests = len(re.findall(r">>> \$JS\.API\.", traced.stdout + traced.stderr))
    return seconds, requests


# --- main ---------------------------------------------------------------------------------


def describe(seconds: list[float]) -> str:
    return (
        f"median {statistics.median(seconds):.3f}s (min {min(seconds):.3f}s, {len(seconds)} runs)"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="leave the streams for the next run")
    options = parser.parse_args()
    url = os.environ.get("DATARCH_NATS_URL")
    if not url:
        sys.exit('DATARCH_NATS_URL is not set: eval "$(make -s env-vars)" first')
    binary = natscli()
    await set_up(url)
    try:
        ours, requests, findings, aged = await time_datarch(url, options.runs, True)
        streams_only, streams_requests, streams_findings, _ = await time_datarch(
            url, options.runs, False
        )
        theirs, their_requests = time_natscli(binary, url, options.runs)
    finally:
        if not options.keep:
            await tear_down(url)
    print(
        f"{'datarch probe+compare, streams + consumer lag:':{WIDTH}} {describe(ours)}; "
        f"{requests} JetStream API requests; {findings} findings; "
        f"{aged} consumers with an oldest unacked age"
    )
    print(
        f"{'datarch probe+compare, streams only:':{WIDTH}} {describe(streams_only)}; "
        f"{streams_requests} JetStream API requests; {streams_findings} findings"
    )
    print(
        f"{f'nats stream report (natscli {NATSCLI_VERSION}):':{WIDTH}} {describe(theirs)}; "
        f"{their_requests} JetStream API requests (--trace)"
    )
    theirs_median = statistics.median(theirs)
    print(
        "ratio natscli / datarch (medians): "
        f"{theirs_median / statistics.median(ours):.2f} against streams + lag, "
        f"{theirs_median / statistics.median(streams_only):.2f} against streams only"
    )


if __name__ == "__main__":
    asyncio.run(main())
