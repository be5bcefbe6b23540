"""What the MQTT bridge keeps besides observations: undecodable messages, edge node state, how
far violations have been published back to the plant, and the broker's dropped-message alarms."""

from django.db import models

from apps.mqtt_bridge.choices import DataHealthKind, DeadLetterReason


class DeadLetter(models.Model):
    """A message the bridge could not turn into an observation, kept with the start of its raw
    payload (MQTT_DEAD_LETTER_KEEP_BYTES), its size and its SHA-256.

    Values that decode but fail the configuration's checks (NaN, text, out of the plausible
    range) are stored as rejected observations instead, like any other source's. The same
    bytes on the same topic make one row with a count, so a flood of garbage stays readable.
    Only the start is kept so that one huge message cannot make a huge row, API page or listener.
    """

    topic = models.CharField(max_length=1024)
    payload = models.BinaryField(
        help_text="The message as received, byte for byte: its first MQTT_DEAD_LETTER_KEEP_BYTES."
    )
    payload_size = models.PositiveIntegerField(default=0, help_text="The whole message's size in bytes.")
    payload_sha256 = models.CharField(
        max_length=64, blank=True, help_text="SHA-256 of the whole message, hex."
    )
    reason = models.CharField(max_length=32, choices=DeadLetterReason.choices)
    message = models.TextField(help_text="What was wrong, in words.")
    count = models.PositiveIntegerField(default=1, help_text="How many times it was received.")
    first_received_at = models.DateTimeField()
    last_received_at = models.DateTimeField()
    listener = models.CharField(max_length=128, help_text="Client id of the listener that received it last.")
    fingerprint = models.CharField(max_length=64, unique=True, help_text="SHA-256 of topic and payload.")

    class Meta:
        ordering = ["-last_received_at", "-id"]
        indexes = [models.Index(fields=["reason", "last_received_at"])]

    def __str__(self) -> str:
        return f"{self.topic}: {self.get_reason_display()}"


class EdgeNode(models.Model):
    """A Sparkplug B edge node, or one of its devices (device non-empty), as its BIRTH and DEATH
    messages describe it. A characteristic fed by a metric of an offline one is offline."""

    group = models.CharField(max_length=255)
    node = models.CharField(max_length=255)
    device = models.CharField(max_length=255, blank=True, help_text="Empty for the node itself.")
    online = models.BooleanField(default=False)
    metrics = models.JSONField(default=list, blank=True, help_text="Metric names from its last BIRTH.")
    aliases = models.JSONField(
        default=dict, blank=True, help_text="Alias -> metric name from its last BIRTH (kept for a restart)."
    )
    types = models.JSONField(
        default=dict, blank=True, help_text="Metric name -> Sparkplug datatype from its last BIRTH."
    )
    bdseq = models.BigIntegerField(null=True, blank=True, help_text="The bdSeq of the node's last NBIRTH.")
    stale_deaths = models.PositiveIntegerField(
        default=0,
        help_text="NDEATHs ignored: their bdSeq was not the NBIRTH's (a will from an earlier session).",
    )
    stale_death_at = models.DateTimeField(null=True, blank=True, help_text="When the last one came.")
    born_at = models.DateTimeField(null=True, blank=True)
    died_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["group", "node", "device"]
        constraints = [
            models.UniqueConstraint(fields=["group", "node", "device"], name="edge_node_unique"),
        ]

    def __str__(self) -> str:
        return "/".join(part for part in (self.group, self.node, self.device) if part)


class PublishCursor(models.Model):
    """How far a stream of rows (violations) has been published to the broker. The listener that
    publishes holds this row locked, so two listeners never publish the same violation twice."""

    name = models.CharField(max_length=64, primary_key=True)
    position = models.BigIntegerField(default=0, help_text="The last id published.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} at {self.position}"


class DataHealthAlarm(models.Model):
    """Data that may have been lost before OpenSPC could store it, raised once when noticed: for
    now the broker's own dropped-message counter moving ($SYS). The first of the data health
    alarms; kind, source and subject leave room for the others (stale data, offline sources)."""

    kind = models.CharField(max_length=32, choices=DataHealthKind.choices)
    source = models.CharField(max_length=255, help_text="Where it was seen: the broker's URL.")
    subject = models.CharField(max_length=255, help_text="What moved: the broker's counter topic.")
    message = models.TextField(help_text="What happened, in words.")
    value_before = models.BigIntegerField(null=True, blank=True, help_text="The counter when last seen.")
    value_after = models.BigIntegerField(null=True, blank=True, help_text="The counter now.")
    raised_at = models.DateTimeField()
    listener = models.CharField(
        max_length=128, blank=True, help_text="Client id of the listener that saw it."
    )

    class Meta:
        ordering = ["-raised_at", "-id"]
        indexes = [models.Index(fields=["kind", "raised_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.raised_at:%Y-%m-%d %H:%M:%S}"


class BrokerCounter(models.Model):
    """The last value a listener saw of one of the broker's counters ($SYS), so that what moved it
    while no listener watched (a listener down while its queue overflowed) is noticed on return."""

    broker = models.CharField(max_length=255, help_text="The broker's URL, without user and password.")
    name = models.CharField(max_length=255, help_text="The counter's $SYS topic.")
    value = models.BigIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["broker", "name"], name="broker_counter_unique")]

    def __str__(self) -> str:
        return f"{self.broker} {self.name} = {self.value}"
