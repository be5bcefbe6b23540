"""Celery tasks of QA package runs: the run itself (queue `qa_runs`) and the sweep of dead runs."""

from celery import shared_task

from apps.qa_runs import pipeline
from openspc import queues


# acks_late off, unlike the project's default: a run lasts minutes (up to a day), longer than the
# Redis transport's visibility timeout (1 h), after which an unacknowledged task would be handed to
# a second worker while the first still runs it. A run whose worker dies is ended by the sweep.
@shared_task(name=queues.QA_RUNS_RUN, acks_late=False, ignore_result=True)
def run(run_id: int) -> None:
    pipeline.run_execute(run_id=run_id)


@shared_task(name=queues.QA_RUNS_SWEEP_STALE, ignore_result=True)
def sweep_stale() -> int:
    return len(pipeline.qa_runs_sweep_stale())
