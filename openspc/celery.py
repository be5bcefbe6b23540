"""The Celery app. Workers run `celery -A openspc worker`; tasks live in each app's tasks.py."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "openspc.settings")

app = Celery("openspc")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
