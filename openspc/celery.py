"""The Celery app. Workers run `celery -A openspc worker`; tasks live in each app's tasks.py."""

import os
from typing import Any

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "openspc.settings")

app = Celery("openspc")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_prerun.connect
@signals.task_postrun.connect
def _database_connections_tidy(sender: Any = None, **kwargs: Any) -> None:
    """Around each task, as around each request: drop a connection that failed or outlived
    CONN_MAX_AGE, keep the others (settings.CELERY_DB_REUSE_MAX says why). Not for a task run
    eagerly inside the caller's transaction, as Celery's own fixup does."""
    from django.db import close_old_connections

    if not getattr(getattr(sender, "request", None), "is_eager", False):
        close_old_connections()
