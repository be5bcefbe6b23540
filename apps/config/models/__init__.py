"""Configuration domain: what is made, how it is tested, and how it is charted."""

from .characteristics import Characteristic, ControlLimits
from .devices import Device
from .products import Product, Test
from .schedules import SamplingSchedule
from .test_plans import PlanAssignment, TestPlan, TestPlanEntry

__all__ = [
    "Characteristic",
    "ControlLimits",
    "Device",
    "PlanAssignment",
    "Product",
    "SamplingSchedule",
    "Test",
    "TestPlan",
    "TestPlanEntry",
]
