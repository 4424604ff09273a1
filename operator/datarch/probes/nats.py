"""NATS JetStream probe: streams, consumers and consumer lag, read through the JetStream API.

The only importer of nats-py. It sends nothing but JetStream info, list and
message-get requests (what a user allowed to publish only to `$JS.API.INFO`,
`$JS.API.STREAM.LIST`, `$JS.API.CONSUMER.LIST.>`, `$JS.API.STREAM.MSG.GET.>` and
`$JS.API.DIRECT.GET.>` may send), and never judges what it reads.

Requests stay few and bounded, whatever the server holds:
- `$JS.API.STREAM.LIST`, one per 256 streams (pages after the first in parallel);
- `$JS.API.CONSUMER.LIST.<stream>`, one per 256 consumers, only for the streams
  whose consumers the claim lists (even as an empty list);
- one message get per filter subject of a consumer the claim names that has
  unacknowledged messages, to time the oldest of them (and one more when the
  API leaves it ambiguous, for a lower bound);
- `$JS.API.STREAM.INFO.<recorder>`, one per named consumer and stream recording
  its MAX_DELIVERIES advisories, to count the messages it abandoned.

The oldest unacknowledged message lies after the consumer's ack floor (F) and
at or before its last delivered message (D), and the `k = num_ack_pending`
messages awaiting an ack are distinct sequences in (F, D]. The API does not say
which: a message after the floor may have been acknowledged out of order, or
have exhausted max_deliver (the server leaves the floor below it until nothing
is pending). So the probe reads two bounds, with timestamps rising with the
sequence: the first message after F on the consumer's filter (s1) is at least
as old as the oldest awaiting one (an upper bound), and the first message at or
after D - k + 1 at most as old (a lower bound, never too high). When s1 >= D - k
+ 1 both are the same message and the age is exact. Each age is the consumer
info's server timestamp (`ts`) minus the message's timestamp, both server
clocks. A message the stream already removed (max age, max msgs) cannot be
timed, so the next one still stored is, and when none is left the age is None.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import nats.errors
from nats.aio.client import Client, RawCredentials
from nats.aio.msg import Msg

from datarch.errors import AccessDenied, StoreError, StoreTimeout, StoreUnreachable
from datarch.observations import NatsConsumerObs, NatsStreamObs, ObservedNats
from datarch.probes.base import ClientPool, Target, lease

API = "$JS.API"
LISTING = "while listing JetStream streams"
# The server's page size for STREAM.LIST and CONSUMER.LIST.
PAGE_SIZE = 256
# Requests in flight at once: enough to hide round trips, few enough not to
# crowd a server that serves its JetStream API from a bounded queue.
CONCURRENCY = 16
# err_code values meaning JetStream is off for the server or the account.
JETSTREAM_DISABLED = {10039, 10076}
# Published once per message that exhausts a consumer's max_deliver: the only record of
# it (the consumer info keeps no count), kept where a stream captures the subject.
MAX_DELIVERIES = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES"
NO_MESSAGE = 10037
STREAM_NOT_FOUND = 10059
# NATS stream and consumer names: no whitespace, no subject tokens or wildcards,
# no path separators (the server stores them as directories).
_INVALID_NAME = re.compile(r"[\s.*>/\\\x00-\x1f\x7f]")
_TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


def valid_name(name: str) -> bool:
    """Only names that pass go into an API subject; any other cannot exist on the server."""
    return bool(name) and not _INVALID_NAME.search(name)


async def observe(target: Target, clients: ClientPool | None = None) -> ObservedNats:
    deadline = asyncio.get_running_loop().time() + target.timeout
    try:
        async with (
            asyncio.timeout_at(deadline),
            lease(
                clients,
                target.pool_key,
                lambda: _Connection.open(target),
                _Connection.close,
                usable=lambda connection: not connection.closed,
            ) as connection,
        ):
            return await _Reading(connection, target, deadline).observed()
    except TimeoutError as error:
        if clients is not None:
            await clients.discard(target.pool_key)
        raise StoreTimeout(
            f"{LISTING} at {_address(target)}: no answer within {target.timeout:g}s"
        ) from error


# --- the connection ---------------------------------------------------------------


class _Connection:
    """A nats-py client and what its error callback hears.

    nats-py reports a refused publish (a permissions violation) only to the
    error callback, and the request then waits out its timeout; listening there
    turns the refusal into AccessDenied at once. The same callback hears the
    first failed connection attempt, so a refused or unresolvable address fails
    after one attempt instead of nats-py's retry loop.
    """

    def __init__(self, target: Target) -> None:
        self.client = Client()
        self.target = target
        self._connecting: asyncio.Future[Exception] | None = None
        self._waiters: set[tuple[str, asyncio.Future[str]]] = set()

    @classmethod
    async def open(cls, target: Target) -> _Connection:
        connection = cls(target)
        await connection._connect()
        return connection

    @property
    def closed(self) -> bool:
        return bool(self.client.is_closed)

    async def close(self) -> None:
        if not self.client.is_closed:
            await self.client.close()

    async def _connect(self) -> None:
        target = self.target
        options: dict[str, Any] = {}
        if target.secret_key == "creds":
            if not target.url:
                raise StoreUnreachable(f"{LISTING}: connection.url is required with a creds Secret")
            servers = target.url
            if target.secret is not None:
                options["user_credentials"] = RawCredentials(target.secret.get_secret_value())
        elif target.secret is not None:
            servers = target.secret.get_secret_value()
        elif target.url:
            servers = target.url
        else:
            raise StoreUnreachable(
                f"{LISTING}: neither connection.url nor a Secret gives an address"
            )
        self._connecting = asyncio.get_running_loop().create_future()
        connecting = asyncio.ensure_future(
            self.client.connect(
                servers,
                error_cb=self._on_error,
                name="datarch",
                allow_reconnect=False,
                max_reconnect_attempts=1,
                # nats-py types connect_timeout as int; observe()'s deadline keeps the exact one.
                connect_timeout=max(1, math.ceil(target.timeout)),
                **options,
            )
        )
        try:
            racing: set[asyncio.Future[Any]] = {connecting, self._connecting}
            await asyncio.wait(racing, return_when=asyncio.FIRST_COMPLETED)
            if connecting.done():
                connecting.result()
            else:
                raise self._connecting.result()
        except BaseException as error:
            await _cancel(connecting)
            # A client that failed before opening a socket asserts in close(): nothing to release.
            with contextlib.suppress(Exception):
                await self.close()
            if isinstance(error, Exception):
                raise self.translate(error, LISTING, target.timeout) from error
            raise
        finally:
            self._connecting = None

    async def _on_error(self, error: Exception) -> None:
        if self._connecting is not None and not self._connecting.done():
            self._connecting.set_result(error)
            return
        text = str(error).lower()
        if "permissions violation" not in text:
            return
        for subject, waiter in list(self._waiters):
            # The server names the refused subject, lower-cased; a refused
            # inbox subscription refuses every reply.
            refused = "for subscription" in text or f'"{subject.lower()}"' in text
            if refused and not waiter.done():
                waiter.set_result(str(error))

    async def request(
        self, subject: str, payload: bytes, doing: str, deadline: float, timeout: float
    ) -> Msg:
        """One API request; raises a StoreError worded `doing: cause`."""
        loop = asyncio.get_running_loop()
        refused: asyncio.Future[str] = loop.create_future()
        entry = (subject, refused)
        self._waiters.add(entry)
        reply = asyncio.ensure_future(
            self.client.request(subject, payload, timeout=max(deadline - loop.time(), 0.001))
        )
        try:
            racing: set[asyncio.Future[Any]] = {reply, refused}
            await asyncio.wait(racing, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._waiters.discard(entry)
            if not reply.done():
                await _cancel(reply)
        if refused.done():
            if not reply.cancelled():
                reply.exception()  # retrieved: the refusal is what matters
            where = f"{doing} at {_address(self.target)}"
            raise AccessDenied(f"{where}: {self._scrub(refused.result()).removeprefix('nats: ')}")
        try:
            return reply.result()
        except Exception as error:
            raise self.translate(error, doing, timeout) from error

    def translate(self, error: Exception, doing: str, timeout: float) -> StoreError:
        """nats-py's errors as datarch's typed ones, with no credential in the text."""
        where = f"{doing} at {_address(self.target)}"
        if isinstance(error, StoreError):
            return error
        if isinstance(error, nats.errors.AuthorizationError):
            return AccessDenied(f"{where}: authorization violation")
        if isinstance(error, TimeoutError):
            return StoreTimeout(f"{where}: no answer within {timeout:g}s")
        if isinstance(error, nats.errors.NoRespondersError):
            return StoreUnreachable(f"{where}: no JetStream API answers; JetStream is not enabled")
        if isinstance(error, ModuleNotFoundError):
            return StoreUnreachable(f"{where}: NATS credentials files need the nkeys package")
        if isinstance(error, socket.gaierror):
            return StoreUnreachable(f"{where}: {str(error.strerror).lower()}")
        if isinstance(error, OSError) and error.errno:
            # asyncio's strerror quotes the address; the errno's text is the cause.
            return StoreUnreachable(f"{where}: {os.strerror(error.errno).lower()}")
        if isinstance(error, nats.errors.Error | OSError):
            text = str(error).removeprefix("nats: ") or type(error).__name__
            if "authorization violation" in text.lower():
                return AccessDenied(f"{where}: authorization violation")
            return StoreUnreachable(f"{where}: {self._scrub(text)}")
        # Anything else (a malformed credentials file, say) may quote what it
        # failed to parse: name only its type.
        return StoreUnreachable(f"{where}: {type(error).__name__}")

    def _scrub(self, text: str) -> str:
        if self.target.secret is not None:
            for line in self.target.secret.get_secret_value().splitlines():
                if line.strip():
                    text = text.replace(line.strip(), "***")
        return re.sub(r"//[^/@\s]*@", "//", text)


async def _cancel(task: asyncio.Future[Any]) -> None:
    """Cancel and wait for a task; its own end (cancelled or failed) is not ours to report."""
    if not task.done():
        task.cancel()
        await asyncio.wait({task})
    if not task.cancelled():
        task.exception()


def _address(target: Target) -> str:
    """The server address without credentials, for messages."""
    raw = target.url
    if target.secret_key != "creds" and target.secret is not None:
        raw = target.secret.get_secret_value().split(",")[0]
    if not raw:
        return "(no address)"
    parts = urlsplit(raw if "//" in raw else f"nats://{raw}")
    try:
        port = parts.port
    except ValueError:
        port = None
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}:{port}" if port else f"{parts.scheme}://{host}"


# --- one observation -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Consumers:
    infos: tuple[Mapping[str, Any], ...]
    received: float  # wall-clock seconds when the list arrived, should `ts` be absent


class _Reading:
    """One pass over one server: every request it sends goes through `_api` and is counted."""

    def __init__(self, connection: _Connection, target: Target, deadline: float) -> None:
        self.connection = connection
        self.target = target
        self.requests = 0
        self.deadline = deadline
        self._slots = asyncio.Semaphore(CONCURRENCY)
        # (name, subjects) of every stream: those capturing MAX_DELIVERIES advisories count them.
        self._recorders: list[tuple[str, tuple[str, ...]]] = []

    async def observed(self) -> ObservedNats:
        version = _server_version(self.connection.client)
        claim = self.target.store.nats
        if claim is None:
            await self._ping()  # nothing else is asked: prove a kept connection still answers
            return ObservedNats(version=version, streams=(), api_requests=0)
        # Consumers are listed only where the claim states a stream's consumers:
        # nothing else about them is compared.
        named = {
            stream.name: {consumer.name for consumer in stream.consumers}
            for stream in claim.streams or ()
            if stream.consumers is not None and valid_name(stream.name)
        }
        infos = await self._streams()
        self._recorders = [
            (_name(info), tuple((info.get("config") or {}).get("subjects") or ())) for info in infos
        ]
        listed = [info for info in infos if _name(info) in named]
        consumer_lists = await asyncio.gather(*(self._consumers(_name(info)) for info in listed))
        consumers = {_name(info): found for info, found in zip(listed, consumer_lists, strict=True)}
        streams = await asyncio.gather(
            *(
                self._stream(info, consumers.get(_name(info)), named.get(_name(info), set()))
                for info in infos
            )
        )
        return ObservedNats(
            version=version,
            streams=tuple(sorted(streams, key=lambda s: s.name)),
            api_requests=self.requests,
        )

    async def _ping(self) -> None:
        doing = "checking that the server answers"
        left = max(self.deadline - asyncio.get_running_loop().time(), 0.001)
        try:
            await self.connection.client.flush(timeout=left)  # type: ignore[arg-type]
        except Exception as error:
            raise self.connection.translate(error, doing, self.target.timeout) from error

    async def _api(self, subject: str, request: Mapping[str, Any] | None, doing: str) -> Msg:
        async with self._slots:
            self.requests += 1
            payload = b"" if request is None else json.dumps(request).encode()
            return await self.connection.request(
                subject, payload, doing, self.deadline, self.target.timeout
            )

    async def _api_json(self, subject: str, request: Mapping[str, Any] | None, doing: str) -> Any:
        reply = await self._api(subject, request, doing)
        try:
            body = json.loads(reply.data)
        except ValueError as error:
            raise StoreUnreachable(f"{doing}: the server answered with no JSON") from error
        problem = body.get("error")
        if problem:
            code = problem.get("err_code")
            where = f"{doing} at {_address(self.target)}"
            if code in JETSTREAM_DISABLED:
                raise StoreUnreachable(
                    f"{where}: JetStream is not enabled ({problem.get('description')})"
                )
            if problem.get("code") == 503:
                raise StoreUnreachable(
                    f"{where}: JetStream is unavailable ({problem.get('description')})"
                )
            raise _ApiError(f"{where}: {problem.get('description')} (err_code {code})", code)
        return body

    async def _pages(self, subject: str, key: str, doing: str) -> list[Mapping[str, Any]]:
        """Every item of a paged list: the first page gives the total, the rest come in parallel."""
        first = await self._api_json(subject, {"offset": 0}, doing)
        items = list(first.get(key) or ())
        total, limit = int(first.get("total", 0)), int(first.get("limit") or PAGE_SIZE)
        rest = await asyncio.gather(
            *(
                self._api_json(subject, {"offset": offset}, doing)
                for offset in range(limit, total, limit)
            )
        )
        for page in rest:
            items += page.get(key) or ()
        # A stream created or deleted between pages shifts the offsets: keep each name once.
        unique: dict[str, Mapping[str, Any]] = {}
        for item in items:
            unique.setdefault(_name(item), item)
        return list(unique.values())

    async def _streams(self) -> list[Mapping[str, Any]]:
        return await self._pages(f"{API}.STREAM.LIST", "streams", LISTING)

    async def _consumers(self, stream: str) -> _Consumers | None:
        doing = f"while listing consumers of stream {stream}"
        try:
            infos = await self._pages(f"{API}.CONSUMER.LIST.{stream}", "consumers", doing)
        except _ApiError as error:
            if error.code == STREAM_NOT_FOUND:
                return None  # deleted since the stream list: its consumers stay unlisted
            raise
        return _Consumers(tuple(infos), time.time())

    async def _stream(
        self, info: Mapping[str, Any], consumers: _Consumers | None, named_consumers: set[str]
    ) -> NatsStreamObs:
        config = info.get("config") or {}
        state = info.get("state") or {}
        name = _name(info)
        observed: list[NatsConsumerObs] = []
        if consumers is not None:
            ages: list[_Age | None] = await asyncio.gather(
                *(
                    self._oldest_unacked_age(
                        name, bool(config.get("allow_direct")), consumer, consumers.received
                    )
                    if _name(consumer) in named_consumers
                    else _nothing()
                    for consumer in consumers.infos
                )
            )
            abandoned: list[int | None] = await asyncio.gather(
                *(
                    self._max_delivered(name, _name(consumer))
                    if _name(consumer) in named_consumers
                    else _nothing()
                    for consumer in consumers.infos
                )
            )
            observed = [
                replace(_consumer(c, age), num_max_delivered=count)
                for c, age, count in zip(consumers.infos, ages, abandoned, strict=True)
            ]
        mirror = config.get("mirror") or {}
        return NatsStreamObs(
            name=name,
            subjects=tuple(config.get("subjects") or ()),
            retention=str(config.get("retention", "limits")),
            storage=str(config.get("storage", "file")),
            replicas=int(config.get("num_replicas") or 1),
            max_age_seconds=_seconds(config.get("max_age")),
            max_bytes=int(config.get("max_bytes", -1)),
            max_msgs=int(config.get("max_msgs", -1)),
            max_msg_size=int(config.get("max_msg_size", -1)),
            discard=str(config.get("discard", "old")),
            duplicate_window_seconds=_seconds(config.get("duplicate_window")),
            allow_direct=bool(config.get("allow_direct", False)),
            sealed=bool(config.get("sealed", False)),
            mirror=mirror.get("name") or None,
            sources=tuple(source.get("name", "") for source in config.get("sources") or ()),
            consumers=tuple(sorted(observed, key=lambda c: c.name)),
            consumers_listed=consumers is not None,
            messages=int(state.get("messages", 0)),
            history=int(config.get("max_msgs_per_subject", -1)),
        )

    async def _max_delivered(self, stream: str, consumer: str) -> int | None:
        """MAX_DELIVERIES advisories of this consumer kept by the streams that record them
        (the most any of them holds), None when no stream records them."""
        subject = f"{MAX_DELIVERIES}.{stream}.{consumer}"
        recorders = [
            name
            for name, patterns in self._recorders
            if any(subject_matches(pattern, subject) for pattern in patterns)
        ]
        if not recorders:
            return None
        counts = []
        for recorder in recorders:
            body = await self._api_json(
                f"{API}.STREAM.INFO.{recorder}",
                {"subjects_filter": subject},
                f"while counting {MAX_DELIVERIES} advisories in stream {recorder}",
            )
            counts.append(int(((body.get("state") or {}).get("subjects") or {}).get(subject, 0)))
        return max(counts)

    async def _oldest_unacked_age(
        self, stream: str, direct: bool, consumer: Mapping[str, Any], received: float
    ) -> _Age | None:
        awaiting = int(consumer.get("num_ack_pending", 0))
        if awaiting == 0:
            return _Age(0.0)
        floor = int((consumer.get("ack_floor") or {}).get("stream_seq", 0))
        last = int((consumer.get("delivered") or {}).get("stream_seq", 0))
        found = [
            message
            for subject in _filters(consumer.get("config") or {}) or (">",)
            if (message := await self._message_after(stream, direct, floor, subject)) is not None
        ]
        if not found:
            return None
        first, published = min(found)
        now = _timestamp(consumer["ts"]) if consumer.get("ts") else received
        # The newest sequence the oldest awaiting message can have: k distinct ones end at D.
        newest_possible = last - awaiting + 1
        if first >= newest_possible:
            return _Age(max(now - published, 0.0))
        reference = await self._message_after(stream, direct, newest_possible - 1, ">")
        # Nothing stored from there on: the awaiting messages are gone, 0 is still a lower bound.
        lower = 0.0 if reference is None else max(now - reference[1], 0.0)
        return _Age(lower, exact=False, at_most=max(now - published, 0.0))

    async def _message_after(
        self, stream: str, direct: bool, floor: int, subject: str
    ) -> tuple[int, float] | None:
        """(sequence, timestamp) of the first message after `floor` on `subject`, None when none is stored."""
        doing = f"while reading message {floor + 1} of stream {stream}"
        request = {"seq": floor + 1, "next_by_subj": subject}
        if direct:
            reply = await self._api(f"{API}.DIRECT.GET.{stream}", request, doing)
            headers = reply.headers or {}
            status = headers.get("Status")
            if status == "404":
                return None
            if status:
                raise StoreUnreachable(
                    f"{doing}: direct get answered {status} {headers.get('Description', '')}"
                )
            return int(headers["Nats-Sequence"]), _timestamp(headers["Nats-Time-Stamp"])
        try:
            body = await self._api_json(f"{API}.STREAM.MSG.GET.{stream}", request, doing)
        except _ApiError as error:
            if error.code == NO_MESSAGE:
                return None
            raise
        message = body["message"]
        return int(message["seq"]), _timestamp(message["time"])


class _ApiError(StoreUnreachable):
    """A JetStream API error answer; `code` is its err_code."""

    def __init__(self, message: str, code: int | None) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class _Age:
    """The oldest unacked message's age: exact, or a lower bound with its upper bound."""

    seconds: float
    exact: bool = True
    at_most: float | None = None


async def _nothing() -> None:
    return None


def _consumer(info: Mapping[str, Any], age: _Age | None) -> NatsConsumerObs:
    config = info.get("config") or {}
    return NatsConsumerObs(
        name=_name(info),
        durable=bool(config.get("durable_name")),
        ack_policy=str(config.get("ack_policy", "none")),
        deliver_policy=str(config.get("deliver_policy", "all")),
        filter_subjects=_filters(config),
        max_deliver=int(config.get("max_deliver", -1)),
        ack_wait_seconds=_seconds(config.get("ack_wait")),
        max_ack_pending=int(config.get("max_ack_pending", -1)),
        num_pending=int(info.get("num_pending", 0)),
        num_ack_pending=int(info.get("num_ack_pending", 0)),
        num_redelivered=int(info.get("num_redelivered", 0)),
        oldest_unacked_age_seconds=None if age is None else age.seconds,
        oldest_unacked_age_exact=True if age is None else age.exact,
        oldest_unacked_age_at_most_seconds=None if age is None else age.at_most,
    )


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: `*` is one token, a final `>` one or more."""
    wanted, tokens = pattern.split("."), subject.split(".")
    for index, token in enumerate(wanted):
        if token == ">":
            return len(tokens) > index
        if index >= len(tokens) or (token != "*" and token != tokens[index]):
            return False
    return len(wanted) == len(tokens)


def _name(info: Mapping[str, Any]) -> str:
    """Stream info carries its name in config; consumer info at the top."""
    name = info.get("name") or (info.get("config") or {}).get("name") or ""
    return str(name)


def _filters(config: Mapping[str, Any]) -> tuple[str, ...]:
    subjects: Iterable[str] = config.get("filter_subjects") or ()
    single = config.get("filter_subject")
    return tuple(subjects) or ((single,) if single else ())


def _seconds(nanoseconds: Any) -> float:
    return int(nanoseconds or 0) / 1e9


def _timestamp(text: str) -> float:
    """Seconds since the epoch of an RFC 3339 time with nanoseconds, as the server writes it."""
    match = _TIMESTAMP.match(text)
    if not match:
        raise StoreUnreachable(f"{LISTING}: the server sent the time {text!r}, not RFC 3339")
    whole, fraction, zone = match.groups()
    stamp = datetime.fromisoformat(whole + ("+00:00" if zone == "Z" else zone))
    return stamp.timestamp() + (float(f"0.{fraction}") if fraction else 0.0)


def _server_version(client: Client) -> str:
    version = client.connected_server_version
    try:
        text = f"{version.major}.{version.minor}.{version.patch}"
        return f"{text}-{version.dev}" if version.dev else text
    except ValueError:  # not semver: keep what the server said
        return repr(version).removeprefix("<nats server v").removesuffix(">")
