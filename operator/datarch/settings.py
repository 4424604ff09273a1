"""The operator's configuration: DATARCH_* environment variables, read once at start-up.

Bad values fail the start with the variable's name, not a pass hours later.
Command-line options (namespaces, ports) are passed in and win over the environment.
Nothing here is a credential: store credentials live only in the claims' Secrets.
"""

from __future__ import annotations

import socket

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from datarch.durations import parse_duration
from datarch.errors import DatarchError


class SettingsInvalid(DatarchError):
    """A DATARCH_* variable has a value the operator cannot run with."""


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DATARCH_", extra="ignore", frozen=True)

    namespaces: tuple[str, ...] = Field(
        default=(), description="Namespaces to watch; empty: all (cluster-wide)."
    )
    metrics_host: str = Field(default="0.0.0.0", description="Address /metrics listens on.")
    metrics_port: int = Field(default=8080, ge=1, le=65535)
    health_host: str = Field(default="0.0.0.0", description="Address /healthz listens on.")
    health_port: int = Field(default=8081, ge=1, le=65535)
    max_concurrent_claims: int = Field(
        default=8, ge=1, description="Claims verified at the same time; the rest wait their turn."
    )
    interval_jitter: float = Field(
        default=0.1,
        ge=0.0,
        le=1.0,
        description="Each wait is spec.interval times 1 + up to this fraction, so claims spread out.",
    )
    client_idle: str = Field(
        default="10m",
        description="Store clients unused this long (and at least two intervals) are closed.",
    )
    kube_api_timeout: str = Field(default="15s", description="Timeout of each Kubernetes API call.")
    instance: str = Field(
        default_factory=socket.gethostname,
        description="reportingInstance of the Events posted (the pod name in a cluster).",
    )
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR.")

    @field_validator("client_idle", "kube_api_timeout")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        level = value.upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError(f"{value!r} is not DEBUG, INFO, WARNING or ERROR")
        return level

    @property
    def client_idle_seconds(self) -> float:
        return parse_duration(self.client_idle)

    @property
    def kube_api_timeout_seconds(self) -> float:
        return parse_duration(self.kube_api_timeout)


def load_settings(**overrides: object) -> OperatorSettings:
    """Environment plus command-line overrides (None means "not given"); SettingsInvalid names
    each bad variable."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return OperatorSettings(**given)  # type: ignore[arg-type]
    except ValidationError as error:
        problems = "; ".join(
            f"DATARCH_{'_'.join(str(p) for p in item['loc']).upper()}: {item['msg']}"
            for item in error.errors()
        )
        raise SettingsInvalid(f"while reading the operator's settings: {problems}") from error
