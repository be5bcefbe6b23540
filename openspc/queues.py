"""Celery task and queue names, written once.

The task decorators, the `send_task` calls that queue a task by name (an app that must not import
the app that runs it) and `CELERY_TASK_ROUTES` / `CELERY_BEAT_SCHEDULE` in settings all use these.
Settings imports this module, so it imports nothing from Django.
"""

# Queues. A worker reads the queues it is started with (`celery worker -Q ...`).
DEFAULT_QUEUE = "celery"
OBSERVATIONS_QUEUE = "observations.in"
CALCULATIONS_QUEUE = "calculations"
QA_RUNS_QUEUE = "qa_runs"

# Tasks.
OBSERVATIONS_PROCESS = "observations.process"
OBSERVATIONS_REQUEUE_STALE = "observations.requeue_stale"
OBSERVATIONS_SUBGROUPS_TIMEOUT = "observations.subgroups_timeout"
OBSERVATIONS_DATA_HEALTH = "observations.data_health"
OBSERVATIONS_SCHEDULES = "observations.schedules"
CALCULATIONS_APPLY = "calculations.apply"
CALCULATIONS_CATCH_UP = "calculations.catch_up"
CALCULATIONS_WARM_UP = "calculations.warm_up"
SUBSCRIPTIONS_FANOUT = "subscriptions.fanout"
SUBSCRIPTIONS_EMAIL_DIGEST = "subscriptions.email_digest"
QA_RUNS_RUN = "qa_runs.run"
QA_RUNS_SWEEP_STALE = "qa_runs.sweep_stale"
RECORDS_OOS_OPEN = "records.oos_open"
