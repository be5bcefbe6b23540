"""The MQTT topics the bridge publishes to, named once: the publisher (apps/mqtt_bridge) writes
them, and the configuration (apps/config, below the bridge) must refuse them as a characteristic's
tag, or the listener would read its own violations and statistics back as measurements."""

VIOLATIONS_ROOT = "spc/violations"
STATISTICS_ROOT = "spc/stats"
PUBLISHED_ROOTS = (VIOLATIONS_ROOT, STATISTICS_ROOT)


def topic_published_by_bridge(topic: str) -> bool:
    """Whether the bridge publishes to this topic (or to topics under it)."""
    return any(topic == root or topic.startswith(root + "/") for root in PUBLISHED_ROOTS)
