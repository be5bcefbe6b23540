"""Sampling schedules (issue #21): the sample a schedule asks for is opened when due, taken by a
sample of its characteristic, overdue after its grace time (told to subscribers, the pages and the
plant's MQTT outbox), and closed as missed only with a reason code (audited)."""

import datetime
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.utils import timezone

from apps.audit.models import AuditEntry
from apps.config import services as config_services
from apps.config.choices import ScheduleKind
from apps.config.models import Characteristic, SamplingSchedule
from apps.observations import services
from apps.observations.models import Item, PlantMessage, ScheduledSample
from apps.observations.services.schedules import interval_start, schedule_slots, shift_start
from apps.subscriptions.models import Notification
from apps.subscriptions.services import notifications_fanout, subscription_create
from tests.factories import ItemFactory, LotFactory

pytestmark = pytest.mark.django_db

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
def dia(plant) -> Characteristic:
    return Characteristic.objects.get(product=plant.product, test=plant.dia)


@pytest.fixture
def sent(monkeypatch) -> list[dict]:
    out: list[dict] = []
    monkeypatch.setattr(
        "apps.observations.services.schedules.events_send_on_commit",
        lambda events: out.extend(message for _, message in events),
    )
    return out


def schedule(target, *, since: datetime.datetime, **data) -> SamplingSchedule:
    """A schedule as if made at `since`."""
    key = "characteristic" if isinstance(target, Characteristic) else "test"
    made = config_services.schedule_create(**{key: target}, **data)
    SamplingSchedule.objects.filter(pk=made.pk).update(created_at=since)
    made.refresh_from_db()
    return made


def early_in_the_hour() -> datetime.datetime:
    """A minute into the current hour: the hourly sample is due and not yet overdue (the values
    the tests enter, at the real time, come after it fell due)."""
    return interval_start(timezone.now(), 60) + datetime.timedelta(minutes=1)


def measure(plant, value: float = 74.0) -> None:
    """One DIA value on a new item of lot L-1, confirmed (a sample of one)."""
    item = ItemFactory(
        lot=plant.lot, serial=f"S{Item.objects.count():04d}", plans=[plant.ring], tester=plant.tester
    )
    ids = plant.record({"item": item, "test": plant.dia, "values": [value]})
    services.observations_process(ids=ids, calculate=False)


def test_periods_are_counted_from_the_plants_midnight_and_shifts_cross_it(settings):
    settings.TIME_ZONE, settings.SHIFT_STARTS = "Europe/Berlin", "06:00,14:00,22:00"
    at = datetime.datetime(2026, 12, 7, 10, 40, tzinfo=BERLIN)
    assert interval_start(at, 90) == datetime.datetime(2026, 12, 7, 10, 30, tzinfo=BERLIN)  # 09:00, 10:30
    assert interval_start(at, 60) == datetime.datetime(2026, 12, 7, 10, 0, tzinfo=BERLIN)
    assert shift_start(at) == datetime.datetime(2026, 12, 7, 6, 0, tzinfo=BERLIN)
    # 03:00 is in the night shift that began at 22:00 the day before.
    night = datetime.datetime(2026, 12, 8, 3, 0, tzinfo=BERLIN)
    assert shift_start(night) == datetime.datetime(2026, 12, 7, 22, 0, tzinfo=BERLIN)


def test_every_n_units_asks_for_a_sample_per_block_made():
    units = SamplingSchedule(kind=ScheduleKind.UNITS, every_units=50)
    now = timezone.now()
    assert schedule_slots(units, now=now, units=49) == []
    assert [slot.key for slot in schedule_slots(units, now=now, units=50)] == ["units:1"]
    assert [slot.key for slot in schedule_slots(units, now=now, units=149)] == ["units:2"]


def test_a_due_sample_taken_in_time_is_never_overdue(plant, dia, sent):
    now = early_in_the_hour()
    schedule(dia, since=now - datetime.timedelta(hours=3), kind=ScheduleKind.INTERVAL, every_minutes=60,
             grace_minutes=15)  # fmt: skip
    checked = services.schedules_check(now=now)
    (due,) = ScheduledSample.objects.filter(characteristic=dia)
    assert (checked.opened, due.state) == (1, "due")
    assert due.due_at == interval_start(now, 60)
    assert due.overdue_at == due.due_at + datetime.timedelta(minutes=15)

    measure(plant)
    checked = services.schedules_check(now=due.overdue_at + datetime.timedelta(minutes=1))
    due.refresh_from_db()
    assert (checked.taken, due.state) == (1, "taken")
    assert due.taken_at is not None
    assert due.taken_at >= due.due_at
    assert sent == []
    assert not PlantMessage.objects.exists()


def test_an_overdue_sample_is_told_to_subscribers_the_pages_and_the_plant_once(plant, dia, manager, sent):
    now = early_in_the_hour()
    schedule(
        plant.dia,
        since=now - datetime.timedelta(hours=3),
        kind=ScheduleKind.INTERVAL,
        every_minutes=60,
        grace_minutes=10,
    )  # fmt: skip (a schedule of the test: DIA of every product)
    services.schedules_check(now=now)
    due = ScheduledSample.objects.get(characteristic=dia)
    late = due.overdue_at + datetime.timedelta(seconds=1)

    checked = services.schedules_check(now=late)
    due.refresh_from_db()
    assert [s.pk for s in checked.overdue] == [due.pk]
    assert due.state == "overdue"
    assert [(m["type"], m["id"], m["characteristic"], m["state"]) for m in sent] == [
        ("sample.overdue", due.pk, dia.pk, "overdue")
    ]
    (message,) = PlantMessage.objects.all()
    assert (message.event, message.characteristic_id, message.data["id"]) == (
        "sample.overdue",
        dia.pk,
        due.pk,
    )

    # Checked again while it stays overdue: nothing more.
    sent.clear()
    services.schedules_check(now=late + datetime.timedelta(seconds=30))
    assert sent == []
    assert PlantMessage.objects.count() == 1

    subscription_create(user=manager, scope="characteristic", characteristic=dia.pk, events=["schedule"])
    overdue = {"type": "sample.overdue", **message.data, "timestamp": timezone.now().isoformat()}
    notifications_fanout(events=[overdue, overdue])
    (note,) = Notification.objects.filter(user=manager)
    assert note.title == f"Sample overdue: DIA {plant.dia.name} of RING-74"
    assert f"scheduled sample {due.pk}" in note.message

    # Taken after all: the plant is told it is, and it leaves the list of open samples.
    measure(plant)
    services.schedules_check(now=late + datetime.timedelta(minutes=1))
    due.refresh_from_db()
    assert due.state == "taken"
    assert [m.event for m in PlantMessage.objects.order_by("pk")] == ["sample.overdue", "sample.taken"]


def test_a_lot_schedule_is_taken_only_by_a_sample_of_that_lot(plant, dia, operations_lead):
    now = timezone.now()
    schedule(dia, since=now - datetime.timedelta(days=1), kind=ScheduleKind.LOT, grace_minutes=30)
    other = LotFactory(product=plant.product, number="L-2")
    services.schedules_check(now=now)
    assert sorted(ScheduledSample.objects.values_list("slot", flat=True)) == sorted(
        [f"lot:{plant.lot.pk}", f"lot:{other.pk}"]
    )
    measure(plant)  # in L-1
    services.schedules_check(now=now + datetime.timedelta(seconds=1))
    states = dict(ScheduledSample.objects.values_list("lot_id", "state"))
    assert states == {plant.lot.pk: "taken", other.pk: "due"}


def test_closing_a_missed_sample_needs_a_reason_and_is_audited(plant, dia, api, tester, manager):
    now = early_in_the_hour()
    schedule(dia, since=now - datetime.timedelta(hours=3), kind=ScheduleKind.INTERVAL, every_minutes=60)
    services.schedules_check(now=now)
    due = ScheduledSample.objects.get(characteristic=dia)
    url = f"/api/v1/scheduled-samples/{due.pk}/close/"

    refused = api(tester).post(url, {"note": "forgot"}, format="json")
    assert refused.status_code == 400
    assert "reason_code" in refused.json()["error"]["fields"]
    other = api(tester).post(url, {"reason_code": "other"}, format="json")
    assert other.status_code == 400
    assert "note" in other.json()["error"]["fields"]
    assert api(manager).post(url, {"reason_code": "line_stopped"}, format="json").status_code == 403
    due.refresh_from_db()
    assert due.state == "due"
    assert not AuditEntry.objects.filter(action="close_missed").exists()

    closed = api(tester).post(url, {"reason_code": "line_stopped", "note": "Die change"}, format="json")
    assert closed.status_code == 200, closed.content
    assert (closed.json()["state"], closed.json()["reason_code"]) == ("missed", "line_stopped")
    due.refresh_from_db()
    assert (due.closed_by, due.note) == (tester, "Die change")
    entry = AuditEntry.objects.get(action="close_missed")
    assert (entry.user, entry.object_id, entry.reason) == (tester, str(due.pk), "Line stopped")
    assert entry.after["state"] == "missed"

    again = api(tester).post(url, {"reason_code": "line_stopped"}, format="json")
    assert again.status_code == 409
    listed = api(manager).get("/api/v1/scheduled-samples/", {"state": "missed"}).json()
    assert [row["id"] for row in listed["results"]] == [due.pk]


def test_a_schedule_needs_one_target_and_the_number_its_kind_needs(plant, dia, api, quality_specialist):
    client = api(quality_specialist)
    both = client.post("/api/v1/sampling-schedules/", {"characteristic": dia.pk, "test": plant.dia.pk,
                                                      "kind": "shift"}, format="json")  # fmt: skip
    assert both.status_code == 400
    assert "characteristic" in both.json()["error"]["fields"]
    no_minutes = client.post("/api/v1/sampling-schedules/", {"characteristic": dia.pk, "kind": "interval"},
                             format="json")  # fmt: skip
    assert no_minutes.status_code == 400
    assert "every_minutes" in no_minutes.json()["error"]["fields"]
    assert not SamplingSchedule.objects.exists()
    made = client.post("/api/v1/sampling-schedules/", {"characteristic": dia.pk, "kind": "interval",
                                                      "every_minutes": 30}, format="json")  # fmt: skip
    assert made.status_code == 201, made.content
    assert made.json()["description"] == "every 30 min"
    assert AuditEntry.objects.filter(action="create", object_id=str(made.json()["id"])).exists()
    twice = client.post(
        "/api/v1/sampling-schedules/", {"characteristic": dia.pk, "kind": "shift"}, format="json"
    )
    assert twice.status_code == 400


def test_characteristics_fed_by_mqtt_get_no_scheduled_samples(plant, dia):
    Characteristic.objects.filter(pk=dia.pk).update(data_source="tag", tag="plant/line1/dia")
    now = timezone.now()
    schedule(dia, since=now - datetime.timedelta(hours=1), kind=ScheduleKind.INTERVAL, every_minutes=5)
    assert services.schedules_check(now=now).opened == 0


def test_two_checks_that_overlap_open_each_sample_once(plant, dia, monkeypatch):
    from apps.observations.services import schedules as module

    now = early_in_the_hour()
    schedule(dia, since=now - datetime.timedelta(hours=3), kind=ScheduleKind.INTERVAL, every_minutes=60)
    wanted = module._opened(now)  # what a check that started first decided to open
    services.schedules_check(now=now)  # the other check opens it first
    monkeypatch.setattr(module, "_opened", lambda now: wanted)
    services.schedules_check(now=now)  # no IntegrityError: the slot is taken already
    assert ScheduledSample.objects.filter(characteristic=dia).count() == 1


def test_samples_no_schedule_asks_for_any_more_are_cancelled_not_left_on_the_worklist(plant, dia, sent):
    """A schedule deleted (or switched off) leaves no due sample behind: the next check cancels its
    open samples, with why; the plant, told one was overdue, is told it is cancelled."""
    now = early_in_the_hour()
    made = schedule(
        dia,
        since=now - datetime.timedelta(hours=3),
        kind=ScheduleKind.INTERVAL,
        every_minutes=60,
        grace_minutes=10,
    )
    services.schedules_check(now=now)
    due = ScheduledSample.objects.get(characteristic=dia)
    late = due.overdue_at + datetime.timedelta(seconds=1)
    services.schedules_check(now=late)
    sent.clear()
    PlantMessage.objects.all().delete()

    config_services.schedule_delete(schedule=made)
    checked = services.schedules_check(now=late + datetime.timedelta(seconds=1))
    due.refresh_from_db()
    assert (checked.cancelled, due.state) == (1, "cancelled")
    assert due.note == "No longer asked for: its sampling schedule was removed or switched off."
    assert [(m["type"], m["id"], m["state"]) for m in sent] == [("sample.cancelled", due.pk, "cancelled")]
    assert [(m.event, m.data["id"]) for m in PlantMessage.objects.all()] == [("sample.cancelled", due.pk)]
    assert ScheduledSample.objects.filter(state__in=["due", "overdue"]).count() == 0

    # A characteristic switched off: its open (not yet overdue) sample goes too, the plant not told.
    sent.clear()
    schedule(dia, since=now - datetime.timedelta(hours=3), kind=ScheduleKind.INTERVAL, every_minutes=60)
    nxt = now + datetime.timedelta(hours=1)
    services.schedules_check(now=nxt)
    (opened,) = ScheduledSample.objects.filter(state="due")
    Characteristic.objects.filter(pk=dia.pk).update(active=False)
    services.schedules_check(now=nxt + datetime.timedelta(seconds=1))
    opened.refresh_from_db()
    assert (opened.state, opened.note) == (
        "cancelled",
        "No longer asked for: the characteristic was switched off.",
    )
    assert [m.event for m in PlantMessage.objects.all()] == ["sample.cancelled"]  # only the earlier one


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the plan is PostgreSQL's")
def test_finding_the_sample_that_took_a_scheduled_one_reads_an_index_not_the_characteristics_samples(
    plant, dia
):
    """Every check looks for the first sample since each open one fell due. Without an index on
    (characteristic, created_at) that read every sample of the characteristic: 95 ms per open
    sample at 600,000 samples, against 1.5 ms with it."""
    from apps.observations.services.schedules import _taken

    measure(plant)
    due = ScheduledSample.objects.create(
        characteristic=dia, slot="t", due_at=timezone.now(), overdue_at=timezone.now()
    )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # the table is small here; the plan is what counts
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as queries:
            _taken([due])
        (sql,) = [q["sql"] for q in queries.captured_queries]
        cursor.execute(f"EXPLAIN {sql}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "sample_characteristic_created" in plan, plan
