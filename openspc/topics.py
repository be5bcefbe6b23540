"""The MQTT topics the bridge publishes to, named once: the publisher (apps/mqtt_bridge) writes
them, and the configuration (apps/config, below the bridge) must refuse them as a characteristic's
tag, or the listener would read its own violations and statistics back as measurements."""

VIOLATIONS_ROOT = "spc/violations"
STATISTICS_ROOT = "spc/stats"
# The observation side's alarms (apps.observations.models.PlantMessage), by the event's first word.
HEALTH_ROOT = "spc/health"  # data.rejected, data.stale, source.offline
SPEC_ROOT = "spc/spec"  # spec.violated
SCHEDULE_ROOT = "spc/schedule"  # sample.overdue, sample.taken, sample.missed, sample.cancelled
PLANT_MESSAGE_ROOTS = {"data": HEALTH_ROOT, "source": HEALTH_ROOT, "spec": SPEC_ROOT, "sample": SCHEDULE_ROOT}
PUBLISHED_ROOTS = (VIOLATIONS_ROOT, STATISTICS_ROOT, HEALTH_ROOT, SPEC_ROOT, SCHEDULE_ROOT)


def topic_published_by_bridge(topic: str) -> bool:
    """Whether the bridge publishes to this topic (or to topics under it)."""
    return any(topic == root or topic.startswith(root + "/") for root in PUBLISHED_ROOTS)
