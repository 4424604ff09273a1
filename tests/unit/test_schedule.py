"""The operator's per-claim schedule: how long it waits between passes."""

from __future__ import annotations

from kubernetes import client as kube

from datarch.controller import MIN_INTERVAL_SECONDS, Claim, Schedule
from datarch.probes.base import ClientPool
from datarch.reporting.events import ClaimRef
from datarch.reporting.metrics import VerdictCollector
from datarch.settings import OperatorSettings


def interval_of(spec: dict[str, object]) -> float:
    settings = OperatorSettings(interval_jitter=0.0)
    schedule = Schedule(settings, kube.ApiClient(), ClientPool(), VerdictCollector())
    claim = Claim(ClaimRef("data", "platform"), {"spec": spec}, 1, None)
    return schedule._interval(claim)


def test_the_interval_is_the_specs() -> None:
    assert interval_of({"interval": "2s"}) == 2.0
    assert interval_of({"interval": "5m"}) == 300.0


def test_a_zero_interval_stored_before_the_crd_refused_it_does_not_make_a_busy_loop() -> None:
    # Today's CRD and model refuse `interval: 0s`, but a claim stored under an older CRD can
    # still hold it: without a floor its loop would verify back to back.
    assert interval_of({"interval": "0s"}) == MIN_INTERVAL_SECONDS
    assert interval_of({"interval": "1ms"}) == MIN_INTERVAL_SECONDS
