"""The observation side's alarms back to the plant: each event that should reach MQTT is stored in
the outbox (PlantMessage) in the transaction that raised it; apps.mqtt_bridge.publisher publishes
it at least once (docs/mqtt.asyncapi.yaml: `spc/health/...`, `spc/spec/...`, `spc/schedule/...`)."""

from collections.abc import Sequence

from apps.observations.models import PlantMessage
from openspc.events import Event
from openspc.rows import rows_insert


def plant_messages_store(events: Sequence[Event]) -> None:
    """Store these events (each names its `characteristic`) for publishing. No statement for none."""
    rows = [
        PlantMessage(
            event=message["type"],
            characteristic_id=message["characteristic"],
            data={key: value for key, value in message.items() if key not in ("type", "timestamp")},
        )
        for _, message in events
    ]
    if rows:
        rows_insert(model=PlantMessage, rows=rows)
