"""Backup freshness: CronJob/Job state read from the Kubernetes API, plus artifact age via the s3 probe.

It judges freshness (age against maxAge) but holds no status, metrics or kopf.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class BackupResult:
    """One backup as one pass saw it; `reason` is CamelCase and set whenever it is not fresh."""

    name: str
    fresh: bool
    reason: str
    message: str = ""
    last_successful_time: datetime | None = None
    last_failure_time: datetime | None = None
    age_seconds: float | None = None
    max_age_seconds: float | None = None
    artifact_age_seconds: float | None = None
    artifact_size_bytes: int | None = None
