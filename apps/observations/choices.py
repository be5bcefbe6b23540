"""Enumerations of the observation domain."""

from django.db import models


class LotStatus(models.TextChoices):
    OPEN = "open", "Open"
    IN_TESTING = "in_testing", "In testing"
    RELEASED = "released", "Released"
    REJECTED = "rejected", "Rejected"


# Where a lot may go from each status. Released and rejected are dispositions: final.
LOT_TRANSITIONS: dict[str, frozenset[str]] = {
    LotStatus.OPEN: frozenset({LotStatus.IN_TESTING, LotStatus.REJECTED}),
    LotStatus.IN_TESTING: frozenset({LotStatus.RELEASED, LotStatus.REJECTED}),
    LotStatus.RELEASED: frozenset(),
    LotStatus.REJECTED: frozenset(),
}
# Lots that take items, plan selection, assignment and observations.
LOT_WORKING = frozenset({LotStatus.OPEN, LotStatus.IN_TESTING})


class ObservationSource(models.TextChoices):
    MANUAL = "manual", "Manual entry or REST (tester)"
    DEVICE = "device", "Device (REST batch)"
    MQTT = "mqtt", "MQTT"


class ObservationStatus(models.TextChoices):
    RECEIVED = "received", "Received (stored, not yet checked)"
    CONFIRMED = "confirmed", "Confirmed"
    REJECTED = "rejected", "Rejected (kept with its reasons)"
    INVALIDATED = "invalidated", "Invalidated (kept, with who and why)"


class ObservationRejection(models.TextChoices):
    """Reasons the observation pipeline adds to apps.config.choices.RejectionCode."""

    LOT_CLOSED = "lot_closed", "The lot was released or rejected before the observation was processed"


class InvalidationStatus(models.TextChoices):
    REQUESTED = "requested", "Requested"
    APPROVED = "approved", "Approved"
    REFUSED = "refused", "Refused"
