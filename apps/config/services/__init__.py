"""Writes of the configuration domain. Views, admin and commands call these; nothing else writes.

Every function validates what the database cannot express in plain words and
raises django.core.exceptions.ValidationError keyed by field, before anything
is written; database constraints stay as the last line of defence. Observation
confirmation, a pure check, is apps.config.confirmation.
"""

from apps.config.services.assignments import (
    ASSIGNMENT_FIELDS,
    characteristics_ensure,
    plan_assign,
    plan_assignment_end,
    plan_assignment_end_validate,
    plan_assignment_validate,
)
from apps.config.services.characteristics import (
    CHARACTERISTIC_FIELDS,
    LIMITS_FIELDS,
    REASONED_FIELDS,
    SUBGROUP_TIMEOUT_MAX,
    acknowledge_rules_validate,
    characteristic_apply,
    characteristic_reason_check,
    characteristic_update,
    control_limits_set,
)
from apps.config.services.devices import (
    DEVICE_BINDING,
    DEVICE_FIELDS,
    device_create,
    device_update,
)
from apps.config.services.plans import (
    PLAN_FIELDS,
    PlanEntryInput,
    plan_snapshot,
    test_plan_create,
    test_plan_delete,
    test_plan_new_version,
    test_plan_reinstate,
    test_plan_release,
    test_plan_retire,
    test_plan_set_tests,
    test_plan_update,
)
from apps.config.services.products import (
    PRODUCT_FIELDS,
    TEST_FIELDS,
    product_create,
    product_delete,
    product_update,
    test_create,
    test_delete,
    test_update,
    test_validate,
)
from apps.config.services.schedules import (
    SCHEDULE_FIELDS,
    schedule_create,
    schedule_delete,
    schedule_update,
    schedule_validate,
)

__all__ = [
    "ASSIGNMENT_FIELDS",
    "CHARACTERISTIC_FIELDS",
    "DEVICE_BINDING",
    "DEVICE_FIELDS",
    "LIMITS_FIELDS",
    "PLAN_FIELDS",
    "PRODUCT_FIELDS",
    "REASONED_FIELDS",
    "SCHEDULE_FIELDS",
    "SUBGROUP_TIMEOUT_MAX",
    "TEST_FIELDS",
    "PlanEntryInput",
    "acknowledge_rules_validate",
    "characteristic_apply",
    "characteristic_reason_check",
    "characteristic_update",
    "characteristics_ensure",
    "control_limits_set",
    "device_create",
    "device_update",
    "plan_assign",
    "plan_assignment_end",
    "plan_assignment_end_validate",
    "plan_assignment_validate",
    "plan_snapshot",
    "product_create",
    "product_delete",
    "product_update",
    "schedule_create",
    "schedule_delete",
    "schedule_update",
    "schedule_validate",
    "test_create",
    "test_delete",
    "test_plan_create",
    "test_plan_delete",
    "test_plan_new_version",
    "test_plan_reinstate",
    "test_plan_release",
    "test_plan_retire",
    "test_plan_set_tests",
    "test_plan_update",
    "test_update",
    "test_validate",
]
