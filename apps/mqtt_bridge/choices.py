"""Enumerations of the MQTT bridge."""

from django.db import models


class DeadLetterReason(models.TextChoices):
    NOT_JSON = "not_json", "Not JSON"
    NOT_SPARKPLUG = "not_sparkplug", "Not a Sparkplug B payload"
    BAD_SHAPE = "bad_shape", "JSON without a usable value"
    UNKNOWN_TOPIC = "unknown_topic", "No characteristic is fed by this topic"
    UNKNOWN_ALIAS = "unknown_alias", "Sparkplug metric alias not announced in a BIRTH"
    NOT_BORN = "not_born", "Sparkplug data from a node not born (asked to rebirth)"
    BAD_BIRTH = "bad_birth", "Sparkplug BIRTH refused: one alias for two metrics (asked to rebirth)"
    BAD_METRIC = "bad_metric", "A Sparkplug metric that cannot be read (its siblings were stored)"
    NO_LOT = "no_lot", "No open lot to record the value in"
    UNKNOWN_LOT = "unknown_lot", "The lot or item named in the payload does not exist or is closed"
    FAILED = "failed", "The bridge failed on it (a fault of ours: see the listener's log)"
    TOO_LARGE = "too_large", "Larger than MQTT_MAX_PAYLOAD_BYTES: not decoded"


class DataHealthKind(models.TextChoices):
    BROKER_DROPPED = "broker_dropped", "The MQTT broker dropped messages"
