"""The QA runner's outbound HTTP: the SSRF guard, pinned connections, caps, redirects.

Real sockets throughout: servers on loopback in threads (tests/qa_runs/http_servers.py). Names
resolve through an injected resolver, so `example.test` can be made to answer 10.0.0.1 or
169.254.169.254 without DNS; loopback stands in for "a public address" where a connection must
really be made, by allow-listing it."""

from __future__ import annotations

import datetime
import gzip
import ipaddress
import pickle
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpcore
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core.exceptions import ImproperlyConfigured

from apps.qa_runs.net import (
    PinnedBackend,
    Target,
    TargetPolicy,
    TargetRefused,
    fetch,
    qa_client,
    redirect_check,
    run_bounded,
    url_check,
)
from openspc.env import envhostsnets
from tests.qa_runs.http_servers import LocalServer, local_server, reply, text
from tests.support.settings_env import GOOD_KEY, load_settings

PUBLIC = "93.184.215.14"


def resolving(mapping: dict[str, str | Sequence[str]]) -> Callable[[str, int], list[str]]:
    """A resolver answering from mapping; an unknown name fails as DNS would."""

    def resolve(host: str, port: int) -> list[str]:
        if host not in mapping:
            raise OSError(f"unknown host {host}")
        answer = mapping[host]
        return [answer] if isinstance(answer, str) else list(answer)

    return resolve


@pytest.fixture(autouse=True)
def _nothing_allowed(settings: pytest.FixtureRequest) -> None:
    """Production's default: no allow-list, so loopback is refused unless a test lists it."""
    settings.QA_TARGET_ALLOWLIST = []  # type: ignore[attr-defined]


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with local_server() as running:
        running.routes["/"] = text("hello")
        yield running


def allow(settings: pytest.FixtureRequest, *entries: str) -> None:
    settings.QA_TARGET_ALLOWLIST = list(entries)  # type: ignore[attr-defined]


# --- url_check: what is refused, and the message --------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://example.test/spec.yaml", "gopher://example.test/", "javascript:alert(1)"],
)
def test_refuses_schemes_other_than_http(url: str) -> None:
    with pytest.raises(TargetRefused) as refused:
        url_check(url, resolver=resolving({"example.test": PUBLIC}))
    assert "only http and https URLs are allowed" in str(refused.value)
    assert refused.value.address is None


@pytest.mark.parametrize(
    "url",
    [
        "http://trusted.test@example.test/",
        "http://user:secret@example.test/",
        "http://trusted.test\\@10.0.0.1/",
    ],
)
def test_refuses_userinfo(url: str) -> None:
    with pytest.raises(TargetRefused) as refused:
        url_check(url, resolver=resolving({"example.test": PUBLIC, "trusted.test": PUBLIC}))
    assert "user name or password" in refused.value.reason


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("10.0.0.1", "a private address"),
        ("192.168.1.20", "a private address"),
        ("172.16.5.5", "a private address"),
        ("169.254.169.254", "the cloud metadata service address"),
        ("169.254.10.10", "a link-local address"),
        ("127.0.0.1", "a loopback address"),
        ("::1", "a loopback address"),
        ("fe80::1", "a link-local address"),
        ("fc00::1", "a private address"),
        ("fd00:ec2::254", "the cloud metadata service address"),
        ("0.0.0.0", "an unspecified address"),
        ("::", "an unspecified address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("240.0.0.1", "a private address"),  # reserved, listed by ipaddress among the private ones
        ("100.64.0.1", "not a public address"),  # shared address space (carrier-grade NAT)
        ("::ffff:10.0.0.1", "an IPv6 address carrying 10.0.0.1, a private address"),
        ("::ffff:169.254.169.254", "carrying 169.254.169.254, the cloud metadata service address"),
        ("::ffff:127.0.0.1", "carrying 127.0.0.1, a loopback address"),
        ("::10.0.0.1", "carrying 10.0.0.1, a private address"),  # IPv4-compatible
        ("2002:a00:1::1", "carrying 10.0.0.1, a private address"),  # 6to4
        ("64:ff9b::a9fe:a9fe", "carrying 169.254.169.254"),  # NAT64
    ],
)
def test_refuses_hosts_resolving_to_non_public_addresses(address: str, reason: str) -> None:
    with pytest.raises(TargetRefused) as refused:
        url_check("https://example.test/openapi.json", resolver=resolving({"example.test": address}))
    assert refused.value.address == address
    assert reason in refused.value.reason
    message = str(refused.value)
    assert message.startswith(f"Refused https://example.test/openapi.json (address {address}): example.test")
    assert "QA_TARGET_ALLOWLIST" in message


def test_refuses_an_ip_literal_without_asking_the_resolver() -> None:
    with pytest.raises(TargetRefused) as refused:
        url_check("http://169.254.169.254/latest/meta-data/", resolver=resolving({}))
    assert refused.value.address == "169.254.169.254"
    copy = pickle.loads(pickle.dumps(refused.value))
    assert (str(copy), copy.url, copy.address) == (str(refused.value), refused.value.url, "169.254.169.254")


def test_every_resolved_address_must_be_public() -> None:
    with pytest.raises(TargetRefused) as refused:
        url_check("http://example.test/", resolver=resolving({"example.test": [PUBLIC, "10.1.2.3"]}))
    assert refused.value.address == "10.1.2.3"


def test_admits_a_public_host_and_keeps_the_addresses_it_checked() -> None:
    target = url_check(
        "https://API.Example.test:8443/v1?x=1",
        resolver=resolving({"api.example.test": [PUBLIC, "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]}),
    )
    assert target == Target(
        url="https://api.example.test:8443/v1?x=1",
        scheme="https",
        host="api.example.test",
        port=8443,
        addresses=(PUBLIC, "2606:2800:21f:cb07:6820:80da:af6b:8b2c"),
    )


def test_an_unresolvable_host_is_refused_with_the_reason() -> None:
    with pytest.raises(TargetRefused, match=r"nowhere\.test could not be resolved"):
        url_check("http://nowhere.test/", resolver=resolving({}))


def test_spec_url_base_url_and_servers_entries_are_held_to_the_same_rules() -> None:
    """The spec URL, the base URL and each `servers` entry (relative ones against the spec URL)."""
    resolver = resolving(
        {"specs.example.test": PUBLIC, "api.example.test": PUBLIC, "internal.test": "10.9.9.9"}
    )
    spec_url = "https://specs.example.test/target/openapi.yaml"
    spec_target = url_check(spec_url, resolver=resolver)
    assert spec_target.addresses == (PUBLIC,)
    assert spec_target.same_origin(url_check("https://specs.example.test:443/other", resolver=resolver))
    assert not spec_target.same_origin(url_check("http://specs.example.test/", resolver=resolver))
    servers = ["/v2", "https://api.example.test/v1", "http://internal.test/api", "http://[::ffff:a9fe:a9fe]/"]
    checked: list[str] = []
    refused: list[tuple[str | None, str]] = []
    for server in servers:
        try:
            checked.append(url_check(server, base=spec_url, resolver=resolver).url)
        except TargetRefused as error:
            refused.append((error.address, error.url))
    assert checked == ["https://specs.example.test/v2", "https://api.example.test/v1"]
    assert refused == [
        ("10.9.9.9", "http://internal.test/api"),
        ("::ffff:a9fe:a9fe", "http://[::ffff:a9fe:a9fe]/"),
    ]
    with pytest.raises(TargetRefused):
        url_check("http://internal.test:8080/", resolver=resolver)  # the same host as a base URL


# --- The allow-list -----------------------------------------------------------------------------


def test_allow_list_admits_a_listed_private_host(settings: pytest.FixtureRequest) -> None:
    resolver = resolving({"qa-target.plant.local": "10.0.0.5", "other.plant.local": "10.0.0.6"})
    with pytest.raises(TargetRefused):
        url_check("http://qa-target.plant.local/", resolver=resolver)
    allow(settings, "QA-Target.plant.local")
    assert url_check("http://qa-target.plant.local/", resolver=resolver).addresses == ("10.0.0.5",)
    with pytest.raises(TargetRefused):
        url_check("http://other.plant.local/", resolver=resolver)


def test_allow_list_networks_and_subdomain_wildcards(settings: pytest.FixtureRequest) -> None:
    allow(settings, "10.20.0.0/16", "*.plant.local")
    resolver = resolving(
        {
            "a.test": "10.20.3.4",
            "b.test": "10.21.0.1",
            "mapped.test": "::ffff:10.20.3.4",
            "line3.plant.local": "192.168.3.3",
            "plant.local.evil.test": "192.168.3.3",
            "group.plant.local": "239.1.1.1",
        }
    )
    assert url_check("http://a.test/", resolver=resolver).addresses == ("10.20.3.4",)
    assert url_check("http://mapped.test/", resolver=resolver).addresses == ("::ffff:10.20.3.4",)
    assert url_check("http://line3.plant.local/", resolver=resolver).host == "line3.plant.local"
    for refused_url in ["http://b.test/", "http://plant.local.evil.test/", "http://group.plant.local/"]:
        with pytest.raises(TargetRefused):
            url_check(refused_url, resolver=resolver)  # not listed; not listed; multicast never


def test_allow_list_setting_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QA_TARGET_ALLOWLIST", " Target.Plant.local, 10.0.0.0/8,*.lab.local, ::1 ")
    assert envhostsnets("QA_TARGET_ALLOWLIST", []) == [
        "target.plant.local",
        "10.0.0.0/8",
        "*.lab.local",
        "::1",
    ]
    monkeypatch.setenv("QA_TARGET_ALLOWLIST", "target.plant.local,http://10.0.0.1/")
    with pytest.raises(ImproperlyConfigured, match=r"QA_TARGET_ALLOWLIST entries .* got 'http://10.0.0.1/'"):
        envhostsnets("QA_TARGET_ALLOWLIST", [])
    assert TargetPolicy.from_entries(["10.0.0.0/8", "*.lab.local", "host.test."]) == TargetPolicy(
        hosts=frozenset({"host.test"}),
        suffixes=(".lab.local",),
        networks=(ipaddress.ip_network("10.0.0.0/8"),),
    )


def test_allow_list_defaults_list_loopback_only_under_debug(tmp_path: Path) -> None:
    show = "from django.conf import settings; print(settings.QA_TARGET_ALLOWLIST)"
    production = load_settings(tmp_path, show, SECRET_KEY=GOOD_KEY, QA_TARGET_ALLOWLIST="")
    development = load_settings(tmp_path, show, DEBUG="1", QA_TARGET_ALLOWLIST="")
    bad = load_settings(tmp_path, show, SECRET_KEY=GOOD_KEY, QA_TARGET_ALLOWLIST="10.0.0.0/8,bad host")
    assert production.stdout.strip() == "[]", production.stderr
    assert development.stdout.strip() == "['localhost', '127.0.0.0/8', '::1/128']", development.stderr
    assert "QA_TARGET_ALLOWLIST entries must be hostnames" in bad.stderr
    assert bad.returncode != 0


def test_loopback_only_when_configured(settings: pytest.FixtureRequest, server: LocalServer) -> None:
    resolver = resolving({"example.test": "127.0.0.1"})
    for url in [f"http://127.0.0.1:{server.port}/", f"http://example.test:{server.port}/"]:
        with qa_client(resolver=resolver) as client, pytest.raises(TargetRefused, match="a loopback address"):
            client.get(url)
    assert server.seen == []
    allow(settings, "127.0.0.0/8")
    with qa_client(resolver=resolver) as client:
        assert client.get(f"http://example.test:{server.port}/").text == "hello"
        assert client.get(f"http://127.0.0.1:{server.port}/").text == "hello"
    assert [s.host_header for s in server.seen] == [f"example.test:{server.port}", f"127.0.0.1:{server.port}"]


# --- Connections go to the checked address --------------------------------------------------------


@pytest.fixture
def two_servers() -> Iterator[tuple[LocalServer, LocalServer]]:
    """The "public" server on 127.0.0.1 and an "internal" one on 127.0.0.2, on the same port."""
    with local_server("127.0.0.1") as public, local_server("127.0.0.2", public.port) as internal:
        public.routes["/"] = text("public")
        internal.routes["/"] = text("internal secrets")
        yield public, internal


def rebinding(first: str, then: str) -> tuple[Callable[[str, int], list[str]], list[str]]:
    """A resolver answering first once, then always then (a short TTL is all an attacker needs)."""
    calls: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        return [first if len(calls) == 1 else then]

    return resolve, calls


def test_dns_rebinding_never_reaches_the_second_answer(
    settings: pytest.FixtureRequest, two_servers: tuple[LocalServer, LocalServer]
) -> None:
    public, internal = two_servers
    allow(settings, "127.0.0.1/32")  # stands for the public internet; 127.0.0.2 stays internal
    resolve, calls = rebinding("127.0.0.1", "127.0.0.2")
    with qa_client(resolver=resolve) as client:
        bodies = [client.get(f"http://rebind.test:{public.port}/").text for _ in range(3)]
    assert bodies == ["public"] * 3
    assert len(public.seen) == 3  # HTTP/1.0: a new connection for each request
    assert internal.seen == []
    assert calls == ["rebind.test"]  # checked once, pinned for the client's lifetime


def test_a_target_checked_earlier_is_pinned_as_checked(
    settings: pytest.FixtureRequest, two_servers: tuple[LocalServer, LocalServer]
) -> None:
    """The run checks the base URL when it starts; its requests go where that check looked."""
    public, internal = two_servers
    allow(settings, "127.0.0.1/32")
    resolve, calls = rebinding("127.0.0.1", "127.0.0.2")
    target = url_check(f"http://rebind.test:{public.port}/", resolver=resolve)
    with pytest.raises(TargetRefused, match=r"127\.0\.0\.2"):
        url_check(f"http://rebind.test:{public.port}/", resolver=resolve)  # what the name says now
    with qa_client(targets=[target], resolver=resolve) as client:
        assert client.get(f"http://rebind.test:{public.port}/x").status_code == 404
        assert client.get(f"http://rebind.test:{public.port}/").text == "public"
    assert public.paths == ["/x", "/"]
    assert internal.seen == []
    assert len(calls) == 2  # the two url_check calls; the client asked nobody


def test_the_pinned_backend_connects_nowhere_unchecked(server: LocalServer) -> None:
    backend = PinnedBackend()
    with pytest.raises(httpcore.ConnectError, match="was not checked"):
        backend.connect_tcp("127.0.0.1", server.port)
    backend.pin(Target("http://x.test/", "http", "x.test", server.port, ("127.0.0.1",)))
    backend.connect_tcp("x.test", server.port).close()


def test_environment_proxies_are_ignored(
    settings: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    two_servers: tuple[LocalServer, LocalServer],
) -> None:
    public, internal = two_servers
    allow(settings, "127.0.0.1/32")
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.2:{internal.port}")
    monkeypatch.setenv("ALL_PROXY", f"http://127.0.0.2:{internal.port}")
    with qa_client(resolver=resolving({"target.test": "127.0.0.1"})) as client:
        assert client.get(f"http://target.test:{public.port}/").text == "public"
    assert internal.seen == []


def _certificate(tmp_path: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


def test_tls_keeps_the_hostname_for_sni_and_certificate(
    settings: pytest.FixtureRequest, tmp_path: Path
) -> None:
    cert_file, key_file = _certificate(tmp_path, "secure.test")
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert_file, key_file)
    client_tls = ssl.create_default_context(cafile=str(cert_file))
    allow(settings, "127.0.0.1/32")
    resolver = resolving({"secure.test": "127.0.0.1", "impostor.test": "127.0.0.1"})
    with local_server(tls=server_tls) as server:
        server.routes["/"] = text("over tls")
        with qa_client(resolver=resolver, verify=client_tls) as client:
            assert client.get(f"https://secure.test:{server.port}/").text == "over tls"
            with pytest.raises(httpx.ConnectError, match="certificate verify failed"):
                client.get(f"https://impostor.test:{server.port}/")  # same address, other name
        assert server.sni == ["secure.test", "impostor.test"]
        assert [s.host_header for s in server.seen] == [f"secure.test:{server.port}"]


# --- Redirects ------------------------------------------------------------------------------------


def redirect(location: str, status: int = 302) -> Callable[[BaseHTTPRequestHandler], None]:
    return lambda handler: reply(handler, status, b"", Location=location)


def test_redirects_are_returned_not_followed(settings: pytest.FixtureRequest, server: LocalServer) -> None:
    allow(settings, "127.0.0.1/32")
    server.routes["/old"] = redirect("/")
    with qa_client() as client:
        response = client.get(f"http://127.0.0.1:{server.port}/old", follow_redirects=True)
        assert response.status_code == 302
        assert fetch(client, "GET", f"http://127.0.0.1:{server.port}/old").status_code == 302
    assert server.paths == ["/old", "/old"]


def test_fetch_follows_checked_same_host_redirects_when_asked(
    settings: pytest.FixtureRequest, server: LocalServer
) -> None:
    allow(settings, "127.0.0.1/32")
    server.routes["/spec"] = redirect("/spec/v2", 301)
    server.routes["/spec/v2"] = redirect(f"http://127.0.0.1:{server.port}/")
    with qa_client() as client:
        fetched = fetch(client, "GET", f"http://127.0.0.1:{server.port}/spec", max_redirects=5)
    assert (fetched.status_code, fetched.body, fetched.url) == (
        200,
        b"hello",
        f"http://127.0.0.1:{server.port}/",
    )
    assert fetched.redirects == (
        f"http://127.0.0.1:{server.port}/spec",
        f"http://127.0.0.1:{server.port}/spec/v2",
    )
    assert server.paths == ["/spec", "/spec/v2", "/"]


@pytest.mark.parametrize(
    ("location", "address", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254", "the cloud metadata service address"),
        ("http://metadata.test/", "::ffff:169.254.169.254", "carrying 169.254.169.254"),
        ("http://internal.test/admin", "10.0.0.1", "a private address"),
        ("http://elsewhere.test:{port}/", None, "redirects are followed only on one host"),
        ("https://127.0.0.1:{port}/", None, "redirects are followed only on one host"),
    ],
)
def test_redirect_targets_are_checked(
    settings: pytest.FixtureRequest, server: LocalServer, location: str, address: str | None, reason: str
) -> None:
    allow(settings, "127.0.0.1/32")
    resolver = resolving(
        {
            "metadata.test": "::ffff:169.254.169.254",
            "internal.test": "10.0.0.1",
            "elsewhere.test": "127.0.0.1",
        }
    )
    server.routes["/go"] = redirect(location.format(port=server.port))
    with qa_client(resolver=resolver) as client:
        response = client.get(f"http://127.0.0.1:{server.port}/go")
        with pytest.raises(TargetRefused) as refused:
            redirect_check(response, resolver=resolver)
        with pytest.raises(TargetRefused):
            fetch(client, "GET", f"http://127.0.0.1:{server.port}/go", max_redirects=3, resolver=resolver)
    assert refused.value.address == address
    assert reason in str(refused.value)
    assert server.paths == ["/go", "/go"]  # nothing followed


# --- Size cap and deadline ------------------------------------------------------------------------


def _stream(handler: BaseHTTPRequestHandler, chunk: bytes, count: int, pause: float = 0.0) -> None:
    handler.send_response(200)
    handler.end_headers()  # no Content-Length: the body ends when the connection closes
    for _ in range(count):
        handler.wfile.write(chunk)
        handler.wfile.flush()
        if pause:
            time.sleep(pause)


def test_body_cap_truncates(settings: pytest.FixtureRequest, server: LocalServer) -> None:
    allow(settings, "127.0.0.1/32")
    settings.QA_MAX_RESPONSE_BYTES = 5000  # type: ignore[attr-defined]
    server.routes["/big"] = lambda h: reply(h, 200, b"x" * 20_000)
    server.routes["/small"] = lambda h: reply(h, 200, b"y" * 5000)
    server.routes["/endless"] = lambda h: _stream(h, b"z" * 65536, 100_000)
    with qa_client() as client:
        big = fetch(client, "GET", f"http://127.0.0.1:{server.port}/big")
        small = fetch(client, "GET", f"http://127.0.0.1:{server.port}/small")
        started = time.monotonic()
        endless = fetch(client, "GET", f"http://127.0.0.1:{server.port}/endless", max_bytes=100_000)
    assert (big.body, big.truncated) == (b"x" * 5000, True)
    assert (small.body, small.truncated) == (b"y" * 5000, False)
    assert (endless.body, endless.truncated) == (b"z" * 100_000, True)
    assert time.monotonic() - started < 5


def test_body_cap_holds_for_compressed_answers(settings: pytest.FixtureRequest, server: LocalServer) -> None:
    allow(settings, "127.0.0.1/32")
    bomb = gzip.compress(b"\0" * 5_000_000)  # ~5 kB that expands to 5 MB
    server.routes["/bomb"] = lambda h: reply(h, 200, bomb, Content_Encoding="gzip")
    server.routes["/json"] = lambda h: reply(h, 200, gzip.compress(b'{"ok": true}'), Content_Encoding="gzip")
    with qa_client() as client:
        exploded = fetch(client, "GET", f"http://127.0.0.1:{server.port}/bomb", max_bytes=64_000)
        small = fetch(client, "GET", f"http://127.0.0.1:{server.port}/json", max_bytes=64_000)
    assert (exploded.body, exploded.truncated) == (b"\0" * 64_000, True)
    assert (small.body, small.truncated) == (b'{"ok": true}', False)
    assert server.seen[0].path == "/bomb"


def test_a_slow_answer_hits_the_step_deadline(settings: pytest.FixtureRequest, server: LocalServer) -> None:
    """Each byte arrives well within the read timeout; the whole answer does not within the step's."""
    allow(settings, "127.0.0.1/32")
    server.routes["/drip"] = lambda h: _stream(h, b".", 100, pause=0.1)
    with qa_client(timeout_seconds=5) as client:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout, match="within 1 s"):
            fetch(client, "GET", f"http://127.0.0.1:{server.port}/drip", timeout_seconds=1)
    assert 1 <= time.monotonic() - started < 3


def test_read_timeout_per_request(settings: pytest.FixtureRequest, server: LocalServer) -> None:
    allow(settings, "127.0.0.1/32")
    server.routes["/stall"] = lambda h: time.sleep(2)
    with qa_client(timeout_seconds=0.5) as client:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            client.get(f"http://127.0.0.1:{server.port}/stall")
    assert time.monotonic() - started < 1.5


# --- Bounded concurrency --------------------------------------------------------------------------


def test_run_bounded_keeps_to_the_limit(settings: pytest.FixtureRequest, server: LocalServer) -> None:
    allow(settings, "127.0.0.1/32")

    def slow(handler: BaseHTTPRequestHandler) -> None:
        time.sleep(0.15)
        reply(handler, 200, handler.path.encode())

    server.routes["/slow"] = slow
    caller = threading.get_ident()
    threads: set[int] = set()
    with qa_client(max_connections=3) as client:

        def step(number: int) -> bytes:
            threads.add(threading.get_ident())
            return client.get(f"http://127.0.0.1:{server.port}/slow?n={number}").content

        results = dict(run_bounded(step, range(9), limit=3))
    assert results == {n: f"/slow?n={n}".encode() for n in range(9)}
    assert server.max_in_flight == 3
    assert len(threads) == 3
    assert caller not in threads


def test_run_bounded_raises_what_escapes_and_stops() -> None:
    started: list[int] = []

    def step(number: int) -> int:
        started.append(number)
        if number == 1:
            raise ValueError("step 1 broke")
        time.sleep(0.05)
        return number

    with pytest.raises(ValueError, match="step 1 broke"):
        list(run_bounded(step, range(100), limit=2))
    assert len(started) < 10
