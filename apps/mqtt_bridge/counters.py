"""The broker's own counters of messages it dropped ($SYS), as the listener watches them: a counter
that moved up raises a data health alarm (apps/mqtt_bridge/services.py), and a broker that never
sends one is said once, since its drops would then go unnoticed (docs/adr/0007)."""

import logging
from collections import Counter
from collections.abc import Sequence

from apps.mqtt_bridge.readings import BadLog
from apps.mqtt_bridge.services import broker_counter_observe

log = logging.getLogger("openspc.mqtt")


class CounterWatch:
    def __init__(
        self, *, topics: Sequence[str], broker: str, listener: str, bad_log: BadLog, counts: Counter[str]
    ) -> None:
        self.topics = tuple(topics)
        self.broker = broker  # as shown in logs and alarms (no password)
        self.listener = listener
        self.bad_log = bad_log
        self.counts = counts
        self.seen: dict[str, int] = {}  # each counter as this listener last saw it
        self._silence_told = False

    def watch(self, counters: Sequence[tuple[str, bytes]]) -> bool:
        """Record each counter value that differs from the last this listener saw; log a warning
        when the service raised an alarm (the counter moved up since any listener saw it). True if
        recording one failed (the caller resets its database connection; the next value retries)."""
        failed = False
        for topic, payload in counters:
            try:
                value = int(payload.split()[0])
            except (IndexError, ValueError):
                self.bad_log.bad(topic, "not a counter", repr(payload))
                continue
            last_seen = self.seen.get(topic)
            if value == last_seen:
                continue
            try:
                alarm = broker_counter_observe(
                    broker=self.broker, name=topic, value=value, last_seen=last_seen, listener=self.listener
                )
            except Exception:
                log.exception(
                    "recording the broker's counter %s failed; trying again with its next value", topic
                )
                failed = True
                continue
            self.seen[topic] = value
            if alarm is not None:
                self.counts["broker drop alarms"] += 1
                log.warning("the broker dropped messages: %s (data health alarm %d)", alarm.message, alarm.pk)
        return failed

    def silence(self, connected_for: float, allowed: float) -> None:
        """Say once when the broker sent none of the counters in the `allowed` seconds since the
        first connection: drops would then go unnoticed (not Mosquitto, $SYS off, or an ACL that
        keeps $SYS from us)."""
        if self._silence_told or not self.topics or self.seen or connected_for < allowed:
            return
        self._silence_told = True
        log.warning(
            "the broker sent no value of %s in %.0f s: messages it drops will go unnoticed (not Mosquitto? "
            "sys_interval 0? an ACL?); MQTT_BROKER_DROPPED_TOPICS=off says this is known",
            ", ".join(self.topics), allowed,
        )  # fmt: skip
