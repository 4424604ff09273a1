"""Kubernetes Events for condition transitions, and only for those: a pass that changes no
condition's status posts nothing, however often it runs.

Which transitions are worth an Event (`transitions`) is pure; `post_events` writes
them as core/v1 Events through the synchronous kubernetes client, in a thread.
A person reading `kubectl describe dac` sees one line per change of state:
  - every flip of StoresReachable, Conforming or BackupsFresh, e.g.
    `Conforming True->False: 3 findings in main: ...`;
  - Ready when it becomes True, and when it leaves True unexplained by any other
    condition's Event (an invalid spec); otherwise that Event says it;
  - on the first pass, only what is not True: a healthy new claim gets one
    Event (Ready), a broken one an Event per broken condition.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from datarch.claims import API_GROUP, API_VERSION, KIND
from datarch.reporting import conditions as c
from datarch.reporting.status import clip, previous_conditions

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 1024  # the API server refuses longer Event messages
REPORTING_COMPONENT = "datarch.io/operator"
SOURCE_COMPONENT = "datarch"


@dataclass(frozen=True, slots=True)
class ClaimRef:
    """The claim an Event is about."""

    namespace: str
    name: str
    uid: str | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    """One condition whose status changed between two statuses; `before` is None the first time."""

    type: str
    before: str | None
    after: str
    reason: str
    message: str

    @property
    def event_type(self) -> str:
        return "Normal" if self.after == c.TRUE else "Warning"

    def describe(self) -> str:
        return clip(
            f"{self.type} {self.before or c.UNKNOWN}->{self.after}: {self.message}", MESSAGE_LIMIT
        )


def transitions(previous: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[Transition]:
    """The condition flips between two statuses that deserve an Event (see the module docstring)."""
    before = previous_conditions(previous)
    ready: Transition | None = None
    found = []
    for condition in previous_conditions(new).values():
        kind, after = condition["type"], condition.get("status")
        old = before.get(kind, {}).get("status")
        if after == old or not isinstance(after, str):
            continue
        transition = Transition(
            kind, old, after, str(condition.get("reason", "")), str(condition.get("message", ""))
        )
        if kind == c.READY:
            ready = transition
        elif not (old is None and after in (c.TRUE, c.UNKNOWN)):
            found.append(transition)  # first pass: nothing known before, or Ready's Event says it
    # Ready going True is news; Ready leaving True is already told by the condition that
    # made it, unless none did (an invalid spec makes Ready False and the rest Unknown).
    if ready is not None and (ready.after == c.TRUE or not found):
        found.insert(0, ready)
    return found


def event_body(
    transition: Transition, claim: ClaimRef, now: datetime, instance: str
) -> dict[str, Any]:
    stamp = now.replace(microsecond=0).isoformat().replace("+00:00", "Z")
    involved = {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": KIND,
        "namespace": claim.namespace,
        "name": claim.name,
    }
    if claim.uid:
        involved["uid"] = claim.uid
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{claim.name}.", "namespace": claim.namespace},
        "involvedObject": involved,
        "type": transition.event_type,
        "reason": transition.reason or transition.type,
        "message": transition.describe(),
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
        "source": {"component": SOURCE_COMPONENT},
        "reportingComponent": REPORTING_COMPONENT,
        "reportingInstance": instance[:128],
    }


async def post_events(
    core_v1: Any, claim: ClaimRef, found: Sequence[Transition], now: datetime, instance: str
) -> int:
    """Post one Event per transition; returns how many were accepted. A refused Event is
    logged and dropped: reporting must not fail the pass that it reports on."""
    posted = 0
    for transition in found:
        body = event_body(transition, claim, now, instance)
        try:
            await asyncio.to_thread(core_v1.create_namespaced_event, claim.namespace, body)
        except Exception as error:  # kubernetes.client.ApiException, or a connection error
            log.warning(
                "while posting the %s Event for %s/%s: %s",
                transition.type,
                claim.namespace,
                claim.name,
                getattr(error, "reason", None) or error,
            )
            continue
        posted += 1
    return posted
