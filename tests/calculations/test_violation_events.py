"""Violation events (issue #21): a continuing pattern is one event that grows, acknowledged once.

DIA has historical limits centre 74.0, σ 0.01 (I chart: UCL 74.03). The runs below repeat
74.005, 74.006, 74.015 above the centre: never two in three beyond 2σ (rule 5), at most two in
five beyond 1σ (rule 6), never fifteen within 1σ (rule 7), never alternating (rule 4) or rising six
times (rule 3). So on the location chart only rule 2 (nine in a row on one side) signals.
"""

import pytest

from apps.audit.models import AuditEntry
from apps.calculations import services
from apps.calculations.models import AcknowledgementReason, ChartState, Violation, ViolationEvent
from apps.config.services import characteristic_update
from tests.calculations.api_helpers import dia_of, historical, subgroups_store

pytestmark = pytest.mark.django_db

ABOVE = [74.005, 74.006, 74.015]
BELOW = [73.995, 73.994, 73.985]
EVENTS = "/api/v1/violation-events/"


def run(values: list[float], length: int) -> list[list[float]]:
    return [[values[i % len(values)]] for i in range(length)]


@pytest.fixture
def dia(plant):
    characteristic = dia_of(plant)
    historical(characteristic, center=74.0, sigma=0.01)
    return characteristic


def location_events(characteristic) -> list[ViolationEvent]:
    return list(ViolationEvent.objects.filter(characteristic=characteristic, chart="location").order_by("pk"))


def test_a_run_of_rule_2_for_30_points_is_one_event_of_30_points(plant, dia):
    # In three calculation runs, as a line would send them: the event grows across runs.
    for chunk in (run(ABOVE, 12), run(ABOVE, 10), run(ABOVE, 8)):
        subgroups_store(dia, chunk, lot=plant.lot, user=plant.tester)

    violations = Violation.objects.filter(characteristic=dia, chart="location")
    assert sorted({v.rule for v in violations}) == [2]
    assert violations.count() == 22  # one per point from the 9th: what used to be 22 alarms
    (event,) = location_events(dia)
    assert (event.rule, event.first_point, event.last_point) == (2, 1, 30)
    assert event.points == list(range(1, 31))
    assert event.violations_count == 22
    assert event.ongoing
    assert event.priority == "medium"
    assert set(violations.values_list("event", flat=True)) == {event.pk}
    assert event.rules == [2]
    assert ChartState.objects.get(pk=dia.pk).events["location"] == [event.pk, 30, False]


def test_a_new_pattern_after_the_process_returns_is_a_second_event(plant, dia):
    subgroups_store(dia, run(ABOVE, 12) + run(BELOW, 2) + run(ABOVE, 10), lot=plant.lot, user=plant.tester)

    first, second = location_events(dia)
    assert (first.first_point, first.last_point, first.points) == (1, 12, list(range(1, 13)))
    # Sample 13 (below the centre) did not continue it: it ended there.
    assert (first.ended_at is not None, first.ended_at_sequence, first.ongoing) == (True, 13, False)
    assert (second.first_point, second.last_point, second.violations_count) == (15, 24, 2)
    assert second.ongoing


def test_one_acknowledgement_covers_the_events_later_points(plant, dia, manager):
    subgroups_store(dia, run(ABOVE, 12), lot=plant.lot, user=plant.tester)
    (event,) = location_events(dia)
    reason = AcknowledgementReason.objects.get(code="assignable-cause")

    (acknowledged,) = services.violation_events_acknowledge(
        events=[event], user=manager, reason=reason, comment="Worn insert"
    )
    assert acknowledged.acknowledged_by == manager
    awaiting = Violation.objects.filter(characteristic=dia, chart="location", acknowledged_at__isnull=True)
    assert not awaiting.exists()  # the 4 violations so far

    subgroups_store(dia, run(ABOVE, 6), lot=plant.lot, user=plant.tester)  # 6 more points of the run
    event.refresh_from_db()
    assert (event.last_point, event.violations_count) == (18, 10)
    later = Violation.objects.filter(event=event, sample__sequence__gt=12)
    assert later.count() == 6
    assert {
        (v.acknowledged_by_id, v.acknowledgement_reason_id, v.acknowledgement_comment) for v in later
    } == {(manager.pk, reason.pk, "Worn insert")}
    assert not awaiting.exists()
    # One audit entry for the event, none for each of its violations.
    entries = AuditEntry.objects.filter(action="acknowledge")
    assert [(e.content_type.model, e.object_id) for e in entries] == [("violationevent", str(event.pk))]


def test_acknowledging_each_violation_of_an_ended_event_acknowledges_the_event(plant, dia, manager):
    """The per-violation acknowledgement (the API before events) leaves nothing of an ended event
    awaiting: once its last violation is acknowledged, so is the event. A running one stays open."""
    subgroups_store(dia, run(ABOVE, 12) + run(BELOW, 2) + run(ABOVE, 10), lot=plant.lot, user=plant.tester)
    ended, running = location_events(dia)
    reason = AcknowledgementReason.objects.get(code="assignable-cause")
    first, *rest = list(ended.violations.order_by("pk"))

    services.violations_acknowledge(violations=[first], user=manager, reason=reason)
    ended.refresh_from_db()
    assert ended.acknowledged_at is None  # three of its violations still await one
    services.violations_acknowledge(violations=rest, user=manager, reason=reason, comment="Worn insert")
    ended.refresh_from_db()
    assert (ended.acknowledged_by, ended.acknowledgement_reason, ended.acknowledgement_comment) == (
        manager, reason, "Worn insert",
    )  # fmt: skip
    entry = AuditEntry.objects.filter(action="acknowledge", object_id=str(ended.pk)).get()
    assert entry.reason == "assignable-cause: Worn insert (each of its violations acknowledged)"

    services.violations_acknowledge(violations=list(running.violations.all()), user=manager, reason=reason)
    running.refresh_from_db()
    assert running.acknowledged_at is None  # still running: its next points need an acknowledgement


def test_a_pattern_overlapping_an_ended_event_takes_it_up_again(plant, dia):
    # Rule 5 (2 of 3 beyond 2σ): samples 1 and 2 beyond signal at 2; sample 3 (on the centre) does
    # not continue it, so it ends; sample 4 beyond signals with sample 2, inside the ended event.
    subgroups_store(dia, [[74.025], [74.025], [74.0], [74.025]], lot=plant.lot, user=plant.tester)

    rule_5 = Violation.objects.filter(characteristic=dia, chart="location", rule=5).order_by(
        "sample__sequence"
    )
    assert [(v.sample.sequence, v.points) for v in rule_5] == [(2, [1, 2]), (4, [2, 4])]
    (event,) = ViolationEvent.objects.filter(characteristic=dia, chart="location", rule=5)
    assert (event.points, event.violations_count, event.ongoing) == ([1, 2, 4], 2, True)


def test_priorities_come_from_the_characteristic_per_rule(plant, dia, quality_specialist):
    characteristic_update(
        characteristic=dia, data={"rule_priorities": {"2": "low", "1": "high"}}, reason="runs are minor here",
    )  # fmt: skip
    dia.refresh_from_db()
    assert dia.rule_priorities == {"2": "low"}  # rule 1's is the default: not kept
    subgroups_store(dia, run(ABOVE, 9), lot=plant.lot, user=plant.tester)
    (event,) = location_events(dia)
    assert (event.rules, event.priority) == ([2], "low")

    # A point beyond the UCL goes on with the run: rule 1 joins the event and raises its priority.
    subgroups_store(dia, [[74.05]], lot=plant.lot, user=plant.tester)
    event.refresh_from_db()
    assert (event.rule, event.rules, event.priority, event.last_point) == (2, [1, 2], "high", 10)


def test_a_shift_that_sets_off_several_rules_is_one_event_with_every_rule_involved(plant, dia, api, manager):
    """Issue #21: an event has the rules involved. A shift of 2.5σ sets off rule 5 (two of three
    beyond 2σ) at the 2nd point, rule 6 (four of five beyond 1σ) at the 4th, rule 8 (eight beyond 1σ)
    at the 8th, rule 2 at the 9th: one special cause, one alarm (four before: a flood when two causes
    come together)."""
    subgroups_store(dia, [[74.025]] * 12, lot=plant.lot, user=plant.tester)

    rules = set(Violation.objects.filter(characteristic=dia, chart="location").values_list("rule", flat=True))
    assert rules == {2, 5, 6, 8}
    (event,) = location_events(dia)
    assert (event.rule, event.rules, event.first_point, event.last_point) == (5, [2, 5, 6, 8], 1, 12)
    assert event.violations_count == Violation.objects.filter(characteristic=dia, chart="location").count()
    # Filtering the list by a rule finds the events it is involved in, not only those it started.
    for rule, found in ((8, [event.pk]), (5, [event.pk]), (1, [])):
        page = api(manager).get(EVENTS, {"characteristic": dia.pk, "rule": rule}).json()
        assert [row["id"] for row in page["results"]] == found, rule
    assert api(manager).get(f"{EVENTS}{event.pk}/").json()["rules"] == [2, 5, 6, 8]


def test_a_priority_that_is_not_one_is_refused_with_the_rule_named(api, plant, dia, quality_specialist):
    response = api(quality_specialist).patch(
        f"/api/v1/characteristics/{dia.pk}/",
        {"rule_priorities": {"9": "high"}, "reason": "x"},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert "Nelson rules are numbered 1 to 8; not 9." in str(response.json())
    dia.refresh_from_db()
    assert dia.rule_priorities == {}


class ApiTests:
    def test_the_list_filters_ongoing_and_awaiting_events(self, api, plant, dia, manager):
        subgroups_store(
            dia, run(ABOVE, 12) + run(BELOW, 2) + run(ABOVE, 10), lot=plant.lot, user=plant.tester
        )
        first, second = location_events(dia)
        client = api(manager)

        listed = client.get(EVENTS, {"characteristic": dia.pk, "chart": "location"}).json()["results"]
        assert [(e["id"], e["points"][0], e["violations"], e["ongoing"]) for e in listed] == [
            (second.pk, 15, 2, True),
            (first.pk, 1, 4, False),
        ]
        ongoing = client.get(EVENTS, {"characteristic": dia.pk, "ongoing": "true"}).json()["results"]
        assert [e["id"] for e in ongoing] == [second.pk]

    def test_acknowledging_what_matches_a_filter_is_one_action_with_one_reason(
        self, api, plant, dia, manager
    ):
        subgroups_store(
            dia, run(ABOVE, 12) + run(BELOW, 2) + run(ABOVE, 10), lot=plant.lot, user=plant.tester
        )
        subgroups_store(dia, [[74.05]], lot=plant.lot, user=plant.tester)  # rule 1 too
        client = api(manager)

        answer = client.post(
            f"{EVENTS}acknowledge-matching/?characteristic={dia.pk}&rule=2",
            {"reason": "no-action", "comment": "trial run"},
            format="json",
        )
        assert answer.status_code == 200, answer.content
        rule_2 = ViolationEvent.objects.filter(characteristic=dia, rule=2)
        assert answer.json()["count"] == rule_2.count() >= 2
        assert sorted(answer.json()["ids"]) == sorted(rule_2.values_list("pk", flat=True))
        assert not rule_2.filter(acknowledged_at__isnull=True).exists()
        assert not Violation.objects.filter(characteristic=dia, rule=2, acknowledged_at__isnull=True).exists()
        # Rule 1's event did not match the filter: it still awaits.
        assert ViolationEvent.objects.filter(
            characteristic=dia, rule=1, acknowledged_at__isnull=True
        ).exists()
        reasons = set(AuditEntry.objects.filter(action="acknowledge").values_list("reason", flat=True))
        assert reasons == {f"no-action: trial run (acknowledged by filter: characteristic={dia}, rule=2)"}

        again = client.post(
            f"{EVENTS}acknowledge-matching/?characteristic={dia.pk}&rule=2",
            {"reason": "no-action"},
            format="json",
        )
        assert again.json() == {"count": 0, "ids": []}

    def test_a_second_acknowledgement_of_an_event_answers_409_and_changes_nothing(
        self, api, plant, dia, manager
    ):
        subgroups_store(dia, run(ABOVE, 10), lot=plant.lot, user=plant.tester)
        (event,) = location_events(dia)
        url = f"{EVENTS}{event.pk}/acknowledge/"
        assert api(manager).post(url, {"reason": "no-action"}, format="json").status_code == 200
        before = ViolationEvent.objects.filter(pk=event.pk).values().get()
        second = api(manager).post(url, {"reason": "process-adjusted"}, format="json")
        assert second.status_code == 409
        assert second.json()["error"]["code"] == "conflict"
        assert second.json()["error"]["message"].startswith(f"Event {event.pk} was acknowledged already, at ")
        assert ViolationEvent.objects.filter(pk=event.pk).values().get() == before

    def test_a_tester_reads_no_events(self, api, plant, dia):
        subgroups_store(dia, run(ABOVE, 10), lot=plant.lot, user=plant.tester)
        assert api(plant.tester).get(EVENTS).status_code == 403


def test_the_migration_gathers_existing_violations_as_the_calculation_does(plant, dia, manager):
    """Violations stored before events existed (docs/alarms.md, "Existing violations")."""
    from importlib import import_module

    from django.apps import apps

    migration = import_module("apps.calculations.migrations.0007_violation_events")
    subgroups_store(dia, run(ABOVE, 12) + run(BELOW, 2) + run(ABOVE, 10), lot=plant.lot, user=plant.tester)
    reason = AcknowledgementReason.objects.get(code="no-action")
    first_violation = Violation.objects.filter(characteristic=dia).order_by("sample__sequence").first()
    services.violations_acknowledge(  # one of the four violations of the first run: not the event
        violations=[first_violation], user=manager, reason=reason
    )
    shape = ["rule", "chart", "first_point", "last_point", "points", "violations_count", "ended_at_sequence"]
    expected = list(ViolationEvent.objects.order_by("first_point").values(*shape))
    expected_state = ChartState.objects.get(pk=dia.pk).events
    Violation.objects.update(event=None)
    ViolationEvent.objects.all().delete()
    ChartState.objects.update(events={})

    migration.violations_into_events(apps, None)

    assert list(ViolationEvent.objects.order_by("first_point").values(*shape)) == expected
    assert not Violation.objects.filter(event__isnull=True).exists()
    migrated = ViolationEvent.objects.order_by("first_point")
    assert [e.acknowledged_at is None for e in migrated] == [True, True]  # 1 of 4 is not the event
    # The migration kept the latest event per chart part and rule ("location:2"); the calculation
    # now reads those keys as the chart part's ("location").
    state = ChartState.objects.get(pk=dia.pk).events
    assert {key.split(":")[0]: value[1:] for key, value in state.items()} == {
        key: value[1:] for key, value in expected_state.items()
    }


class ShelvingTests:
    """ISA-18.2 shelving: events stored and shown, nobody told, for a stated time, audited."""

    def notified(self, manager, event) -> list[str]:
        from apps.calculations.events import violation_event_events
        from apps.subscriptions.models import Notification
        from apps.subscriptions.services import notifications_fanout

        notifications_fanout(events=[message for _, message in violation_event_events([event])])
        return list(Notification.objects.filter(user=manager).values_list("dedup_key", flat=True))

    def test_a_shelved_characteristic_stores_its_events_and_tells_nobody_until_the_shelf_ends(
        self, api, plant, dia, manager, quality_specialist
    ):
        from apps.calculations.models import AlarmShelf
        from apps.subscriptions.services import subscription_create

        subscription_create(
            user=manager, scope="characteristic", characteristic=dia.pk, events=["violations"]
        )
        client = api(quality_specialist)
        answer = client.post(
            "/api/v1/alarm-shelves/",
            {"characteristic": dia.pk, "minutes": 30, "reason": "gauge swap"},
            format="json",
        )
        assert answer.status_code == 201, answer.content
        shelf = AlarmShelf.objects.get()
        assert answer.json()["active"] is True
        assert (shelf.until - shelf.shelved_at).total_seconds() == 30 * 60
        again = client.post(
            "/api/v1/alarm-shelves/",
            {"characteristic": dia.pk, "minutes": 5, "reason": "again"},
            format="json",
        )
        assert again.status_code == 409
        assert f"shelved already, until {shelf.until.isoformat()}" in again.json()["error"]["message"]

        subgroups_store(dia, run(ABOVE, 10), lot=plant.lot, user=plant.tester)
        (event,) = location_events(dia)  # stored and shown while shelved
        assert self.notified(manager, event) == []

        ended = client.post(f"/api/v1/alarm-shelves/{shelf.pk}/end/", {"reason": "gauge back"}, format="json")
        assert ended.status_code == 200, ended.content
        assert ended.json()["active"] is False
        assert self.notified(manager, event) == [f"violation_event:{event.pk}"]
        entries = AuditEntry.objects.filter(content_type__model="alarmshelf").order_by("seq")
        assert [(e.action, e.reason) for e in entries] == [("create", "gauge swap"), ("update", "gauge back")]

    def test_a_shelf_expires_by_itself(self, plant, dia, quality_specialist):
        import datetime

        from django.utils import timezone

        from apps.calculations.services import alarms_shelve, characteristics_shelved

        shelf = alarms_shelve(characteristic=dia, user=quality_specialist, minutes=1, reason="short")
        assert characteristics_shelved(ids=[dia.pk]) == {dia.pk}
        later = shelf.until + datetime.timedelta(seconds=1)
        assert characteristics_shelved(ids=[dia.pk], at=later) == set()
        assert characteristics_shelved(ids=[dia.pk], at=timezone.now()) == {dia.pk}

    @pytest.mark.parametrize(
        ("body", "field", "message"),
        [
            ({"minutes": 0, "reason": "x"}, "minutes", "greater than or equal to 1"),
            ({"minutes": 10081, "reason": "x"}, "minutes", "less than or equal to 10080"),
            ({"minutes": 10, "reason": " "}, "reason", "may not be blank"),
        ],
    )
    def test_bad_shelving_is_refused_and_changes_nothing(
        self, api, dia, quality_specialist, body, field, message
    ):
        from apps.calculations.models import AlarmShelf

        answer = api(quality_specialist).post(
            "/api/v1/alarm-shelves/", {"characteristic": dia.pk, **body}, format="json"
        )
        assert answer.status_code == 400
        assert message in str(answer.json()["error"]["fields"][field])
        assert not AlarmShelf.objects.exists()

    def test_only_quality_specialists_shelve(self, api, dia, manager):
        answer = api(manager).post(
            "/api/v1/alarm-shelves/", {"characteristic": dia.pk, "minutes": 10, "reason": "x"}, format="json"
        )
        assert answer.status_code == 403


class AlarmBudgetTests:
    """A user's new alarm notifications past NOTIFICATION_ALARMS_PER_HOUR fold into one (issue #21)."""

    def event(self, dia, first: int, rule: int = 2) -> ViolationEvent:
        from django.utils import timezone

        now = timezone.now()
        return ViolationEvent.objects.create(
            characteristic=dia, rule=rule, chart="location", priority="medium", first_point=first,
            last_point=first + 8, points=list(range(first, first + 9)), limits_version=1, started_at=now,
            updated_at=now,
        )  # fmt: skip

    def tell(self, *events: ViolationEvent) -> None:
        from apps.calculations.events import violation_event_events
        from apps.subscriptions.services import notifications_fanout

        notifications_fanout(events=[message for _, message in violation_event_events(list(events))])

    def test_past_the_budget_new_alarms_fold_into_one_notification_and_growth_still_updates(
        self, plant, dia, manager, settings
    ):
        from apps.subscriptions.models import Notification
        from apps.subscriptions.services import subscription_create

        settings.NOTIFICATION_ALARMS_PER_HOUR = 3
        subscription_create(
            user=manager, scope="characteristic", characteristic=dia.pk, events=["violations"]
        )
        events = [self.event(dia, 1 + 20 * n) for n in range(5)]
        self.tell(*events[:2])
        self.tell(*events[2:])  # the 3rd fits the budget; the 4th and 5th are folded

        inbox = Notification.objects.filter(user=manager).order_by("id")
        assert [n.event for n in inbox] == ["violation_event.updated"] * 3 + ["alarms.folded"]
        folded = inbox.last()
        assert (folded.title, folded.data["count"]) == ("2 more alarms this hour", 2)
        assert folded.message.startswith(
            "You get at most 3 new alarm notifications an hour; these were folded"
        )

        events[4].points, events[4].last_point = [*events[4].points, 90], 90  # a folded one grows
        events[4].save()
        events[0].points, events[0].last_point = [*events[0].points, 10], 10  # a notified one grows
        events[0].save()
        self.tell(events[4], events[0])
        folded.refresh_from_db()
        assert folded.data["count"] == 2  # the same alarm, not counted again
        first = Notification.objects.get(user=manager, dedup_key=f"violation_event:{events[0].pk}")
        assert first.message.endswith(": 10 points (samples 1–10), going on.")
        assert Notification.objects.filter(user=manager).count() == 4


def test_a_growing_acknowledged_event_costs_two_statements_and_no_query_per_event(plant, dia, manager):
    """The event row locked and updated; who acknowledged it and why come with the lock, and its
    characteristic is the one in hand (the calculation's messages read them)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.observations.choices import ObservationSource
    from apps.observations.services import ObservationEntry, observations_process, observations_record

    subgroups_store(dia, run(ABOVE, 12), lot=plant.lot, user=plant.tester)
    (event,) = location_events(dia)
    reason = AcknowledgementReason.objects.get(code="no-action")
    services.violation_events_acknowledge(events=[event], user=manager, reason=reason)
    entry = ObservationEntry(lot=plant.lot, test=dia.test, values=[ABOVE[0]], idempotency_key="grow")
    recorded = observations_record(
        entries=[entry], source=ObservationSource.MANUAL, user=plant.tester, queue=False
    )
    observations_process(ids=recorded.ids, calculate=False)

    with CaptureQueriesContext(connection) as captured:
        services.characteristic_calculate(characteristic_id=dia.pk)

    touching = [q["sql"] for q in captured.captured_queries if "violationevent" in q["sql"]]
    assert len(touching) == 2, touching  # SELECT … FOR UPDATE, UPDATE
    assert not [q for q in captured.captured_queries if q["sql"].startswith('SELECT "auth_user"')]
    event.refresh_from_db()
    assert (event.last_point, event.violations_count) == (13, 5)
