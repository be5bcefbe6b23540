"""Writes of the calculation domain: judging samples, statistics, control limits."""

from apps.calculations.services.calculate import (
    CalculationResult,
    characteristic_calculate,
    characteristics_behind,
    characteristics_calculate,
    limits_current,
    lines_of,
    window_invalidate,
    window_key,
    window_load,
    window_rebuild,
    windows_warm_up,
)
from apps.calculations.services.limits import (
    LimitsChange,
    LimitsFrozen,
    limits_freeze,
    limits_recalculate,
    limits_set_historical,
)
from apps.calculations.services.shelving import alarms_shelve, characteristics_shelved, shelf_end
from apps.calculations.services.stats import (
    lot_statistics_apply,
    product_statistics_apply,
    product_statistics_finish,
)
from apps.calculations.services.violations import (
    MAX_BATCH,
    AlreadyAcknowledged,
    violation_acknowledge,
    violation_events_acknowledge,
    violation_events_acknowledge_matching,
    violations_acknowledge,
)

__all__ = [
    "MAX_BATCH",
    "AlreadyAcknowledged",
    "CalculationResult",
    "LimitsChange",
    "LimitsFrozen",
    "alarms_shelve",
    "characteristic_calculate",
    "characteristics_behind",
    "characteristics_calculate",
    "characteristics_shelved",
    "limits_current",
    "limits_freeze",
    "limits_recalculate",
    "limits_set_historical",
    "lines_of",
    "lot_statistics_apply",
    "product_statistics_apply",
    "product_statistics_finish",
    "shelf_end",
    "violation_acknowledge",
    "violation_events_acknowledge",
    "violation_events_acknowledge_matching",
    "violations_acknowledge",
    "window_invalidate",
    "window_key",
    "window_load",
    "window_rebuild",
    "windows_warm_up",
]
