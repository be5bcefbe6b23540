"""Environment variables read and checked for the settings: a bad value is ImproperlyConfigured
naming the variable, so start-up stops with a message instead of running on a wrong value."""

import ipaddress
import os
import re
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured


def envbool(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if value == "":
        return default
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be one of 1/0, true/false, yes/no, on/off; got {value!r}")


def topic_level(name: str, default: str) -> str:
    """One level of an MQTT topic (a shared group, a host id): no /, + or #. Set but empty: empty."""
    value = os.environ.get(name, default).strip()
    if any(char in value for char in "/+#"):
        raise ImproperlyConfigured(f"{name} must not contain /, + or #; got {value!r}")
    return value


def envint(name: str, default: int, *, minimum: int | None = None) -> int:
    value = os.environ.get(name, "").strip()
    if value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number; got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}; got {number}")
    return number


def envlist(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name, "").strip()
    if value == "":
        return default
    return [part.strip() for part in value.split(",") if part.strip()]


def envurl(name: str, default: str, *, schemes: set[str]) -> str:
    value = os.environ.get(name, "").strip() or default
    parts = urlsplit(value)
    if parts.scheme not in schemes or not (parts.hostname or parts.path):
        allowed = ", ".join(sorted(f"{s}://" for s in schemes))
        raise ImproperlyConfigured(f"{name} must be a URL starting with {allowed}; got {value!r}")
    return value


_ALLOWLIST_HOST = re.compile(r"(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.?")


def envhostsnets(name: str, default: list[str]) -> list[str]:
    """A comma-separated list of hostnames (`*.` for subdomains) and CIDR networks, lower-cased."""
    entries = [entry.lower() for entry in envlist(name, default)]
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            if not _ALLOWLIST_HOST.fullmatch(entry):
                raise ImproperlyConfigured(
                    f"{name} entries must be hostnames (*.example.com for subdomains) or CIDR networks "
                    f"(10.20.0.0/16); got {entry!r}"
                ) from None
    return entries


def envurls(name: str, *, schemes: set[str]) -> list[str]:
    """A comma-separated list of URLs with a host, each starting with one of the schemes."""
    urls = envlist(name, [])
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in schemes or not parts.hostname:
            allowed = ", ".join(sorted(f"{s}://" for s in schemes))
            raise ImproperlyConfigured(f"{name} entries must be URLs starting with {allowed}; got {url!r}")
    return urls


def secret_key(*, debug: bool, var_dir: Path) -> str:
    """SECRET_KEY: at least 32 characters, and required unless DEBUG is on."""
    key = os.environ.get("SECRET_KEY", "").strip()
    if key:
        if len(key) < 32 and not debug:
            raise ImproperlyConfigured("SECRET_KEY must be at least 32 characters long")
        return key
    if not debug:
        raise ImproperlyConfigured("SECRET_KEY must be set unless DEBUG is on")
    # Development only: a random key kept under var/ so sessions survive restarts.
    key_file = var_dir / "secret_key"
    if not key_file.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()
