"""The controller behind the kopf handlers: one verification loop per claim, status
patches, Events and metrics. It holds no kopf: handlers.py feeds it watch events.

A loop verifies its claim at once, then every spec.interval (plus jitter) or as
soon as the spec changes (a new generation), at most N claims at a time. Nothing
is ever written to a claim but its status, so a killed operator leaves nothing
half-done behind, and deletion never waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from kubernetes import client as kube
from pydantic import ValidationError

from datarch.claims import API_GROUP, API_VERSION, PLURAL, ClaimSpec, format_validation_error
from datarch.durations import parse_duration
from datarch.kube import api_client
from datarch.probes.base import ClientPool
from datarch.reporting import metrics
from datarch.reporting.events import ClaimRef, post_events, transitions
from datarch.reporting.status import build_status, invalid_status, needs_patch, unverified_status
from datarch.secrets import KubernetesSecrets
from datarch.settings import OperatorSettings
from datarch.verification import Verdict, backups_from_cluster, verify

log = logging.getLogger("datarch.operator")

# The model's default, for a spec that names no interval or one that does not parse.
DEFAULT_INTERVAL_SECONDS = parse_duration(ClaimSpec.model_fields["interval"].default)
# The CRD and the model refuse intervals under 1s, but a claim stored before that rule
# existed can still hold `interval: 0s`: the model calls it invalid, and without this
# floor its loop would write ClaimInvalid back to back. Still needed as that defence.
MIN_INTERVAL_SECONDS = 1.0


@dataclass
class Counts:
    """What the operator did since it started; /healthz shows it."""

    passes: int = 0
    status_patches: int = 0
    events: int = 0


@dataclass
class Runtime:
    """The operator's long-lived parts, built once at start-up and closed at shutdown."""

    api: kube.ApiClient
    pool: ClientPool
    schedule: Schedule
    metrics_server: Any
    housekeeping: asyncio.Task[None]

    @classmethod
    async def start(cls, settings: OperatorSettings) -> Runtime:
        # The synchronous kubernetes client and some drivers run in threads: enough for every
        # claim allowed at once, rather than asyncio's default of CPUs + 4.
        workers = 4 * settings.max_concurrent_claims
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(workers, "datarch"))
        # Each concurrent claim may read Secrets, CronJobs and patch status at once.
        api = api_client(pool_size=max(4, settings.max_concurrent_claims * 2))
        pool = ClientPool()
        collector = metrics.VerdictCollector()
        schedule = Schedule(settings, api, pool, collector)
        try:
            server = await metrics.start_metrics_server(
                metrics.registry_with(collector), settings.metrics_host, settings.metrics_port
            )
        except OSError as error:
            raise OSError(
                f"while listening on {settings.metrics_host}:{settings.metrics_port} "
                f"for /metrics: {error.strerror or error}"
            ) from error
        housekeeping = asyncio.create_task(schedule.housekeeping(), name="datarch housekeeping")
        log.info(
            "watching %s; metrics on :%d/metrics, health on :%d/healthz",
            ", ".join(settings.namespaces) or "all namespaces",
            settings.metrics_port,
            settings.health_port,
        )
        return cls(api, pool, schedule, server, housekeeping)

    def counts(self) -> dict[str, int]:
        return self.schedule.counts_dict()

    async def stop(self) -> None:
        log.info("stopping: %s", self.counts())
        self.housekeeping.cancel()
        await self.schedule.close()
        await self.metrics_server.cleanup()
        await self.pool.close()
        await asyncio.to_thread(self.api.close)


# --- one loop per claim --------------------------------------------------------------


@dataclass
class Claim:
    """What the schedule knows of one claim: its latest body and the status last written."""

    ref: ClaimRef
    body: Mapping[str, Any]
    generation: int | None
    status: Mapping[str, Any] | None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class Schedule:
    """Runs every watched claim's verification loop, at most N passes at a time."""

    def __init__(
        self,
        settings: OperatorSettings,
        api: kube.ApiClient,
        pool: ClientPool,
        collector: metrics.VerdictCollector,
    ) -> None:
        self._settings = settings
        self._core_v1 = kube.CoreV1Api(api)
        self._batch_v1 = kube.BatchV1Api(api)
        self._custom = kube.CustomObjectsApi(api)
        self._pool = pool
        self._collector = collector
        self._claims: dict[tuple[str, str], Claim] = {}
        self._slots = asyncio.Semaphore(settings.max_concurrent_claims)
        self.counts = Counts()

    def counts_dict(self) -> dict[str, int]:
        return {
            "claims": len(self._claims),
            "passes": self.counts.passes,
            "statusPatches": self.counts.status_patches,
            "events": self.counts.events,
            "clientsOpen": len(self._pool),
            "clientsOpened": self._pool.opened,
        }

    def observe(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        meta = body.get("metadata") or {}
        key = (str(meta.get("namespace")), str(meta.get("name")))
        known = self._claims.get(key)
        if event_type == "DELETED":
            self._drop(key)
            return
        if known is not None and known.ref.uid == meta.get("uid"):
            known.body = body
            if meta.get("generation") != known.generation:  # the spec changed: verify now
                known.generation = meta.get("generation")
                known.wake.set()
            return
        self._drop(key)  # a claim deleted and re-created under the same name starts afresh
        claim = Claim(
            ref=ClaimRef(key[0], key[1], meta.get("uid")),
            body=body,
            generation=meta.get("generation"),
            status=body.get("status") or None,
        )
        claim.task = asyncio.create_task(self._loop(claim), name=f"datarch claim {key[0]}/{key[1]}")
        self._claims[key] = claim

    def _drop(self, key: tuple[str, str]) -> None:
        claim = self._claims.pop(key, None)
        if claim is not None and claim.task is not None:
            claim.task.cancel()
        self._collector.forget(*key)

    async def close(self) -> None:
        tasks = [c.task for c in self._claims.values() if c.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._claims.clear()

    def _interval(self, claim: Claim) -> float:
        # Read from the raw spec, not the model: an invalid claim waits between passes too.
        try:
            interval = parse_duration(str((claim.body.get("spec") or {})["interval"]))
        except (KeyError, ValueError):
            interval = DEFAULT_INTERVAL_SECONDS
        interval = max(interval, MIN_INTERVAL_SECONDS)
        return interval * (1 + random.uniform(0, self._settings.interval_jitter))

    async def _loop(self, claim: Claim) -> None:
        while True:
            claim.wake.clear()
            if (claim.body.get("spec") or {}).get("suspend") is True:
                await claim.wake.wait()  # until the spec changes again
                continue
            async with self._slots:
                try:
                    await self._verify(claim)
                except Exception:
                    log.exception("while verifying %s/%s", claim.ref.namespace, claim.ref.name)
            with contextlib.suppress(TimeoutError):  # the interval passed: verify again
                await asyncio.wait_for(claim.wake.wait(), self._interval(claim))

    async def _verify(self, claim: Claim) -> None:
        """One pass: verify, record metrics, then patch status and post Events if anything moved."""
        ref, generation = claim.ref, claim.generation
        started = time.perf_counter()
        try:
            spec = ClaimSpec.model_validate(claim.body.get("spec") or {})
        except ValidationError as error:
            new = invalid_status(format_validation_error(error), generation, claim.status, _now())
            self._collector.record_error(
                ref.namespace, ref.name, time.perf_counter() - started, unknown=True
            )
        else:
            # Every step has its own timeout; this bounds what has none (a Secret read
            # from an API server that accepts but never answers).
            deadline = 2 * spec.timeout_seconds + 4 * self._settings.kube_api_timeout_seconds
            try:
                async with asyncio.timeout(deadline):
                    verdict = await self._verdict(ref, spec)
                new = build_status(verdict, generation, claim.status)
            except Exception as error:  # TimeoutError, or a bug: never leave the last True standing
                if isinstance(error, TimeoutError):
                    cause = f"the pass did not finish within {deadline:g}s"
                    log.warning("while verifying %s/%s: %s", ref.namespace, ref.name, cause)
                else:
                    # The type only: an unexpected error's text might carry a credential.
                    cause = f"internal error ({type(error).__name__}); see the operator's log"
                    log.exception("while verifying %s/%s", ref.namespace, ref.name)
                new = unverified_status(cause, generation, claim.status, _now())
                self._collector.record_error(
                    ref.namespace, ref.name, time.perf_counter() - started, unknown=True
                )
            else:
                self._collector.record(ref.namespace, ref.name, spec, verdict)
        self.counts.passes += 1
        await self._publish(claim, new)

    async def _verdict(self, ref: ClaimRef, spec: ClaimSpec) -> Verdict:
        # A new reader each pass re-reads the Secrets, so a rotated password just works.
        timeout = self._settings.kube_api_timeout_seconds
        secrets = KubernetesSecrets(self._core_v1, ref.namespace, timeout)
        backups = backups_from_cluster(ref.namespace, self._batch_v1, secrets, self._pool, timeout)
        return await verify(spec, secrets, clients=self._pool, backups=backups)

    async def _publish(self, claim: Claim, new: dict[str, Any]) -> None:
        if not needs_patch(claim.status, new):
            return
        found = transitions(claim.status, new)
        ref = claim.ref
        try:
            await asyncio.to_thread(
                self._custom.patch_namespaced_custom_object_status,
                API_GROUP,
                API_VERSION,
                ref.namespace,
                PLURAL,
                ref.name,
                {"status": new},
                _request_timeout=self._settings.kube_api_timeout_seconds,
                _content_type="application/merge-patch+json",
            )
        except Exception as error:  # kubernetes.client.ApiException, or a connection error
            if getattr(error, "status", None) == 404:
                self._drop((ref.namespace, ref.name))  # deleted, and the watch has not said so yet
                return
            log.warning(
                "while patching the status of %s/%s: %s",
                ref.namespace,
                ref.name,
                getattr(error, "reason", None) or type(error).__name__,
            )
            return  # claim.status stays as it was, so the next pass tries again
        claim.status = new
        self.counts.status_patches += 1
        for transition in found:
            log.info("%s/%s: %s", ref.namespace, ref.name, transition.describe())
        posted = await post_events(self._core_v1, ref, found, _now(), self._settings.instance)
        self.counts.events += posted  # not `+= await`: that reads the count before awaiting

    async def housekeeping(self) -> None:
        """Now and then: close store clients no claim used for a while (a rotated password
        leaves one behind), and forget claims the API server no longer has."""
        while True:
            longest = max((self._interval(c) for c in self._claims.values()), default=0.0)
            await asyncio.sleep(max(self._settings.client_idle_seconds, 2 * longest))
            await self._pool.prune()
            try:
                existing = await asyncio.to_thread(self._list_claims)
            except Exception as error:  # kubernetes.client.ApiException, or a connection error
                log.warning("while listing claims: %s", getattr(error, "reason", None) or error)
                continue
            for key, claim in list(self._claims.items()):
                if (*key, claim.ref.uid) not in existing:
                    self._drop(key)  # deleted while the watch was reconnecting

    def _list_claims(self) -> set[tuple[str, str, str | None]]:
        timeout = self._settings.kube_api_timeout_seconds
        if self._settings.namespaces:
            pages = [
                self._custom.list_namespaced_custom_object(
                    API_GROUP, API_VERSION, namespace, PLURAL, _request_timeout=timeout
                )
                for namespace in self._settings.namespaces
            ]
        else:
            pages = [
                self._custom.list_cluster_custom_object(
                    API_GROUP, API_VERSION, PLURAL, _request_timeout=timeout
                )
            ]
        items = [item for page in pages for item in cast(dict[str, Any], page).get("items", ())]
        return {
            (i["metadata"]["namespace"], i["metadata"]["name"], i["metadata"].get("uid"))
            for i in items
        }


def _now() -> datetime:
    return datetime.now(UTC)
