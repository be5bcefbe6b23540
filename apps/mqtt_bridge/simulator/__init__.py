"""The plant simulator behind `manage.py simulate_plant`: realistic measurement streams for the
characteristics fed over MQTT, as plain JSON and as Sparkplug B, with special causes injected so that
every Nelson rule fires now and then.

Three parts: the process model of a characteristic (read from its limits and specification), a value
stream (in-control noise with episodes of special causes), and the publisher (paced, counting what the
broker acknowledged). The first two are pure and seeded, so tests run them through the SPC engine;
they live in `streams`, the publisher in `publishing`.
"""

from apps.mqtt_bridge.simulator.publishing import Options, Report, Simulator, broker_address
from apps.mqtt_bridge.simulator.streams import (
    EPISODE_RULES,
    Episode,
    ProcessModel,
    ValueStream,
    process_model_of,
    simulated_models,
)

__all__ = [
    "EPISODE_RULES",
    "Episode",
    "Options",
    "ProcessModel",
    "Report",
    "Simulator",
    "ValueStream",
    "broker_address",
    "process_model_of",
    "simulated_models",
]
