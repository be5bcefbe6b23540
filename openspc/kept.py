"""Rows kept in each process between requests and tasks, under a generation (issue #20).

Some rows are read by every request and every worker batch and change a few times a day: the
configuration (apps.config.cached), which event kinds anyone subscribes to (apps.subscriptions).
Each process keeps what it read under the *generation* of its kind of rows: a random token in
Redis that every write of those rows replaces, once when it is written and once more when its
transaction commits. A process that reads the rows between the two (the old values, the write not
yet committed) keeps them under the first new token and drops them at the second. Keeping costs
one Redis GET per use instead of the rows' queries. Without Redis nothing is kept: the rows are
read each time.

What is kept is shared by everything the process runs: treat it as read-only.
"""

import logging
import threading
import uuid
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, TypeVar

from django.core.cache import cache
from django.db import transaction

logger = logging.getLogger(__name__)

MAX_ENTRIES = 20_000  # per generation: a plant's characteristics, products and limits many times over

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Generation:
    """What this process read of one kind of rows, under the token it read it in."""

    def __init__(self) -> None:
        self.token: str | None = None
        self.entries: dict[tuple[str, Hashable], Any] = {}


_lock = threading.Lock()
_generations: dict[str, _Generation] = {}


def generation_key(name: str) -> str:
    return f"{name}:generation"


def _replace_token(name: str) -> None:
    try:
        cache.set(generation_key(name), uuid.uuid4().hex, timeout=None)
    except Exception:
        # Nobody can use a kept copy without reading the token, and a Redis that cannot be written
        # is rarely one that can be read; the warning says why stale rows could show.
        logger.warning("could not mark the %s changed in Redis", name, exc_info=True)


def generation_changed(name: str) -> None:
    """Rows of the generation `name` were written: every process drops what it kept of them, now
    and at the commit."""
    _replace_token(name)
    transaction.on_commit(lambda: _replace_token(name), robust=True)


def kept_forget() -> None:
    """Drop what this process kept (tests, whose rolled-back writes are never committed)."""
    with _lock:
        _generations.clear()


def _token(name: str) -> str | None:
    key = generation_key(name)
    try:
        token = cache.get(key)
        if token is None:  # Redis new or flushed: the first reader starts a generation
            token = uuid.uuid4().hex
            if not cache.add(key, token, timeout=None):
                token = cache.get(key)
    except Exception:
        logger.warning("%s generation unavailable; reading the rows", name, exc_info=True)
        return None
    return token if isinstance(token, str) else None


def kept_many(
    name: str, kind: str, keys: Iterable[K], load: Callable[[Sequence[K]], dict[K, V]]
) -> dict[K, V | None]:
    """The values of `keys` (None for a key `load` did not return), read with `load(missing keys)`
    only for those this process does not keep under the current generation `name`."""
    wanted = list(dict.fromkeys(keys))
    token = _token(name)
    if token is None:
        loaded = load(wanted) if wanted else {}
        return {key: loaded.get(key) for key in wanted}
    with _lock:
        generation = _generations.setdefault(name, _Generation())
        if generation.token != token or len(generation.entries) > MAX_ENTRIES:
            generation.token, generation.entries = token, {}
        found = {key: generation.entries[(kind, key)] for key in wanted if (kind, key) in generation.entries}
    missing = [key for key in wanted if key not in found]
    if missing:
        loaded = load(missing)
        with _lock:
            for key in missing:
                found[key] = loaded.get(key)
                if generation.token == token:
                    generation.entries[(kind, key)] = found[key]
    return found


def kept_one(name: str, kind: str, key: K, load: Callable[[Sequence[K]], dict[K, V]]) -> V | None:
    return kept_many(name, kind, [key], load)[key]
