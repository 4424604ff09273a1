"""Resolving a claim's secretRefs into credentials, from a directory, the environment or Kubernetes.

Values are SecretStr from the moment they are read; nothing here logs them.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
from pathlib import Path
from typing import Any, Protocol

from pydantic import SecretStr

from datarch.claims import SecretRef, StoreKind
from datarch.errors import SecretUnavailable

DEFAULT_KEYS: dict[StoreKind, str] = {
    "postgres": "dsn",
    "mongodb": "uri",
    "redis": "url",
    "nats": "url",
    "s3": "accessKey",  # and "secretKey"
}
S3_SECRET_KEY = "secretKey"


class SecretResolver(Protocol):
    async def read(self, ref_name: str, key: str) -> SecretStr:
        """The value of one key of one Secret; SecretUnavailable when it cannot be had."""
        ...


def environment_name(secret: str, key: str) -> str:
    """DATARCH_SECRET_<SECRET>_<KEY>: upper case, every other character as `_`."""
    return "DATARCH_SECRET_" + re.sub(r"[^A-Z0-9]", "_", f"{secret}_{key}".upper())


class LocalSecrets:
    """Outside a cluster: DIR/<secret>/<key> when a directory is given, else the environment."""

    def __init__(
        self, directory: Path | None = None, environ: dict[str, str] | None = None
    ) -> None:
        self._directory = directory
        self._environ = environ if environ is not None else dict(os.environ)

    async def read(self, ref_name: str, key: str) -> SecretStr:
        if self._directory is not None:
            path = self._directory / ref_name / key
            try:
                return SecretStr(path.read_text(encoding="utf-8").rstrip("\n"))
            except FileNotFoundError as error:
                raise SecretUnavailable(
                    f"while reading secret {ref_name}: no key {key!r} (no file {path})"
                ) from error
            except OSError as error:
                raise SecretUnavailable(
                    f"while reading secret {ref_name} key {key!r}: {error.strerror}"
                ) from error
            except UnicodeDecodeError:  # `from None`: the error quotes the secret's bytes
                raise SecretUnavailable(
                    f"while reading secret {ref_name} key {key!r}: {path} is not UTF-8 text"
                ) from None
        name = environment_name(ref_name, key)
        value = self._environ.get(name)
        if value is None:
            raise SecretUnavailable(
                f"while reading secret {ref_name} key {key!r}: environment variable {name} is not set"
            )
        return SecretStr(value)


class KubernetesSecrets:
    """In a cluster: reads Secrets of one namespace on every pass, so rotation needs no restart.

    `core_v1` is a kubernetes.client.CoreV1Api; calls run in a thread because
    the official client is synchronous. One pass reads each Secret once.
    """

    def __init__(self, core_v1: Any, namespace: str, request_timeout: float | None = None) -> None:
        self._api = core_v1
        self._namespace = namespace
        self._request_timeout = request_timeout
        self._cache: dict[str, dict[str, str]] = {}
        self._lock = asyncio.Lock()

    async def read(self, ref_name: str, key: str) -> SecretStr:
        async with self._lock:
            if ref_name not in self._cache:
                self._cache[ref_name] = await asyncio.to_thread(self._fetch, ref_name)
        data = self._cache[ref_name]
        if key not in data:
            raise SecretUnavailable(
                f"while reading secret {self._namespace}/{ref_name}: it has no key {key!r}"
            )
        try:
            return SecretStr(base64.b64decode(data[key]).decode("utf-8").rstrip("\n"))
        except (ValueError, UnicodeDecodeError) as error:
            raise SecretUnavailable(
                f"while decoding secret {self._namespace}/{ref_name} key {key!r}: not UTF-8 text"
            ) from error

    def _fetch(self, ref_name: str) -> dict[str, str]:
        try:
            secret = self._api.read_namespaced_secret(
                ref_name, self._namespace, _request_timeout=self._request_timeout
            )
        except Exception as error:  # kubernetes.client.ApiException, or a connection error
            status = getattr(error, "status", None)
            cause = {404: "not found", 403: "forbidden"}.get(status or 0, type(error).__name__)
            raise SecretUnavailable(
                f"while reading secret {self._namespace}/{ref_name}: {cause}"
            ) from error
        return dict(secret.data or {})


def secret_key(ref: SecretRef, kind: StoreKind) -> str:
    return ref.key or DEFAULT_KEYS[kind]
