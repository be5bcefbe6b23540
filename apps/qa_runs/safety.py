"""What a QA run may send, whatever its scenarios say: the rules that keep a run from harming the
system it tests, or this one.

- Read-only unless the package allows more: only GET, HEAD and OPTIONS are sent; a scenario with
  any other method is skipped, with the reason (`scenario_skip_reason`).
- Never this system's own target unless the administrator allows it (QA_ALLOW_SELF_TARGET):
  `target_self` says whether a URL is this system, `target_self_refusal` refuses it.
- Never this system's run start and cancel endpoints, whatever is allowed (`step_refusal`): a run
  must not start runs of itself.
"""

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.urls import Resolver404, resolve

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The API's endpoints that start and cancel runs (apps/qa_runs/api/views.py), by URL name.
RUN_ENDPOINTS = frozenset({"qa-package-run", "qa-run-cancel"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def unsafe_refusal(method: str) -> str:
    return (
        f"{method.upper()} is not sent: the package allows only GET, HEAD and OPTIONS "
        "(allow_unsafe_methods is off)"
    )


def scenario_skip_reason(*, steps: Sequence[Mapping[str, Any]], allow_unsafe: bool) -> str:
    """Why a scenario (its steps as data) is not to run, or "" when it may: its first step with a
    method other than GET, HEAD or OPTIONS when the package does not allow them."""
    if allow_unsafe:
        return ""
    for index, step in enumerate(steps, start=1):
        method = str(step.get("method", "GET")).upper()
        if method not in SAFE_METHODS:
            return f"step {index}: {unsafe_refusal(method)}"
    return ""


def run_endpoint(url: str) -> bool:
    """The URL's path is one of this system's run start/cancel endpoints. The path is decoded first,
    as the server decodes it (/api/v1/qa/packages/1/%72un/ is the run endpoint too)."""
    path = unquote(urlsplit(url).path)
    try:
        match = resolve(path)
    except Resolver404:
        return False
    return match.url_name in RUN_ENDPOINTS


def step_refusal(*, method: str, url: str, allow_unsafe: bool, self_target: bool) -> str:
    """Why a request may not be sent (checked on the URL as filled, just before sending), or ""."""
    if self_target and run_endpoint(url):
        return "this system's own run start/cancel endpoint is never called: a run may not start or stop runs"
    if not allow_unsafe and method.upper() not in SAFE_METHODS:
        return unsafe_refusal(method)
    return ""


def _host_port(url: str) -> tuple[str, int | None]:
    parts = urlsplit(url if "//" in url else f"//{url}")
    host = (parts.hostname or "").lower().rstrip(".")
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None and parts.scheme in _DEFAULT_PORTS:
        port = _DEFAULT_PORTS[parts.scheme]
    return host, port


def _loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def target_self(url: str, *, request_hosts: Iterable[str] = ()) -> str:
    """Why url is this system itself, or "" when it is not known to be. This system is: each of
    QA_SELF_URLS (host and port); each host a request to it came through (request_hosts, as
    request.get_host() gives them: host and port); its ALLOWED_HOSTS names on any port (a proxy may
    publish any; `.example.com` matches subdomains; `*` says nothing); loopback with its own port."""
    host, port = _host_port(url)
    if not host:
        return ""
    own_ports: set[int | None] = {settings.QA_SELF_PORT}
    for self_url in settings.QA_SELF_URLS:
        self_host, self_port = _host_port(self_url)
        own_ports.add(self_port)
        if (host, port) == (self_host, self_port):
            return f"{self_url} is listed in QA_SELF_URLS"
    for request_host in filter(None, request_hosts):
        seen_host, seen_port = _host_port(request_host)  # no port given: any
        own_ports.add(seen_port)
        if host == seen_host and seen_port in (None, port):
            return f"this system was reached as {request_host}"
    if _loopback(host):
        return f"{host}:{port} is loopback on this system's port" if port in own_ports else ""
    for entry in settings.ALLOWED_HOSTS:
        name = entry.lower().rstrip(".")
        if name.startswith("[") and name.endswith("]"):
            name = name[1:-1]
        if name == "*" or not name:
            continue
        if host == name or (name.startswith(".") and (host == name[1:] or host.endswith(name))):
            return f"{host} is one of this system's names (ALLOWED_HOSTS)"
    return ""


def target_self_refusal(url: str, *, request_hosts: Iterable[str] = ()) -> str:
    """Why a package may not target url, or "": it is this system and QA_ALLOW_SELF_TARGET is off."""
    if settings.QA_ALLOW_SELF_TARGET:
        return ""
    why = target_self(url, request_hosts=request_hosts)
    if not why:
        return ""
    return (
        f"the target is this system itself ({why}); a run could change its live records. "
        "The administrator allows it with QA_ALLOW_SELF_TARGET"
    )
