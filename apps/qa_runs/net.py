"""Outbound HTTP for QA package runs, and the SSRF guard it keeps to.

A QA run sends requests to URLs a user typed (the spec URL, the target's base URL), to URLs the
spec names (its `servers`) and to URLs an AI produced. Left alone, that is a way to make the server
fetch http://169.254.169.254/ (cloud credentials) or an internal admin page. So:

- `url_check()` admits only http(s) URLs without userinfo whose host resolves to public addresses
  only, unless the administrator listed the host or network in QA_TARGET_ALLOWLIST. It returns a
  `Target` holding the addresses it checked, or raises `TargetRefused` saying which URL, which
  address and why.
- `qa_client()` builds an httpx client that connects only to checked addresses: its transport
  checks each host once (or takes `Target`s checked earlier) and pins the answer for the client's
  lifetime; the TCP connection goes to the pinned IP, while the Host header, TLS SNI and the
  certificate check keep the hostname. A DNS answer that changes after the check (DNS rebinding)
  is never asked for. The client never follows redirects.
- `fetch()` reads a response with a size cap (QA_MAX_RESPONSE_BYTES, marked `truncated`) and a
  total deadline (QA_STEP_TIMEOUT_SECONDS); it follows same-host redirects only when asked, each
  checked by `redirect_check()`.
- `run_bounded()` runs requests on a bounded number of threads.

Synchronous, not asyncio: runs execute in Celery tasks, whose Django ORM calls are synchronous;
with asyncio every result write would need sync_to_async. Threads (QA_CONCURRENCY of them) sharing
one thread-safe httpx.Client give the same bounded concurrency for I/O-bound requests, and the task
records results in its own thread as they complete.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import httpcore
import httpx
from django.conf import settings

from openspc.api import DomainConflict

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# host, port -> the addresses the host resolves to (strings, as getaddrinfo gives them).
Resolver = Callable[[str, int], Sequence[str]]

T = TypeVar("T")
R = TypeVar("R")

SCHEMES = frozenset({"http", "https"})
_METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
_NAT64_NETWORKS = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


class TargetRefused(DomainConflict):
    """A URL the QA runner will not send a request to. The message names the URL, the address (when
    one was resolved) and the reason, in words a user can act on."""

    def __init__(self, url: str, reason: str, address: str | None = None) -> None:
        self.url = url
        self.reason = reason
        self.address = address
        where = f" (address {address})" if address else ""
        super().__init__(f"Refused {url}{where}: {reason}")

    def api_message(self) -> str:
        # The reason alone, as a sentence: the client sent the URL (the package's target).
        return f"{self.reason[0].upper()}{self.reason[1:]}."

    def __reduce__(self) -> tuple[Any, ...]:
        # Survives pickling (a Celery worker handing the error on) with its fields.
        return (self.__class__, (self.url, self.reason, self.address))


@dataclass(frozen=True)
class Target:
    """A URL that passed `url_check`, with the addresses its host resolved to when it was checked.
    Connections for it go to these addresses and no others."""

    url: str
    scheme: str
    host: str  # as the connection pool sees it: lower-case ASCII (IDNA), IPv6 without brackets
    port: int
    addresses: tuple[str, ...]

    def same_origin(self, other: Target) -> bool:
        """Same scheme, host and port: what a redirect must keep to be followed."""
        return (self.scheme, self.host, self.port) == (other.scheme, other.host, other.port)


@dataclass(frozen=True)
class TargetPolicy:
    """Which non-public destinations the administrator allowed (QA_TARGET_ALLOWLIST)."""

    hosts: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()  # from `*.plant.local`: ".plant.local"
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_entries(cls, entries: Iterable[str]) -> TargetPolicy:
        hosts: set[str] = set()
        suffixes: list[str] = []
        networks: list[IPNetwork] = []
        for raw in entries:
            entry = raw.strip().lower().rstrip(".")
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                if entry.startswith("*."):
                    suffixes.append(entry[1:])
                elif entry:
                    hosts.add(entry)
        return cls(hosts=frozenset(hosts), suffixes=tuple(suffixes), networks=tuple(networks))

    @classmethod
    def from_settings(cls) -> TargetPolicy:
        """Read at each use, so a changed setting (a test's `settings` fixture) takes effect."""
        return cls.from_entries(settings.QA_TARGET_ALLOWLIST)

    def admits_host(self, host: str) -> bool:
        name = host.lower().rstrip(".")
        return name in self.hosts or any(name.endswith(suffix) for suffix in self.suffixes)

    def admits_address(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses getaddrinfo gives for host, in its order, without repeats."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries and reaches (IPv4-mapped ::ffff:a.b.c.d,
    IPv4-compatible ::a.b.c.d, 6to4 2002::/16, Teredo client, NAT64 64:ff9b::/96), else None.
    `ipaddress` judges ::ffff:127.0.0.1 by its IPv6 form, so the IPv4 inside is judged too."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if any(address in network for network in _NAT64_NETWORKS):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _IPV4_COMPATIBLE and int(address) > 1:  # not :: or ::1
        return ipaddress.IPv4Address(int(address))
    return None


def _not_public(address: IPAddress) -> str | None:
    """Why an address is not a public one, or None when it is."""
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address in _METADATA_ADDRESSES:
        return "the cloud metadata service address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_private:
        return "a private address"
    if address.is_reserved:
        return "a reserved address"
    if not address.is_global:
        return "not a public address"
    return None


def address_refusal(address: IPAddress, *, policy: TargetPolicy, host_allowed: bool) -> str | None:
    """Why a request may not connect to address, or None when it may.

    Public addresses may be used; so may any unicast address of a host the administrator listed, and
    addresses in a listed network. Unspecified and multicast addresses never (nothing to test there).
    """
    inner = embedded_ipv4(address)
    judged = [address] if inner is None else [inner, address]
    if any(a.is_unspecified or a.is_multicast for a in judged):
        return _not_public(judged[0])
    if host_allowed or any(policy.admits_address(a) for a in judged):
        return None
    for candidate in judged:
        problem = _not_public(candidate)
        if problem is not None:
            if candidate is inner:
                return f"an IPv6 address carrying {inner}, {problem}"
            return problem
    return None


def _parse(url: str | httpx.URL, base: str | httpx.URL | None) -> httpx.URL:
    try:
        parsed = httpx.URL(base).join(url) if base is not None else httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as error:
        raise TargetRefused(str(url), f"not a valid URL ({error})") from None
    return parsed


def _host_port(url: httpx.URL) -> tuple[str, int]:
    """The host and port a connection for url goes to, as httpcore names them."""
    return url.raw_host.decode("ascii").lower(), url.port or (443 if url.scheme == "https" else 80)


def url_precheck(url: str | httpx.URL, *, base: str | httpx.URL | None = None) -> httpx.URL:
    """The checks that need no DNS: http(s) only, a host, no user:password@ part (which hides the
    real host from a reader: http://trusted.example@10.0.0.1/)."""
    parsed = _parse(url, base)
    shown = str(parsed)
    if parsed.scheme not in SCHEMES:
        raise TargetRefused(shown, f"only http and https URLs are allowed, not {parsed.scheme or 'none'}")
    if parsed.userinfo:
        raise TargetRefused(shown, "URLs with a user name or password before the host are not allowed")
    if not parsed.raw_host:
        raise TargetRefused(shown, "the URL has no host")
    return parsed


def url_check(
    url: str | httpx.URL,
    *,
    base: str | httpx.URL | None = None,
    policy: TargetPolicy | None = None,
    resolver: Resolver | None = None,
) -> Target:
    """Check a URL (relative ones against base) and resolve its host; every address it resolves to
    must be allowed (`address_refusal`). Use it for the spec URL, the base URL, each of the spec's
    `servers` (relative to the spec URL) and every URL an AI produced, before any request."""
    parsed = url_precheck(url, base=base)
    shown = str(parsed)
    policy = policy if policy is not None else TargetPolicy.from_settings()
    host, port = _host_port(parsed)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        answers: Sequence[str] = [host]
    else:
        try:
            answers = (resolver or system_resolver)(host, port)
        except OSError as error:
            raise TargetRefused(shown, f"{host} could not be resolved ({error})") from None
    if not answers:
        raise TargetRefused(shown, f"{host} resolves to no address")
    host_allowed = policy.admits_host(host)
    for answer in answers:
        try:
            address = ipaddress.ip_address(answer)
        except ValueError:
            raise TargetRefused(shown, f"{host} resolved to something that is not an address") from None
        problem = address_refusal(address, policy=policy, host_allowed=host_allowed)
        if problem is not None:
            raise TargetRefused(
                shown,
                f"{host} resolves to {problem}; only public addresses are allowed unless the "
                "administrator lists the host or network in QA_TARGET_ALLOWLIST",
                address=answer,
            )
    return Target(url=shown, scheme=parsed.scheme, host=host, port=port, addresses=tuple(answers))


class PinnedBackend(httpcore.NetworkBackend):
    """An httpcore network backend that connects a host only to the addresses pinned for it.

    httpcore asks for a connection to the URL's host and port; TLS SNI and certificate checks use
    that host name, not the address connected to (httpcore/_sync/connection.py), so pinning here
    keeps both. A host with no pin gets no connection at all.
    """

    def __init__(self) -> None:
        self._pins: dict[tuple[str, int], tuple[str, ...]] = {}
        self._lock = threading.Lock()
        self._sockets = httpcore.SyncBackend()

    def pin(self, target: Target) -> tuple[str, ...]:
        """Pin target's addresses unless the host already has a pin; the first check wins for the
        client's lifetime, so later (maybe rebound) DNS answers are never used."""
        with self._lock:
            return self._pins.setdefault((target.host, target.port), target.addresses)

    def pinned(self, host: str, port: int) -> tuple[str, ...] | None:
        with self._lock:
            return self._pins.get((host, port))

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = self.pinned(host.lower(), port)
        if not addresses:
            raise httpcore.ConnectError(f"{host}:{port} was not checked; no connection made")
        error: Exception | None = None
        for address in addresses:
            try:
                return self._sockets.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as failed:
                error = failed
        assert error is not None
        raise error

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("QA runs connect over TCP only")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class GuardedTransport(httpx.HTTPTransport):
    """httpx's own transport, with its connection pool on a `PinnedBackend`: every request's URL is
    prechecked, and its host checked (once per client) and pinned before the pool may connect.

    httpx.HTTPTransport takes no network backend, so the pool it builds (`_pool`, unchanged since
    httpx 0.18) is replaced by one built the same way on the pinned backend; httpx is pinned in
    requirements.txt and tests/qa_runs/test_net.py fails if connections stop going through it.
    """

    def __init__(
        self,
        *,
        policy: TargetPolicy | None = None,
        resolver: Resolver | None = None,
        verify: ssl.SSLContext | bool = True,
        limits: httpx.Limits | None = None,
    ) -> None:
        limits = limits or httpx.Limits(max_connections=10, max_keepalive_connections=10)
        ssl_context = httpx.create_ssl_context(verify=verify, trust_env=False)
        super().__init__(verify=ssl_context, trust_env=False, limits=limits)
        self.policy = policy
        self.resolver = resolver
        self.backend = PinnedBackend()
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=self.backend,
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = url_precheck(request.url)
        host, port = _host_port(url)
        if self.backend.pinned(host, port) is None:
            self.backend.pin(url_check(url, policy=self.policy, resolver=self.resolver))
        return super().handle_request(request)


class GuardedClient(httpx.Client):
    """An httpx.Client that never follows a redirect, whatever a caller passes: a 3xx is returned
    as the response. `redirect_check` says whether following it would be allowed."""

    def send(
        self,
        request: httpx.Request,
        *,
        stream: bool = False,
        auth: Any = httpx.USE_CLIENT_DEFAULT,
        follow_redirects: Any = httpx.USE_CLIENT_DEFAULT,
    ) -> httpx.Response:
        return super().send(request, stream=stream, auth=auth, follow_redirects=False)


def qa_client(
    *,
    targets: Iterable[Target] = (),
    policy: TargetPolicy | None = None,
    resolver: Resolver | None = None,
    timeout_seconds: float | None = None,
    max_connections: int | None = None,
    verify: ssl.SSLContext | bool = True,
) -> GuardedClient:
    """A client for one run (close it, or use it in a `with`). `targets` checked earlier (the base
    URL when the run started) are pinned as they are; other hosts are checked at their first request.
    Environment proxies and .netrc are ignored (trust_env=False): a proxy would connect elsewhere."""
    timeout = float(timeout_seconds if timeout_seconds is not None else settings.QA_STEP_TIMEOUT_SECONDS)
    connections = max_connections if max_connections is not None else settings.QA_CONCURRENCY
    transport = GuardedTransport(
        policy=policy,
        resolver=resolver,
        verify=verify,
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
    )
    for target in targets:
        transport.backend.pin(target)
    return GuardedClient(
        transport=transport,
        follow_redirects=False,
        trust_env=False,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        # Uncompressed answers, so the size cap counts the bytes that are kept (see _decode).
        headers={"Accept-Encoding": "identity", "User-Agent": "OpenSPC-QA"},
    )


@dataclass(frozen=True)
class Fetched:
    """A response read within the caps. `body` holds at most max_bytes; `truncated` says more was
    sent. `redirects` lists the URLs of the same-host redirects followed to get here."""

    url: str
    status_code: int
    headers: httpx.Headers
    body: bytes
    truncated: bool
    elapsed_ms: int
    redirects: tuple[str, ...] = ()

    @property
    def is_redirect(self) -> bool:
        return 300 <= self.status_code < 400 and "location" in self.headers


def redirect_check(
    response: Fetched | httpx.Response,
    *,
    policy: TargetPolicy | None = None,
    resolver: Resolver | None = None,
) -> Target:
    """The target a redirect points to, when following it is allowed: a Location on the same scheme,
    host and port as the request, passing `url_check`. Anything else raises TargetRefused."""
    request_url = str(response.url)
    location = response.headers.get("location")
    if not location:
        raise TargetRefused(request_url, "the redirect has no Location")
    origin = url_precheck(request_url)
    target = url_check(location, base=origin, policy=policy, resolver=resolver)
    if (target.scheme, target.host, target.port) != (origin.scheme, *_host_port(origin)):
        raise TargetRefused(
            target.url,
            f"the redirect from {request_url} leaves its scheme, host or port; "
            "redirects are followed only on one host",
        )
    return target


def _decode(raw: bytes, encoding: str, max_bytes: int) -> tuple[bytes, bool] | None:
    """gzip/deflate bodies decompressed to at most max_bytes (a small compressed body can expand a
    thousandfold), as (body, truncated); None for an encoding left as it came."""
    if encoding in {"gzip", "x-gzip"}:
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        decompressor = zlib.decompressobj()
    else:
        return None
    try:
        body = decompressor.decompress(raw, max_bytes)
    except zlib.error:
        return None
    return body, bool(decompressor.unconsumed_tail)


def _fetch_once(
    client: httpx.Client, method: str, url: str, max_bytes: int, timeout: float, kwargs: dict[str, Any]
) -> Fetched:
    started = time.monotonic()
    with client.stream(method, url, **kwargs) as response:
        chunks: list[bytes] = []
        size = 0
        truncated = False
        for chunk in response.iter_raw():
            if size + len(chunk) > max_bytes:
                chunks.append(chunk[: max_bytes - size])
                truncated = True
                break
            chunks.append(chunk)
            size += len(chunk)
            if time.monotonic() - started > timeout:
                raise httpx.ReadTimeout(f"no complete answer within {timeout:g} s", request=response.request)
        body = b"".join(chunks)
        encoding = response.headers.get("content-encoding", "").strip().lower()
        decoded = _decode(body, encoding, max_bytes) if encoding not in {"", "identity"} else None
        if decoded is not None:
            body, truncated = decoded[0], truncated or decoded[1]
        return Fetched(
            url=str(response.url),
            status_code=response.status_code,
            headers=response.headers,
            body=body,
            truncated=truncated,
            elapsed_ms=round((time.monotonic() - started) * 1000),
        )


def fetch(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    max_bytes: int | None = None,
    timeout_seconds: float | None = None,
    max_redirects: int = 0,
    policy: TargetPolicy | None = None,
    resolver: Resolver | None = None,
    **kwargs: Any,
) -> Fetched:
    """One request through a `qa_client`, its body read up to max_bytes (QA_MAX_RESPONSE_BYTES)
    within timeout_seconds in all (QA_STEP_TIMEOUT_SECONDS; httpx's timeouts bound each connect and
    read, this bounds a server that answers a byte at a time). With max_redirects > 0 (the spec
    fetch), GET/HEAD follow that many redirects that `redirect_check` allows; a step keeps 0 and
    gets the 3xx. kwargs go to httpx (headers, params, json, content)."""
    cap = max_bytes if max_bytes is not None else settings.QA_MAX_RESPONSE_BYTES
    timeout = float(timeout_seconds if timeout_seconds is not None else settings.QA_STEP_TIMEOUT_SECONDS)
    followed: list[str] = []
    fetched = _fetch_once(client, method, url, cap, timeout, kwargs)
    while fetched.is_redirect and method.upper() in {"GET", "HEAD"} and len(followed) < max_redirects:
        target = redirect_check(fetched, policy=policy, resolver=resolver)
        followed.append(fetched.url)
        fetched = _fetch_once(client, method, target.url, cap, timeout, kwargs)
    if followed:
        fetched = replace(fetched, redirects=tuple(followed))
    return fetched


def run_bounded(
    func: Callable[[T], R], items: Iterable[T], *, limit: int | None = None
) -> Iterator[tuple[T, R]]:
    """Run func over items on at most `limit` threads (QA_CONCURRENCY), yielding (item, result) as
    each completes, so the caller (the Celery task) records results and publishes progress in its
    own thread and database connection. func should catch its own errors: one that escapes is raised
    here, and items not yet started are cancelled. Items are submitted lazily, `limit` at a time."""
    workers = limit if limit is not None else settings.QA_CONCURRENCY
    pending: dict[Future[R], T] = {}
    iterator = iter(items)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="qa-run") as pool:
        try:
            while True:
                for item in iterator:
                    pending[pool.submit(func, item)] = item
                    if len(pending) >= workers:
                        break
                if not pending:
                    return
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    item = pending.pop(future)
                    yield item, future.result()
        finally:
            for future in pending:
                future.cancel()
