"""openspc.rows.rows_locked on PostgreSQL: rows created on first use are locked without deadlock
when transactions race to create them (CI caught four workers deadlocking on new subgroup feeds)."""

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, connections, transaction

from apps.observations.models import SubgroupFeed
from openspc.rows import rows_locked
from tests.factories import ProductFactory, TestFactory, characteristic_for

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="row locks are PostgreSQL's"),
]


def _in_thread(work: Callable[[], Any], results: dict[str, Any], name: str) -> threading.Thread:
    def run() -> None:
        try:
            with transaction.atomic():
                results[name] = sorted(row.pk for row in work())
        except Exception as error:  # the deadlock victim's error is the finding
            results[name] = error
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, name=name)
    thread.start()
    return thread


def test_two_transactions_creating_the_same_rows_while_a_third_commits_one_do_not_deadlock(monkeypatch):
    product = ProductFactory(code="FEED-1")
    first, second = (characteristic_for(product, TestFactory(code=code)).pk for code in ("A", "B"))
    low, high = sorted((first, second))
    SubgroupFeed.objects.filter(pk__in=[low, high]).delete()

    # The interleaving that deadlocked: "maker" finds neither row and is held just before it
    # creates them; meanwhile the high row is created by someone else, "taker" locks it and goes
    # to create the low one, and only then is the maker let go to create (and hold) the low one.
    maker_may_insert = threading.Event()
    taker_inserting = threading.Event()
    real_bulk_create = SubgroupFeed._default_manager.bulk_create

    def bulk_create(rows: list[SubgroupFeed], **options: Any) -> list[SubgroupFeed]:
        if threading.current_thread().name == "maker":
            maker_may_insert.wait(timeout=3)
        elif threading.current_thread().name == "taker":
            taker_inserting.set()
            maker_may_insert.set()
            threading.Event().wait(0.5)  # the maker's insert goes first
        return real_bulk_create(rows, **options)

    monkeypatch.setattr(SubgroupFeed._default_manager, "bulk_create", bulk_create)
    results: dict[str, Any] = {}
    maker = _in_thread(lambda: rows_locked(model=SubgroupFeed, ids=[low, high]), results, "maker")
    threading.Event().wait(0.5)  # the maker has looked and is waiting to insert
    SubgroupFeed.objects.create(pk=high)
    taker = _in_thread(lambda: rows_locked(model=SubgroupFeed, ids=[low, high]), results, "taker")
    for thread in (maker, taker):
        thread.join(timeout=30)
        assert not thread.is_alive()

    assert results == {"maker": [low, high], "taker": [low, high]}
    assert sorted(SubgroupFeed.objects.filter(pk__in=[low, high]).values_list("pk", flat=True)) == [low, high]
    assert connection.vendor == "postgresql"
