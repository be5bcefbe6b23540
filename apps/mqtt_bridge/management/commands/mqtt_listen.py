"""`manage.py mqtt_listen`: bridge the plant's MQTT broker into the observation pipeline.

Settings come from the environment (MQTT_URL, MQTT_CLIENT_ID, MQTT_PROTOCOL, MQTT_SHARED_GROUP,
MQTT_CA_FILE / MQTT_CERT_FILE / MQTT_KEY_FILE, MQTT_BATCH_SIZE, ...; docs/mqtt.md);
the options here override them for one run. SIGTERM or Ctrl-C stops it gracefully.
"""

import logging
import signal
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from apps.mqtt_bridge.listener import Listener, Options


class Command(BaseCommand):
    help = "Listen to the MQTT broker (JSON and Sparkplug B) and store what the characteristics receive."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default=settings.MQTT_URL, help="Broker URL (default: MQTT_URL).")
        parser.add_argument("--client-id", default=settings.MQTT_CLIENT_ID, help="Default: MQTT_CLIENT_ID.")
        parser.add_argument("--protocol", choices=["3.1.1", "5"], default=settings.MQTT_PROTOCOL)
        parser.add_argument(
            "--shared-group",
            default=settings.MQTT_SHARED_GROUP,
            help="Split the JSON topics with the other listeners of this group ($share/<group>/...).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        logging.getLogger("openspc.mqtt").setLevel(logging.INFO)
        listener = Listener(
            Options(
                url=options["url"],
                client_id=options["client_id"],
                protocol=options["protocol"],
                shared_group=options["shared_group"],
                ca_file=settings.MQTT_CA_FILE,
                cert_file=settings.MQTT_CERT_FILE,
                key_file=settings.MQTT_KEY_FILE,
                session_expiry=settings.MQTT_SESSION_EXPIRY_SECONDS,
                batch_size=settings.MQTT_BATCH_SIZE,
                batch_wait=settings.MQTT_BATCH_WAIT_MS / 1000,
                reload_seconds=settings.MQTT_RELOAD_SECONDS,
                bad_log_interval=settings.MQTT_BAD_LOG_INTERVAL_SECONDS,
                rebirth_interval=settings.MQTT_REBIRTH_INTERVAL_SECONDS,
                host_id=settings.MQTT_SPARKPLUG_HOST_ID,
                reorder_timeout=settings.MQTT_SPARKPLUG_REORDER_TIMEOUT_MS / 1000,
                publish_violations=settings.MQTT_PUBLISH_VIOLATIONS,
                publish_statistics=settings.MQTT_PUBLISH_STATISTICS,
                publish_interval=settings.MQTT_PUBLISH_INTERVAL_MS / 1000,
                device=settings.MQTT_DEVICE,
                max_payload=settings.MQTT_MAX_PAYLOAD_BYTES,
                dropped_topics=tuple(settings.MQTT_BROKER_DROPPED_TOPICS),
            )
        )

        def stop(signum: int, frame: FrameType | None) -> None:
            listener.stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        listener.run()
