"""The shape of a store's address, checked before any driver parses it.

A malformed connection string is that store's problem alone: InvalidConnection
naming the field it came from (a Secret's key, `connection.url`,
`connection.endpoint`) and what is wrong with it, never quoting it, since a
Secret's value may hold a password anywhere. Drivers raise bare ValueErrors
that quote the string; this module exists so they never see a malformed one.
It checks shape only (scheme, host, port) and never resolves or dials.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from datarch.errors import InvalidConnection
from datarch.probes.base import Target

# Host names, IPv4 addresses and percent-encoded socket paths (mongodb://%2Ftmp%2Fm.sock).
_HOST = re.compile(r"[A-Za-z0-9._~%-]+")
_IPV6 = re.compile(r"\[[0-9A-Fa-f:.]+(%[A-Za-z0-9._~-]+)?\]")
# libpq's key=value form: a value bare, or single-quoted with backslash escapes.
_CONNINFO = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*('(?:[^'\\]|\\.)*'|[^\s']+)\s*")


@dataclass(frozen=True, slots=True)
class _Source:
    text: str
    field: str  # where it came from, for the message


def check_connection(target: Target) -> None:
    """Raise InvalidConnection when the store's address cannot be what its kind dials."""
    kind = target.store.kind
    if kind == "postgres":
        _check_postgres(target)
    elif kind == "mongodb":
        _check_mongodb(target)
    elif kind == "nats":
        _check_nats(target)
    elif kind == "redis":
        _check_redis(target)
    else:
        _check_s3(target)


def _secret(target: Target) -> _Source | None:
    connection = target.store.connection
    if target.secret is None or connection is None or connection.secret_ref is None:
        return None
    return _Source(
        target.secret.get_secret_value(),
        f"secret {connection.secret_ref.name} key {target.secret_key}",
    )


def _claim_url(target: Target) -> _Source | None:
    return _Source(target.url, "connection.url") if target.url else None


def _fail(source: _Source, problem: str) -> InvalidConnection:
    return InvalidConnection(f"while reading {source.field}: {problem}")


def _check_url(
    source: _Source, schemes: tuple[str, ...], *, hosts: bool = True, host_required: bool = True
) -> None:
    """scheme://[userinfo@]host[:port][,host[:port]...][/path][?query]."""
    scheme, separator, rest = source.text.strip().partition("://")
    if not separator:
        raise _fail(source, f"it is not a URL (expected {' or '.join(s + '://' for s in schemes)})")
    if scheme.lower() not in schemes:
        raise _fail(
            source,
            f"the scheme is not one of {', '.join(s + '://' for s in schemes)}",
        )
    netloc = re.split(r"[/?#]", rest, maxsplit=1)[0]
    userinfo, _, host_list = netloc.rpartition("@")
    if "@" in userinfo and scheme.lower().startswith("mongodb"):
        raise _fail(source, "the user name or password has an unescaped @ (write it as %40)")
    if not hosts:
        return
    if not host_list:
        if host_required:
            raise _fail(source, "it names no host")
        return
    for hostport in host_list.split(","):
        _check_host_port(source, hostport)


def _check_host_port(source: _Source, hostport: str) -> None:
    if hostport.startswith("["):
        close = hostport.find("]")
        if close < 0 or not _IPV6.fullmatch(hostport[: close + 1]):
            raise _fail(source, "an IPv6 address in it is not closed by ] or is not one")
        host, port = hostport[: close + 1], hostport[close + 1 :]
        if port and not port.startswith(":"):
            raise _fail(source, "something other than :port follows an IPv6 address")
        port = port[1:]
        has_port = bool(port) or hostport.endswith(":")
    else:
        host, has_port_sep, port = hostport.partition(":")
        has_port = bool(has_port_sep)
        if not _HOST.fullmatch(host):
            raise _fail(source, "a host name in it is empty or has characters no host name has")
    if has_port:
        _check_port(source, port)


def _check_port(source: _Source, port: str) -> None:
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise _fail(source, "the port is not a number from 1 to 65535")


def _check_postgres(target: Target) -> None:
    source = _secret(target) or _claim_url(target)
    if source is None:
        return  # the probe says that no DSN was given
    text = source.text.strip()
    if "://" in text:
        # libpq defaults an empty host to its socket directory
        _check_url(source, ("postgresql", "postgres"), host_required=False)
        return
    position, ports = 0, []
    while position < len(text):
        match = _CONNINFO.match(text, position)
        if match is None:
            raise _fail(source, "it is neither a postgresql:// URL nor key=value pairs")
        if match.group(1) == "port":
            ports.append(match.group(2).strip("'"))
        position = match.end()
    for listed in ports:
        for port in listed.split(","):
            if port:
                _check_port(source, port)


def _check_mongodb(target: Target) -> None:
    source = _secret(target) or _claim_url(target)
    if source is not None:
        _check_url(source, ("mongodb", "mongodb+srv"))


def _check_nats(target: Target) -> None:
    sources = [] if target.secret_key == "creds" else [_secret(target)]
    for source in [*sources, _claim_url(target)]:
        if source is None:
            continue
        for listed in source.text.split(","):
            server = listed.strip()
            if "://" in server:
                _check_url(_Source(server, source.field), ("nats", "tls", "ws", "wss"))
            else:
                _check_host_port(source, server)


def _check_redis(target: Target) -> None:
    secret = _secret(target)
    if secret is not None and "://" in secret.text:
        source: _Source | None = secret
    else:  # the Secret holds only a password: the address is the claim's
        source = _claim_url(target)
    if source is None:
        where = secret.field if secret else "connection.url"
        raise InvalidConnection(
            f"while reading {where}: no redis:// URL in the claim (connection.url) or its Secret"
        )
    _check_url(source, ("redis", "rediss", "unix"), hosts=not source.text.startswith("unix"))


def _check_s3(target: Target) -> None:
    connection = target.store.connection
    if connection is not None and connection.endpoint:
        source = _Source(connection.endpoint, "connection.endpoint")
    elif target.url:
        source = _Source(target.url, "connection.url")
    else:
        return  # the probe says that no endpoint was given
    text = source.text.strip()
    if "://" in text:
        _check_url(_Source(text.rstrip("/"), source.field), ("http", "https"))
        if re.split(r"[/?#]", text.partition("://")[2].rstrip("/"), maxsplit=1)[1:]:
            raise _fail(source, "an S3 endpoint is host[:port], with no path")
        return
    if re.search(r"[/?#@]", text.rstrip("/")):
        raise _fail(source, "an S3 endpoint is host[:port], with no path or user")
    _check_host_port(source, text.rstrip("/"))


# --- where to dial -------------------------------------------------------------------

DEFAULT_PORTS = {"postgres": 5432, "mongodb": 27017, "nats": 4222, "redis": 6379}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One address a store's driver would dial: host and port, or a Unix socket path."""

    host: str
    port: int = 0
    socket_path: str | None = None

    def __str__(self) -> str:
        return self.socket_path or f"{self.host}:{self.port}"


def endpoints(target: Target) -> list[Endpoint] | None:
    """Every address the store's driver would dial, from an address check_connection accepted.

    None when they cannot be told without the driver (DNS SRV records, libpq's
    compiled-in default socket): absence is then not provable by dialling.
    """
    kind = target.store.kind
    if kind == "s3":
        connection = target.store.connection
        text = ((connection.endpoint if connection else None) or target.url or "").strip()
        if not text:
            return None
        secure = connection.secure if connection else True
        for scheme, tls in (("https://", True), ("http://", False)):
            if text.startswith(scheme):
                text, secure = text[len(scheme) :], tls
        return _host_ports(text.rstrip("/"), 443 if secure else 80)
    source = _address_source(target)
    if source is None:
        return None
    text, port = source.strip(), DEFAULT_PORTS[kind]
    if kind == "postgres" and "://" not in text:
        return _conninfo_endpoints(text, port)
    found = _url_endpoints(kind, text, port)
    if kind == "postgres" and found:  # a socket directory, as libpq takes it
        found = [
            Endpoint("", 0, f"{e.socket_path}/.s.PGSQL.{port}") if e.socket_path else e
            for e in found
        ]
    return found


def _url_endpoints(kind: str, text: str, port: int) -> list[Endpoint] | None:
    found: list[Endpoint] = []
    for url in text.split(",") if kind == "nats" else [text]:
        scheme, separator, rest = url.strip().partition("://")
        if not separator:  # nats: a bare host:port
            rest, scheme = url.strip(), "nats"
        if scheme in {"unix", "mongodb+srv"}:
            return None if scheme == "mongodb+srv" else [Endpoint("", 0, _unix_path(rest))]
        netloc = re.split(r"[/?#]", rest, maxsplit=1)[0].rpartition("@")[2]
        if not netloc:
            return None
        found += _host_ports(netloc, port)
    return found


def _address_source(target: Target) -> str | None:
    secret = target.secret.get_secret_value() if target.secret is not None else None
    kind = target.store.kind
    if kind == "nats" and target.secret_key == "creds":
        return target.url
    if kind == "redis" and secret is not None and "://" not in secret:
        return target.url  # the Secret holds only a password
    return secret if secret is not None else target.url


def _host_ports(text: str, default_port: int) -> list[Endpoint]:
    found = []
    for hostport in text.split(","):
        if hostport.startswith("["):
            host, _, port = hostport[1:].partition("]")
            port = port.removeprefix(":")
        else:
            host, _, port = hostport.partition(":")
        if host.startswith("%2F") or host.startswith("%2f"):
            found.append(Endpoint("", 0, unquote(host)))
        else:
            found.append(Endpoint(host, int(port) if port else default_port))
    return found


def _unix_path(rest: str) -> str:
    return re.split(r"[?#]", rest.rpartition("@")[2], maxsplit=1)[0]


def _conninfo_endpoints(text: str, default_port: int) -> list[Endpoint] | None:
    params = {
        match.group(1): match.group(2).strip("'")
        for match in _CONNINFO.finditer(text)
        if match.group(1) in {"host", "hostaddr", "port"}
    }
    hosts = (params.get("hostaddr") or params.get("host") or "").split(",")
    ports = (params.get("port") or "").split(",")
    if not hosts[0]:
        return None
    found = []
    for index, host in enumerate(hosts):
        port = ports[index] if index < len(ports) else ports[-1]
        port_number = int(port) if port else default_port
        if host.startswith("/"):
            found.append(Endpoint("", 0, f"{host}/.s.PGSQL.{port_number}"))
        else:
            found.append(Endpoint(host, port_number))
    return found
