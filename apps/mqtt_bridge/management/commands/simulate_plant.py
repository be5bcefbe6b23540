"""`manage.py simulate_plant`: publish measurements for the characteristics fed over MQTT, with
special causes, until stopped (Ctrl-C, SIGTERM), --seconds or --count."""

import argparse
import secrets
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.config.choices import DataSource
from apps.mqtt_bridge.services import bridge_device, lots_open_where_missing
from apps.mqtt_bridge.simulator import Options, Report, Simulator, broker_address, simulated_models


def _positive(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return parse


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT end the run gracefully. Only the main thread may install handlers (a test
    calling the command from another thread stops it with --seconds or --count)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {
        number: signal.signal(number, lambda *_: stop.set()) for number in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


class Command(BaseCommand):
    help = (
        "Publish realistic measurements for every active characteristic fed over MQTT (JSON topic or "
        "Sparkplug B metric), with injected special causes so that each Nelson rule fires now and then."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--url", help="Broker, mqtt:// or mqtts://user:password@host:port (default MQTT_URL)."
        )
        parser.add_argument(
            "--rate", type=_positive(float), default=10.0, help="Messages per second in total."
        )
        parser.add_argument("--seconds", type=_positive(float), help="Stop after this many seconds.")
        parser.add_argument("--count", type=_positive(int), help="Stop after this many messages.")
        parser.add_argument("--seed", type=int, help="Seed of the random values (default: random).")
        parser.add_argument(
            "--special-every",
            type=_positive(float),
            default=20.0,
            metavar="SECONDS",
            help="Mean calm time between two special causes of one characteristic (default 20).",
        )
        parser.add_argument("--no-special-causes", action="store_true", help="An in-control plant.")
        parser.add_argument("--qos", type=int, choices=(0, 1, 2), default=1)
        parser.add_argument("--run-id", help="Prefix of the JSON message ids (default: random).")
        parser.add_argument("--lot", help='Adds "lot": LOT to every JSON message.')
        parser.add_argument(
            "--open-lots",
            action="store_true",
            help="Open a lot for each simulated product that has no open one (make run does).",
        )
        parser.add_argument("--sparkplug-group", default="OpenSPC", help="Sparkplug B group id.")
        parser.add_argument(
            "--acked-log", type=Path, help="Append the id of every message the broker acknowledged."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        url = options["url"] or settings.MQTT_URL
        group = options["sparkplug_group"]
        if not group or any(char in group for char in "/+#"):
            raise CommandError(f"--sparkplug-group must be a single topic level, got {group!r}")
        try:
            address = broker_address(url)
        except ValueError as error:
            raise CommandError(str(error)) from error
        models = simulated_models()
        if not models:
            self.stdout.write(
                "Nothing to simulate: no active characteristic has data source tag or sparkplug."
            )
            return
        lots: dict[int, str] = {}
        if options["open_lots"]:
            device = bridge_device(name=settings.MQTT_DEVICE)
            simulator_lots = lots_open_where_missing(
                characteristic_ids=[model.characteristic_id for model in models], user=device.user
            )
            for lot in simulator_lots.opened:
                self.stdout.write(f"opened lot {lot.number} of {lot.product.code} for the simulated values")
            lots = simulator_lots.numbers
        run = Options(
            url=url,
            run_id=options["run_id"] or secrets.token_hex(4),
            rate=options["rate"],
            seconds=options["seconds"],
            count=options["count"],
            seed=options["seed"] if options["seed"] is not None else secrets.randbits(32),
            special_every=None if options["no_special_causes"] else options["special_every"],
            qos=options["qos"],
            lot=options["lot"],
            lots=lots,
            group=group,
        )
        sources = [model.source for model in models]
        self.stdout.write(
            f"simulating {len(models)} characteristics (json: {sources.count(DataSource.TAG)}, "
            f"sparkplug: {sources.count(DataSource.SPARKPLUG)}) at {run.rate:g} msg/s on {address.display} "
            f"(run {run.run_id}, seed {run.seed})"
        )
        stop = threading.Event()
        log_path: Path | None = options["acked_log"]
        log_file: IO[str] | nullcontext[None] = (
            log_path.open("a", buffering=1) if log_path else nullcontext()  # a line survives a kill
        )
        with log_file as log, _stop_on_signals(stop):
            try:
                report = Simulator(models, run, acked_log=log).run(stop)
            except ConnectionError as error:
                raise CommandError(str(error)) from error
        self._summary(report)

    def _summary(self, report: Report) -> None:
        rows = [("characteristic", "source", "published", "acked", "special causes")]
        for stream in report.streams:
            model = stream.model
            causes = ", ".join(f"{kind} {count}" for kind, count in sorted(stream.injected.items())) or "-"
            key = model.characteristic_id
            rows.append(
                (model.name, model.source, str(report.published[key]), str(report.acked[key]), causes)
            )
        published, acked = report.published.total(), report.acked.total()
        injected = sum(stream.injected.total() for stream in report.streams)
        rows.append(("total", "", str(published), str(acked), str(injected)))
        widths = [max(len(row[column]) for row in rows) for column in range(5)]
        for row in rows:
            cells = [
                cell.rjust(width) if 2 <= i <= 3 else cell.ljust(width)
                for i, (cell, width) in enumerate(zip(row, widths, strict=True))
            ]
            self.stdout.write("  ".join(cells).rstrip())
        rate = published / report.elapsed if report.elapsed else 0.0
        self.stdout.write(
            f"published {published} messages in {report.elapsed:.1f} s ({rate:.0f} msg/s), "
            f"acknowledged by the broker {acked}"
            + (f", {report.skipped} values not sent while an edge node was offline" if report.skipped else "")
        )
