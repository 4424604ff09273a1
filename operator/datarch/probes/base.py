"""What every probe shares: the resolved Target it reads and the ClientPool that reuses clients.

No driver is imported here; each probe module owns its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import SecretStr

from datarch.claims import Store
from datarch.errors import StoreUnreachable

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Target:
    """One store as a probe reads it: the claim's expectations plus resolved credentials.

    `secret` is the value of the store's secretRef key (a DSN, URI, URL or NATS
    creds file, by kind); `url` is the non-secret address from the claim.
    """

    store: Store
    timeout: float
    url: str | None = None
    secret: SecretStr | None = None
    secret_key: str | None = None  # which key of the Secret `secret` came from
    access_key: SecretStr | None = None  # s3 only
    secret_access_key: SecretStr | None = None  # s3 only

    @property
    def pool_key(self) -> str:
        """Identifies what shapes a driver client (endpoint, TLS, region, timeout and
        credentials) without holding the credentials in clear."""
        connection = self.store.connection
        digest = hashlib.sha256()
        for part in (
            self.store.kind,
            self.url or "",
            (connection.endpoint or "") if connection else "",
            str(connection.secure) if connection else "",
            (connection.region or "") if connection else "",
            f"{self.timeout:g}",
            self.secret.get_secret_value() if self.secret else "",
            self.access_key.get_secret_value() if self.access_key else "",
            self.secret_access_key.get_secret_value() if self.secret_access_key else "",
        ):
            digest.update(part.encode() + b"\0")
        return f"{self.store.kind}:{digest.hexdigest()[:24]}"


class ClientPool:
    """Driver clients keyed by endpoint + credentials, reused across claims and passes.

    A rotated password changes the key, so the next pass opens a new client;
    the old one is closed when `prune` sees it unused.
    """

    def __init__(self) -> None:
        self._clients: dict[str, tuple[Any, Callable[[Any], Awaitable[None]]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._used: set[str] = set()
        self.opened = 0  # clients ever opened, reported by the operator benchmark

    async def get(
        self,
        key: str,
        open_client: Callable[[], Awaitable[T]],
        close_client: Callable[[T], Awaitable[None]],
    ) -> T:
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            self._used.add(key)
            if key in self._clients:
                client: T = self._clients[key][0]
                return client
            client = await open_client()
            self.opened += 1
            self._clients[key] = (client, close_client)
            return client

    async def discard(self, key: str) -> None:
        """Drop a client that failed, so the next pass reconnects."""
        entry = self._clients.pop(key, None)
        if entry is not None:
            await _close_quietly(entry)

    async def prune(self) -> None:
        """Close clients no pass used since the last prune."""
        for key in [k for k in self._clients if k not in self._used]:
            await self.discard(key)
        self._used.clear()

    async def close(self) -> None:
        for key in list(self._clients):
            await self.discard(key)

    def __len__(self) -> int:
        return len(self._clients)


@contextlib.asynccontextmanager
async def lease(
    clients: ClientPool | None,
    key: str,
    open_client: Callable[[], Awaitable[T]],
    close_client: Callable[[T], Awaitable[None]],
    usable: Callable[[T], bool] = lambda _: True,
) -> AsyncIterator[T]:
    """A driver client for one observation: pooled when there is a pool, else one-off.

    A pooled client that failed to reach its store (timeouts included) is dropped,
    so the next pass reconnects rather than reusing a hung connection. One that
    `usable` rejects (its server went away since the last pass) is replaced, once.
    """
    # `is not None`, never truthiness: an empty pool has length 0.
    if clients is None:
        client = await open_client()
    else:
        client = await clients.get(key, open_client, close_client)
        if not usable(client):
            await clients.discard(key)
            client = await clients.get(key, open_client, close_client)
    try:
        yield client
    except StoreUnreachable:
        if clients is not None:
            await clients.discard(key)
        raise
    finally:
        if clients is None:
            await close_client(client)


# Tasks given up on at their deadline, kept referenced until they end (asyncio holds
# only weak references) and their outcome retrieved so none is logged as unhandled.
_ABANDONED: set[asyncio.Task[Any]] = set()


async def within(awaitable: Awaitable[T], timeout: float) -> T:
    """`awaitable`'s result, or TimeoutError after exactly `timeout` seconds.

    asyncio.wait_for waits for the cancelled work to finish, and a driver may take
    its time there (psycopg waits up to 5 s for a server-side cancel, then 5 s more
    before closing): a store's timeout would then be a wish, not a bound. Here the
    work is cancelled and left to wind down on its own.
    """
    task = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if task in done:
        return task.result()
    task.cancel()
    _ABANDONED.add(task)
    task.add_done_callback(_forget)
    raise TimeoutError


def _forget(task: asyncio.Task[Any]) -> None:
    _ABANDONED.discard(task)
    if not task.cancelled():
        task.exception()


async def _close_quietly(entry: tuple[Any, Callable[[Any], Awaitable[None]]]) -> None:
    client, close_client = entry
    with contextlib.suppress(Exception):  # a broken client may fail to close; dropped anyway
        await close_client(client)
