"""Writes of the observation domain: lots, items, and the observation pipeline.

Every function validates what the database cannot express in plain words and
raises django.core.exceptions.ValidationError keyed by field before anything is
written. Work for the `observations.in` queue is queued with
transaction.on_commit, never before the rows it names are committed.
"""

from apps.observations.services.corrections import (
    invalidation_decide,
    invalidation_request,
    observation_amend,
    observation_retest,
)
from apps.observations.services.entries import (
    Targets,
    device_entries_resolve,
    item_entry_check,
    tester_entries_resolve,
)
from apps.observations.services.health import HealthChecked, data_health_check
from apps.observations.services.items import (
    MAX_ITEMS_PER_REQUEST,
    items_assign,
    items_create,
    items_select_plans,
    lot_open,
)
from apps.observations.services.lots import (
    lot_create,
    lot_status_set,
    lot_status_validate,
    lot_validate,
)
from apps.observations.services.process import (
    PROCESS_FIELDS,
    PROCESS_TAKE,
    ProcessResult,
    observations_process,
    observations_requeue_stale,
)
from apps.observations.services.record import (
    INSERT_BATCH,
    PROCESS_CHUNK,
    STORED_BODY,
    ObservationEntry,
    RecordResult,
    observations_queue,
    observations_record,
)
from apps.observations.services.samples import (
    EXCLUSION_FIELDS,
    sample_exclude,
)
from apps.observations.services.schedules import SchedulesChecked, scheduled_sample_close, schedules_check
from apps.observations.services.verification import MAX_VERIFY_BATCH, results_verify

__all__ = [
    "EXCLUSION_FIELDS",
    "INSERT_BATCH",
    "MAX_ITEMS_PER_REQUEST",
    "MAX_VERIFY_BATCH",
    "PROCESS_CHUNK",
    "PROCESS_FIELDS",
    "PROCESS_TAKE",
    "STORED_BODY",
    "HealthChecked",
    "ObservationEntry",
    "ProcessResult",
    "RecordResult",
    "SchedulesChecked",
    "Targets",
    "data_health_check",
    "device_entries_resolve",
    "invalidation_decide",
    "invalidation_request",
    "item_entry_check",
    "items_assign",
    "items_create",
    "items_select_plans",
    "lot_create",
    "lot_open",
    "lot_status_set",
    "lot_status_validate",
    "lot_validate",
    "observation_amend",
    "observation_retest",
    "observations_process",
    "observations_queue",
    "observations_record",
    "observations_requeue_stale",
    "results_verify",
    "sample_exclude",
    "scheduled_sample_close",
    "schedules_check",
    "tester_entries_resolve",
]
