"""The configuration, kept in each process between requests and tasks (openspc.kept, issue #20).

Every synchronous sample and every worker batch reads the same rows: the characteristic with its
product and test, the product's tests and plans, the current control limits. They change a few
times a day and were read hundreds of times a second, a third of a sample's SQL statements.

Every write counts: saves and deletes through their signals (connected in ConfigConfig.ready),
QuerySet.update, bulk_create and bulk_update through ConfigQuerySet. Devices are not configuration
here (a device's last use is written on every request it makes).
"""

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, TypeVar

from django.db import models

from openspc.kept import generation_changed, kept_many, kept_one

GENERATION = "config"

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
M = TypeVar("M", bound=models.Model, covariant=True)


def config_changed() -> None:
    """A configuration row was written: every process drops what it kept, now and at the commit."""
    generation_changed(GENERATION)


def cached_many(kind: str, keys: Iterable[K], load: Callable[[Sequence[K]], dict[K, V]]) -> dict[K, V | None]:
    return kept_many(GENERATION, kind, keys, load)


def cached_one(kind: str, key: K, load: Callable[[Sequence[K]], dict[K, V]]) -> V | None:
    return kept_one(GENERATION, kind, key, load)


class ConfigQuerySet(models.QuerySet[M]):
    """A configuration model's queryset: the writes that send no signal mark the configuration
    changed too."""

    def update(self, **kwargs: Any) -> int:
        changed = super().update(**kwargs)
        config_changed()
        return changed

    def bulk_create(self, objs: Iterable[M], *args: Any, **kwargs: Any) -> list[M]:
        created = super().bulk_create(objs, *args, **kwargs)
        config_changed()
        return created

    def bulk_update(self, objs: Iterable[M], *args: Any, **kwargs: Any) -> int:
        changed = super().bulk_update(objs, *args, **kwargs)
        config_changed()
        return changed


def config_row_written(sender: type[models.Model], **kwargs: Any) -> None:
    """post_save, post_delete and m2m_changed of a configuration model."""
    config_changed()
