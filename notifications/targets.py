"""Where a webhook may be delivered, and the one HTTP request that delivers it.

Server-side request forgery: a webhook URL must be `https` to a host whose *every* resolved
address is global (not private, loopback, link-local, shared, reserved or multicast). The check
runs when the URL is saved and again at each delivery, and the connection is pinned to the
address just checked (the TLS handshake and the Host header still use the name), so a DNS answer
that changes to a private address between the check and the connect is never followed.
`WEBHOOKS_ALLOW_LOOPBACK=1` (development and tests only) also allows 127.0.0.0/8, over http too.

The request: POST, no redirect followed (http.client never follows one), a deadline for the
whole exchange (`WEBHOOKS_TIMEOUT_SECONDS`, 10 s: the socket is shut when it passes), and only
the first kilobyte of the response body read.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import http.client
import ipaddress
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

EXCERPT_BYTES = 1024
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
# IPv6 forms that lead to an IPv4 address (Python calls them global): IPv4-compatible (::/96),
# IPv4-translated (::ffff:0:0:0/96, SIIT), NAT64's well-known prefix (64:ff9b::/96) and its
# local-use one (64:ff9b:1::/48, never global).
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
# Never global, though Python's `is_global` says so: site-local (deprecated, still routed inside
# some networks), documentation (RFC 9637) and SRv6 SIDs (RFC 9602).
NOT_PUBLIC_V6 = [NAT64_LOCAL, *map(ipaddress.ip_network, ("fec0::/10", "3fff::/20", "5f00::/16"))]


class UnsafeTarget(Exception):
    """The URL may not be delivered to; the message says why (shown to the admin)."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # path and query
    addresses: tuple[str, ...]


@dataclass
class Response:
    status: int
    excerpt: str
    retry_after: str | None
    duration_ms: int


# What a text column cannot take: NUL (PostgreSQL refuses it in text) and lone surrogates
# (not encodable as UTF-8, so psycopg refuses them).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> str:
    """Text from outside (a receiver's answer, a mail server's or a socket's error) as a database
    text column takes it on PostgreSQL and SQLite alike: NUL and lone surrogates become U+FFFD.
    Found by an outside sweep: an answer `bad\\x00body` made recording the attempt fail on
    PostgreSQL, so the delivery was retried after every lease, never failed."""
    return _UNSTORABLE.sub("\ufffd", text)


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (tests replace this with a stub: no DNS, no packets)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


_resolvers = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="webhook-dns")


def resolve_within(host: str, port: int, timeout: float) -> list[str]:
    """`resolve`, given up after `timeout` seconds (the system resolver cannot be interrupted:
    a lookup that hangs finishes in its thread, unwaited for)."""
    future = _resolvers.submit(resolve, host, port)
    try:
        return future.result(timeout=timeout)
    except concurrent.futures.TimeoutError:
        raise OSError(f"resolving {host} took longer than {timeout:g} s") from None


def _loopback_allowed() -> bool:
    return bool(getattr(settings, "WEBHOOKS_ALLOW_LOOPBACK", False))


def _is_loopback(ip) -> bool:
    return ip.version == 4 and ip in LOOPBACK


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one leads to: mapped, compatible, NAT64 or 6to4 (found by an outside
    sweep: https://[64:ff9b::7f00:1]/ and https://[2002:7f00:1::]/ were accepted as public). `::`
    and `::1` are IPv6's own unspecified and loopback addresses, refused as they are."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in NAT64 or ip in IPV4_TRANSLATED or (ip in IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _refusal(ip, allow_loopback: bool) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address):
        if any(ip in network for network in NOT_PUBLIC_V6):
            return f"{ip} is not a public address"
        ip = _embedded_ipv4(ip) or ip
    if allow_loopback and _is_loopback(ip):
        return None
    if ip.is_global and not ip.is_multicast:
        return None
    return f"{ip} is not a public address"


def check_url(url: str) -> Target:
    """The URL's target if it may be delivered to now (resolving its host); else UnsafeTarget."""
    allow_loopback = _loopback_allowed()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeTarget(f"Not a valid URL: {exc}.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise UnsafeTarget("Only https URLs are allowed.")
    if scheme == "http" and not allow_loopback:
        raise UnsafeTarget("Only https URLs are allowed.")
    if parts.username is not None or parts.password is not None:
        raise UnsafeTarget("Credentials in the URL are not allowed; authenticate the signature instead.")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UnsafeTarget("The URL has no host.")
    try:
        host = host.encode("idna").decode("ascii")  # an international name in its DNS form
    except UnicodeError:
        raise UnsafeTarget(f"The host {host} is not a valid name.") from None
    port = port or (443 if scheme == "https" else 80)
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            addresses = resolve_within(host, port, settings.WEBHOOKS_TIMEOUT_SECONDS)
        except (OSError, UnicodeError) as exc:
            raise UnsafeTarget(f"The host {host} could not be resolved ({exc}).") from None
    if not addresses:
        raise UnsafeTarget(f"The host {host} could not be resolved.")
    ips = [ipaddress.ip_address(address.split("%")[0]) for address in addresses]
    for ip in ips:
        reason = _refusal(ip, allow_loopback)
        if reason:
            raise UnsafeTarget(f"The host {host} resolves to {reason}.")
    if scheme == "http" and not all(_is_loopback(ip) for ip in ips):
        raise UnsafeTarget("Only https URLs are allowed (http only to 127.0.0.0/8 with WEBHOOKS_ALLOW_LOOPBACK).")
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    return Target(scheme=scheme, host=host, port=port, path=path, addresses=tuple(addresses))


def ssl_context() -> ssl.SSLContext:
    """Certificates verified against the system's trust store and the URL's host name."""
    return ssl.create_default_context()


def post(target: Target, body: bytes, headers: dict[str, str], *, timeout: float | None = None) -> Response:
    """POST `body` to the target's checked addresses (the first that accepts the connection);
    raise OSError or HTTPException on failure."""
    timeout = timeout if timeout is not None else settings.WEBHOOKS_TIMEOUT_SECONDS
    if target.scheme == "https":
        connection = http.client.HTTPSConnection(target.host, target.port, timeout=timeout, context=ssl_context())
    else:
        connection = http.client.HTTPConnection(target.host, target.port, timeout=timeout)

    def pinned(host_port, *args, **kwargs):
        # Connect to a checked address (each in turn), never to a fresh resolution of the name.
        failure = None
        for address in target.addresses:
            try:
                return socket.create_connection((address, host_port[1]), *args, **kwargs)
            except OSError as exc:
                failure = exc
        raise failure

    connection._create_connection = pinned

    sent_on = []  # the socket the request went out on

    def cut():
        for sock in {connection.sock, *sent_on} - {None}:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    deadline = threading.Timer(timeout, cut)
    started = time.monotonic()
    deadline.start()
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        # `getresponse()` drops `connection.sock` when the answer closes the connection (HTTP/1.0,
        # `Connection: close`), but the body is still read from that socket: the deadline shuts it
        # too. Found by an outside sweep: a receiver answering 200 and then a byte every half
        # second held the worker 512 s on one attempt (the 1 KB excerpt), past its lease.
        sent_on.append(connection.sock)
        response = connection.getresponse()
        excerpt = response.read(EXCERPT_BYTES)
        return Response(
            status=response.status,
            excerpt=storable(excerpt.decode("utf-8", errors="replace")),
            retry_after=response.getheader("Retry-After"),
            duration_ms=int((time.monotonic() - started) * 1000),
        )
    finally:
        deadline.cancel()
        connection.close()
