"""How many alarms a plant gets (issue #21): the plant simulator's injected special causes, eight
plant hours accelerated, through the real services; per line, the causes injected and detected,
the violation events per hour in calm running, the floods, and the notifications per manager.

The targets are ISA-18.2 / EEMUA 191's: an operator can handle about 6 alarms an hour in steady
running; more than 10 in 10 minutes is a flood. Every cause the rules should catch must be caught.

    DATABASE_URL=postgres://…/postgres REDIS_URL=redis://…/15 .venv/bin/python bench/alarm_rate.py

What runs: a bench database (created and dropped), three lines of four characteristics each (n = 1
and n = 5, historical limits, Nelson rules), a manager subscribed to their violations. Every plant
minute, each characteristic gets one subgroup from the simulator's value stream
(apps.mqtt_bridge.simulator.streams.ValueStream: in control, with an episode now and then built to
set off its rules: spike, shift, trend, alternation, stratification, mixture). The subgroups are
stored, confirmed, judged and gathered into events by the same services as every path, and the
events sent by the calculation go through the notification fan-out, in this process (no broker, no
worker: the figures count alarms, not time).

- A cause is *detected* when an event that one of its episode's rules (EPISODE_RULES, location
  chart) is involved in has a point inside the episode.
- An event is *calm* when none of its points falls inside an episode or the two subgroups after it:
  a false alarm. Calm events per hour are counted per line (the operator's screen).
- A *flood* is more than 10 events starting on one line within 10 plant minutes.
- Notifications: what the subscribed manager's inbox holds at the end (one per event, updated as it
  grows; past NOTIFICATION_ALARMS_PER_HOUR in an hour, folded into one "N more alarms"), per plant
  hour. The services read the clock on plant time (django.utils.timezone.now is the simulated
  minute), so the hourly budget counts plant hours.

Ends with one line of JSON: causes_injected, causes_detected, events_per_hour (the worst line's calm
events per hour), floods, notifications_per_hour, and the same per line.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ingest_common import (
    bench_database_url,
    database_recreate,
    django_start,
    migrate,
    services_check,
)

LINES = ("Line 1", "Line 2", "Line 3")
PER_LINE = 4  # characteristics per line: two of n = 1, two of n = 5
CENTER, SIGMA = 25.0, 0.1
MARGIN = 2  # subgroups after an episode whose events are still its own
FLOOD_EVENTS, FLOOD_MINUTES = 10, 10
TARGETS = {"events_per_hour": 6, "floods": 0}


@dataclass
class LineFigures:
    line: str
    injected: int = 0
    detected: int = 0
    events: int = 0
    calm_events: int = 0
    floods: int = 0
    starts: list[int] = field(default_factory=list)  # plant minutes events started at


def plant_setup() -> tuple[list[object], object, object]:
    """The characteristics (three lines of four), the lot, the tester and the manager subscribed."""
    import datetime

    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from apps.calculations.services import limits_set_historical
    from apps.config import services as config
    from apps.config.models import Characteristic
    from apps.observations.services import lot_create
    from apps.subscriptions.services import subscription_create
    from openspc.roles import Role

    users = get_user_model().objects
    lead = users.create_user(username="bench-lead")
    tester = users.create_user(username="bench-tester")
    manager = users.create_user(username="bench-manager")
    manager.groups.add(Group.objects.get(name=str(Role.MANAGER)))
    product = config.product_create(code="ALARM-1", name="Alarm rate product")
    count = len(LINES) * PER_LINE
    tests = [
        config.test_create(code=f"ALARM-D{i}", name=f"Dimension {i}", kind="variable", plausible_min=0.0,
                           plausible_max=2 * CENTER)
        for i in range(1, count + 1)
    ]  # fmt: skip
    plan = config.test_plan_create(
        code="ALARM", name="Alarm plan", entries=[config.PlanEntryInput(test=test) for test in tests]
    )
    plan = config.test_plan_release(plan=plan, user=lead, reason="benchmark", signed_by_system=True)
    config.plan_assign(
        product=product, plan=plan, effective_from=datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    )
    characteristics = []
    for index, test in enumerate(tests):
        characteristic = config.characteristic_update(
            characteristic=Characteristic.objects.get(product=product, test=test),
            data={
                "site": "Plant",
                "line": LINES[index // PER_LINE],
                "subgroup_size": 1 if index % 4 < 2 else 5,
            },
            reason="benchmark",
        )
        limits_set_historical(characteristic=characteristic, center=CENTER, sigma=SIGMA, reason="benchmark",
                              user=lead, signed_by_system=True)  # fmt: skip
        characteristics.append(Characteristic.objects.select_related("test").get(pk=characteristic.pk))
    lot = lot_create(product=product, number="ALARM-LOT-1", user=lead)
    subscription_create(user=manager, scope="product", product=product.pk, events=["violations"])
    return characteristics, lot, (tester, manager)


def simulate(characteristics: list[object], lot: object, tester: object, *, hours: float, calm: float,
             seed: int) -> tuple[dict[int, object], float]:  # fmt: skip
    """Feed every characteristic one subgroup a plant minute; the streams (with their episodes)."""
    import datetime

    from django.utils import timezone

    from apps.calculations.services import characteristics_calculate
    from apps.mqtt_bridge.simulator.streams import ValueStream, process_model_of
    from apps.observations.choices import ObservationSource
    from apps.observations.services import ObservationEntry, observations_process, observations_record
    from apps.subscriptions.services import notifications_fanout
    from openspc import events as channel
    from openspc.events import NOTIFYING

    # Plant time: every service reads the clock through django.utils.timezone.now, so the hourly
    # notification budget, the events' and notifications' times all run on the simulated minutes.
    start = timezone.now()
    plant_now = {"at": start}
    timezone.now = lambda: plant_now["at"]
    rng = random.Random(seed)
    streams = {c.pk: ValueStream(process_model_of(c), rng=rng, calm_points=calm) for c in characteristics}
    sent: list[dict[str, object]] = []
    channel.events_send = lambda events: sent.extend(message for _, message in events)  # no channel layer
    started = time.monotonic()
    ids = [c.pk for c in characteristics]
    for minute in range(round(hours * 60)):
        plant_now["at"] = start + datetime.timedelta(minutes=minute)
        entries = [
            ObservationEntry(lot=lot, test=c.test, values=streams[c.pk].values(c.subgroup_size),
                             idempotency_key=f"alarm:{c.pk}:{minute}")
            for c in characteristics
        ]  # fmt: skip
        recorded = observations_record(
            entries=entries, source=ObservationSource.MANUAL, user=tester, queue=False
        )
        observations_process(ids=recorded.ids, calculate=False)
        characteristics_calculate(characteristic_ids=ids)
        heard = [message for message in sent if message.get("type") in NOTIFYING]
        sent.clear()
        if heard:
            notifications_fanout(events=heard)
    return streams, time.monotonic() - started


def figures(characteristics: list[object], streams: dict[int, object], hours: float) -> list[LineFigures]:
    from apps.calculations.models import ViolationEvent
    from apps.mqtt_bridge.simulator.streams import EPISODE_RULES

    by_line = {line: LineFigures(line) for line in LINES}
    for c in characteristics:
        figures_of = by_line[c.line]
        spans = [
            (span, set(range(span.start + 1, span.start + span.length + 1)))
            for span in streams[c.pk].episodes
            if span.start + span.length <= streams[c.pk].subgroups  # finished within the run
        ]
        events = list(ViolationEvent.objects.filter(characteristic=c).order_by("first_point"))
        figures_of.injected += len(spans)
        for span, inside in spans:
            rules = set(EPISODE_RULES[span.kind])
            if any(e.chart == "location" and rules & set(e.rules) and inside & set(e.points) for e in events):
                figures_of.detected += 1
        covered = set()
        for span, _ in spans:
            covered.update(range(span.start + 1, span.start + span.length + 1 + MARGIN))
        for e in events:
            figures_of.events += 1
            figures_of.starts.append(e.first_point - 1)  # one subgroup a minute: sequence − 1
            if not covered & set(e.points):
                figures_of.calm_events += 1
    for figures_of in by_line.values():
        figures_of.floods = floods(sorted(figures_of.starts))
    return list(by_line.values())


def floods(starts: list[int]) -> int:
    """Windows of FLOOD_MINUTES with more than FLOOD_EVENTS events starting, counted once each
    (a flood ends when the rate falls back)."""
    count, flooding, begin = 0, False, 0
    for end, minute in enumerate(starts):
        while minute - starts[begin] >= FLOOD_MINUTES:
            begin += 1
        over = end - begin + 1 > FLOOD_EVENTS
        count += over and not flooding
        flooding = over
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=8.0, help="Plant hours to simulate (default 8).")
    parser.add_argument("--calm", type=float, default=60.0,
                        help="Mean calm minutes between two causes of one characteristic (60).")  # fmt: skip
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--database", default="openspc_bench_alarms")
    args = parser.parse_args()

    database_url, _ = services_check()
    bench_url = bench_database_url(database_url, args.database)
    database_recreate(database_url, args.database)
    try:
        env = django_start(database_url=bench_url)
        migrate(env)
        from apps.calculations.services import window_invalidate

        characteristics, lot, (tester, manager) = plant_setup()
        for c in characteristics:  # a window an earlier run left in Redis under the same id
            window_invalidate(characteristic_id=c.pk)
        streams, elapsed = simulate(
            characteristics, lot, tester, hours=args.hours, calm=args.calm, seed=args.seed
        )
        lines = figures(characteristics, streams, args.hours)
        from apps.calculations.models import Violation
        from apps.subscriptions.models import Notification

        notifications = Notification.objects.filter(user=manager).count()
        violations = Violation.objects.count()
    finally:
        from django.db import connections

        connections.close_all()
        database_recreate(database_url, args.database, drop_only=True)

    hours = args.hours
    print(f"{hours:g} plant hours, {len(characteristics)} characteristics on {len(LINES)} lines, one "
          f"subgroup a minute each, a cause every ~{args.calm:g} min per characteristic; "
          f"{elapsed:.0f} s to run.")  # fmt: skip
    print(f"{'line':<8} {'causes':>7} {'detected':>9} {'events':>7} {'calm/h':>7} {'floods':>7}")
    for f in lines:
        print(
            f"{f.line:<8} {f.injected:>7} {f.detected:>9} {f.events:>7} {f.calm_events / hours:>7.2f} "
            f"{f.floods:>7}"
        )
    injected, detected = sum(f.injected for f in lines), sum(f.detected for f in lines)
    events = sum(f.events for f in lines)
    worst = max(f.calm_events / hours for f in lines)
    total_floods = sum(f.floods for f in lines)
    print(
        f"{'all':<8} {injected:>7} {detected:>9} {events:>7} {worst:>7.2f} {total_floods:>7}"
        "   (calm/h: the worst line)"
    )
    print(f"{violations} violations made {events} events; the manager's inbox holds {notifications} "
          "notifications "
          f"({notifications / hours:.1f} an hour across {len(LINES)} lines).")  # fmt: skip
    print(f"Targets: every cause detected, calm events ≤ {TARGETS['events_per_hour']} an hour per line, "
          f"floods {TARGETS['floods']}.")  # fmt: skip
    result = {
        "causes_injected": injected, "causes_detected": detected, "events_per_hour": round(worst, 2),
        "floods": total_floods, "notifications_per_hour": round(notifications / hours, 2),
        "violations": violations, "events": events, "hours": hours,
        "lines": {f.line: {"causes_injected": f.injected, "causes_detected": f.detected,
                           "events_per_hour": round(f.calm_events / hours, 2), "floods": f.floods}
                  for f in lines},
    }  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()
