"""What an idempotency key stands for: the body it was first used with.

A key answers the observation it was first stored with only when it is sent again with the same
body (a retry). The same key with another body is a client bug (a counter reset, a key reused for
the next reading) that used to be answered with the first observation's id as if stored: the
new value was lost silently. Pure: the service reads the stored rows and raises.
"""

import datetime
from dataclasses import dataclass, fields
from typing import Any

NAMES = {
    "item_id": "item",
    "lot_id": "lot",
    "test_id": "test",
    "values": "values",
    "observed_at": "observed_at",
}


@dataclass(frozen=True)
class Body:
    """What was posted under a key, resolved: where, which test, the values, and the time if given."""

    item_id: int | None
    lot_id: int
    test_id: int
    values: list[Any]
    observed_at: datetime.datetime | None  # None: not given (the time of receipt was stored)


def body_stored(
    *,
    item_id: int | None,
    lot_id: int,
    test_id: int,
    values: Any,
    observed_at: datetime.datetime,
    received_at: datetime.datetime,
) -> Body:
    """The body of a stored row. A post without observed_at stores the time it was received as
    both, so equal times mean the time was not given (a client cannot hit the microsecond)."""
    given = None if observed_at == received_at else observed_at
    return Body(item_id, lot_id, test_id, values if isinstance(values, list) else [values], given)


def body_differences(first: Body, again: Body) -> list[str]:
    """The request fields in which `again` differs from `first` (empty: the same body, a retry).
    Values compare as numbers: 1 and 1.0 are the same value."""
    return [NAMES[f.name] for f in fields(Body) if getattr(first, f.name) != getattr(again, f.name)]
