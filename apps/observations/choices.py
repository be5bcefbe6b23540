"""Enumerations of the observation domain."""

from django.db import models


class LotStatus(models.TextChoices):
    OPEN = "open", "Open"
    IN_TESTING = "in_testing", "In testing"
    RELEASED = "released", "Released"
    REJECTED = "rejected", "Rejected"
    QUARANTINED = "quarantined", "Quarantined"


# Where a lot may go from each status. Released and rejected are dispositions: final. Quarantine
# holds a lot (no new results) until it is released, rejected, or taken back into testing for retests.
LOT_TRANSITIONS: dict[str, frozenset[str]] = {
    LotStatus.OPEN: frozenset({LotStatus.IN_TESTING, LotStatus.REJECTED, LotStatus.QUARANTINED}),
    LotStatus.IN_TESTING: frozenset({LotStatus.RELEASED, LotStatus.REJECTED, LotStatus.QUARANTINED}),
    LotStatus.QUARANTINED: frozenset({LotStatus.IN_TESTING, LotStatus.RELEASED, LotStatus.REJECTED}),
    LotStatus.RELEASED: frozenset(),
    LotStatus.REJECTED: frozenset(),
}
# The statuses only a lot disposition (apps.records, signed) sets; POST /lots/{id}/status/ refuses them.
LOT_DISPOSITIONS = frozenset({LotStatus.RELEASED, LotStatus.REJECTED, LotStatus.QUARANTINED})
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


class HealthState(models.TextChoices):
    """A characteristic's data health (docs/alarms.md, "Data health")."""

    OK = "ok", "Receiving data"
    REJECTING = "rejecting", "Values being rejected"
    OFFLINE = "offline", "Data source offline"  # a Sparkplug B node or device that feeds it is dead
    STALE = "stale", "Not receiving data"  # nothing for longer than its schedule's cadence


class ScheduledSampleState(models.TextChoices):
    """Where a sample a schedule asked for stands (docs/alarms.md, "Sampling schedules")."""

    DUE = "due", "Due"
    OVERDUE = "overdue", "Overdue"
    TAKEN = "taken", "Taken"
    MISSED = "missed", "Missed (closed with a reason)"
    CANCELLED = "cancelled", "Cancelled (no longer asked for)"


SCHEDULED_OPEN = frozenset({ScheduledSampleState.DUE, ScheduledSampleState.OVERDUE})


class MissedSampleReason(models.TextChoices):
    """Why a scheduled sample was not taken: closing a missed sample needs one."""

    LINE_STOPPED = "line_stopped", "Line stopped"
    NO_PRODUCTION = "no_production", "Nothing produced"
    INSTRUMENT_UNAVAILABLE = "instrument_unavailable", "Instrument unavailable"
    STAFF_UNAVAILABLE = "staff_unavailable", "No one available to sample"
    OTHER = "other", "Other (explained in the note)"
