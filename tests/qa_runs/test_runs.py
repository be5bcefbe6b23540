"""The run's state machine and its events: legal and illegal moves, sequence numbers, one end."""

import threading
from collections.abc import Callable

import pytest
from django.db import IntegrityError, connection, transaction

from apps.qa_runs.choices import RUN_TRANSITIONS, EventType, RunStatus, Verdict
from apps.qa_runs.models import QaEvent, QaPackage, QaPackageRun
from apps.qa_runs.services import (
    RunFinished,
    RunTransitionError,
    event_publish,
    qa_run_request,
    qa_run_transition,
)

FORWARD = [
    RunStatus.SPEC_FETCHED,
    RunStatus.SCENARIOS_CREATED,
    RunStatus.EXECUTING,
    RunStatus.EVALUATED,
    RunStatus.COMPLETE,
]


def events(run: QaPackageRun) -> list[tuple[int, str]]:
    return list(QaEvent.objects.filter(run=run).order_by("sequence").values_list("sequence", "type"))


def run_at(package: QaPackage, status: str) -> QaPackageRun:
    """A run walked forward to `status` (or stopped there, for FAILED / CANCELLED)."""
    run = qa_run_request(package=package, requested_by=None)
    if status in (RunStatus.FAILED, RunStatus.CANCELLED):
        return qa_run_transition(run=run, to=status)
    for step in FORWARD[: FORWARD.index(status) + 1] if status != RunStatus.REQUESTED else []:
        run = qa_run_transition(run=run, to=step)
    return run


@pytest.mark.django_db
class TransitionTests:
    def test_the_whole_way_publishes_each_stage_once_and_in_order(self, package: QaPackage) -> None:
        run = qa_run_request(package=package, requested_by=None)
        for status in FORWARD[:-1]:
            run = qa_run_transition(run=run, to=status)
        run = qa_run_transition(
            run=run, to=RunStatus.COMPLETE, verdict=Verdict.PASS, payload={"verdict": "PASS"}
        )
        assert run.status == RunStatus.COMPLETE
        assert run.verdict == Verdict.PASS
        assert run.started_at is not None
        assert run.finished_at is not None
        assert events(run) == [
            (1, EventType.REQUESTED),
            (2, EventType.SPEC_FETCHED),
            (3, EventType.EXECUTION_STARTED),
            (4, EventType.QA_EVAL_DONE),
            (5, EventType.COMPLETE),
        ]
        assert QaEvent.objects.get(run=run, sequence=5).payload == {"verdict": "PASS"}

    def test_fields_are_set_with_the_move(self, package: QaPackage) -> None:
        run = qa_run_request(package=package, requested_by=None)
        run = qa_run_transition(run=run, to=RunStatus.SPEC_FETCHED, spec_hash="ab" * 32, operations_total=7)
        stored = QaPackageRun.objects.get(pk=run.pk)
        assert (stored.spec_hash, stored.operations_total, stored.coverage) == ("ab" * 32, 7, 0.0)

    @pytest.mark.parametrize(
        ("start", "to"),
        [
            (start, to)
            for start in RunStatus.values
            for to in RunStatus.values
            if to not in RUN_TRANSITIONS[start]
        ],
    )
    def test_every_move_not_in_the_table_is_refused_and_changes_nothing(
        self, package: QaPackage, start: str, to: str
    ) -> None:
        run = run_at(package, start)
        before = events(run)
        with pytest.raises(RunTransitionError, match=f"from {start} to {to}"):
            qa_run_transition(run=run, to=to)
        assert QaPackageRun.objects.get(pk=run.pk).status == start
        assert events(run) == before

    @pytest.mark.parametrize("stop", [RunStatus.FAILED, RunStatus.CANCELLED])
    @pytest.mark.parametrize("at", [RunStatus.REQUESTED, *FORWARD[:-1]])
    def test_a_run_can_stop_at_any_stage_before_the_end(self, package: QaPackage, at: str, stop: str) -> None:
        run = qa_run_transition(run=run_at(package, at), to=stop, error="target down")
        assert (run.status, run.error) == (stop, "target down")
        assert events(run)[-1][1] == stop

    def test_a_stale_copy_cannot_move_the_run_twice(self, package: QaPackage) -> None:
        run = qa_run_request(package=package, requested_by=None)
        stale = QaPackageRun.objects.get(pk=run.pk)
        qa_run_transition(run=run, to=RunStatus.SPEC_FETCHED)
        with pytest.raises(RunTransitionError, match="from SPEC_FETCHED to SPEC_FETCHED"):
            qa_run_transition(run=stale, to=RunStatus.SPEC_FETCHED)
        assert [t for _, t in events(run)].count(EventType.SPEC_FETCHED) == 1

    def test_the_status_and_counter_cannot_be_smuggled_in_as_fields(self, package: QaPackage) -> None:
        run = qa_run_request(package=package, requested_by=None)
        with pytest.raises(ValueError, match="does not set last_sequence, status"):
            qa_run_transition(run=run, to=RunStatus.SPEC_FETCHED, status=RunStatus.COMPLETE, last_sequence=0)
        assert QaPackageRun.objects.get(pk=run.pk).status == RunStatus.REQUESTED

    def test_an_unknown_status_is_refused(self, package: QaPackage) -> None:
        with pytest.raises(RunTransitionError, match="Unknown"):
            qa_run_transition(run=qa_run_request(package=package, requested_by=None), to="DONE")


@pytest.mark.django_db
class EventTests:
    def test_sequence_counts_per_run(self, package: QaPackage) -> None:
        first, second = (qa_run_request(package=package, requested_by=None) for _ in range(2))
        event_publish(run=first, type=EventType.SCENARIO_CREATED, payload={"scenario": 1})
        event_publish(run=second, type=EventType.SCENARIO_CREATED)
        event_publish(run=first, type=EventType.AI_FAILED, payload={"attempt": 1})
        assert events(first) == [(1, "REQUESTED"), (2, "SCENARIO_CREATED"), (3, "AI_FAILED")]
        assert events(second) == [(1, "REQUESTED"), (2, "SCENARIO_CREATED")]

    def test_ai_failed_names_its_attempt(self, package: QaPackage) -> None:
        run = qa_run_request(package=package, requested_by=None)
        with pytest.raises(ValueError, match="attempt"):
            event_publish(run=run, type=EventType.AI_FAILED, payload={"error": "timeout"})

    @pytest.mark.parametrize("terminal", [EventType.COMPLETE, EventType.FAILED, EventType.CANCELLED])
    def test_nothing_after_the_terminal_event(self, package: QaPackage, terminal: str) -> None:
        run = qa_run_request(package=package, requested_by=None)
        event_publish(run=run, type=terminal)
        for late in (EventType.COMPLETE, EventType.FAILED, EventType.SCENARIO_CREATED):
            with pytest.raises(RunFinished):
                event_publish(run=run, type=late)
        assert events(run) == [(1, "REQUESTED"), (2, terminal)]

    def test_the_database_refuses_a_second_terminal_event_too(self, package: QaPackage) -> None:
        run = qa_run_request(package=package, requested_by=None)
        QaEvent.objects.create(run=run, sequence=2, type=EventType.FAILED)
        with pytest.raises(IntegrityError), transaction.atomic():
            QaEvent.objects.create(run=run, sequence=3, type=EventType.COMPLETE)


def in_threads(count: int, work: Callable[[int], None]) -> list[BaseException]:
    """Run work(i) in `count` threads started together; the exceptions they raised."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def target(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            work(index)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    return errors


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
class ConcurrencyTests:
    def test_concurrent_publishers_take_distinct_consecutive_numbers(self, package: QaPackage) -> None:
        run = qa_run_request(package=package, requested_by=None)
        per_thread = 10

        def publish(index: int) -> None:
            for n in range(per_thread):
                event_publish(run=run, type=EventType.SCENARIO_CREATED, payload={"thread": index, "n": n})

        assert in_threads(8, publish) == []
        sequences = [s for s, _ in events(run)]
        assert sequences == list(range(1, 8 * per_thread + 2))
        assert QaPackageRun.objects.get(pk=run.pk).last_sequence == 8 * per_thread + 1

    def test_of_racing_terminal_events_exactly_one_is_stored(self, package: QaPackage) -> None:
        run = qa_run_request(package=package, requested_by=None)
        kinds = [EventType.COMPLETE, EventType.FAILED, EventType.CANCELLED] * 2
        errors = in_threads(len(kinds), lambda i: event_publish(run=run, type=kinds[i]) and None)
        assert len(errors) == len(kinds) - 1
        assert all(isinstance(e, RunFinished) for e in errors)
        assert QaEvent.objects.filter(run=run, type__in=[k.value for k in kinds[:3]]).count() == 1

    def test_of_racing_workers_one_moves_the_run(self, package: QaPackage) -> None:
        run = qa_run_request(package=package, requested_by=None)
        errors = in_threads(4, lambda i: qa_run_transition(run=run, to=RunStatus.SPEC_FETCHED) and None)
        assert len(errors) == 3
        assert all(isinstance(e, RunTransitionError) for e in errors)
        assert events(run) == [(1, "REQUESTED"), (2, "SPEC_FETCHED")]
