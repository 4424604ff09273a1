"""kopf wiring: start-up, the claim watch, probes and shutdown; the only importer of kopf.

Why kopf's raw watch (`on.event`) and not its create/update handlers or timers:
kopf's timers and daemons put a finalizer on every claim, so a claim could not be
deleted while the operator is down; its change handlers store progress and a
diff-base in annotations on the claim. A verification pass is idempotent and
reads its whole world afresh, so it needs neither. The watch tells the
controller's `Schedule` about claims as they appear, change and go; the
per-claim loops, and why they leave nothing behind, are in controller.py.

Everything long-lived (the settings and the controller's Runtime: the client
pool, Kubernetes clients, the metrics collector) lives in kopf's memo; there
are no module-level globals.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import kopf

from datarch import outages
from datarch.claims import API_GROUP, API_VERSION, PLURAL
from datarch.controller import Runtime
from datarch.kube import ConfigException
from datarch.settings import SettingsInvalid, load_settings

# --- the handlers ----------------------------------------------------------------


async def on_startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.posting.enabled = False  # kopf's log lines are not Events: ours mark transitions only
    settings.networking.error_backoffs = outages.RetryForever()  # an outage never ends the watch
    # Namespaces are exact names and the CRD is installed first: no cluster-wide
    # list/watch of CRDs or namespaces is needed (nor granted by the chart).
    settings.scanning.disabled = True
    try:
        memo.runtime = await Runtime.start(memo.settings)
    except (OSError, ConfigException) as error:  # a busy port or no cluster: retrying will not help
        raise kopf.PermanentError(f"while starting the operator: {error}") from error


async def on_cleanup(memo: kopf.Memo, **_: Any) -> None:
    await memo.runtime.stop()


async def on_claim_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """Every watch event of every claim: created, changed (spec or status) or deleted."""
    memo.runtime.schedule.observe(event.get("type"), event["object"])


async def on_probe(memo: kopf.Memo, **_: Any) -> dict[str, int]:
    """/healthz carries these counts, for people and the benchmark."""
    counts: dict[str, int] = memo.runtime.counts()
    return counts


def build_registry() -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    # kopf logs in as the kubernetes client would: service account in a pod, else kubeconfig.
    kopf.on.login(registry=registry)(kopf.login_via_client)
    kopf.on.startup(registry=registry)(on_startup)
    kopf.on.cleanup(registry=registry)(on_cleanup)
    kopf.on.event(API_GROUP, API_VERSION, PLURAL, registry=registry)(on_claim_event)
    kopf.on.probe(id="datarch", registry=registry)(on_probe)
    return registry


def run_operator(
    namespaces: Sequence[str], metrics_port: int | None, health_port: int | None
) -> None:
    """`datarch operator`: watch the given namespaces (all when none) until interrupted."""
    try:
        settings = load_settings(
            namespaces=tuple(namespaces) or None, metrics_port=metrics_port, health_port=health_port
        )
    except SettingsInvalid as error:  # bad configuration fails the start, in one line
        raise SystemExit(f"datarch operator: {error}") from error
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s"
    )
    if settings.log_level != "DEBUG":
        logging.getLogger("kopf").setLevel(logging.WARNING)  # per-object chatter is ours to log
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # every probe and scrape
        outages.install()  # one line per API-server outage, not one per retry
    kopf.run(
        registry=build_registry(),
        standalone=True,  # one replica; no kopf peering CRDs needed on the cluster
        # Without an identity kopf derives one from getpass.getuser(), which raises
        # KeyError for a uid with no passwd entry: the image's 65532 has none. (Its type,
        # a NewType of str, is not exported by kopf.)
        identity=settings.instance,  # type: ignore[arg-type]
        clusterwide=not settings.namespaces,
        namespaces=settings.namespaces,
        liveness_endpoint=f"http://{settings.health_host}:{settings.health_port}/healthz",
        memo=kopf.Memo(settings=settings),
    )
