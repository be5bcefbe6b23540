"""The event and queue vocabulary is written once (openspc/events.py, openspc/queues.py) and every
sender, listener and route uses it."""

from django.conf import settings

from apps.subscriptions.services import DIRECT_EVENTS, EVENT_KINDS
from openspc import queues
from openspc.celery import app
from openspc.events import NOTIFYING, EventType, event


def test_the_subscription_kinds_cover_exactly_the_notifying_events():
    """Each notifying event reaches people by subscription (EVENT_KINDS) or by role (DIRECT_EVENTS)."""
    assert set(EVENT_KINDS) | set(DIRECT_EVENTS) == NOTIFYING
    assert not set(EVENT_KINDS) & set(DIRECT_EVENTS)
    assert all(isinstance(name, EventType) for name in EVENT_KINDS)


def test_an_event_carries_its_name_as_a_plain_string():
    _, message = event(EventType.LIMITS_CHANGED, ["characteristic.1"], version=2)
    assert type(message["type"]) is str
    assert message["type"] == "limits.changed"


def test_every_route_and_beat_entry_names_a_registered_task():
    app.loader.import_default_modules()
    names = {value for key, value in vars(queues).items() if key.isupper() and not key.endswith("_QUEUE")}
    assert set(settings.CELERY_TASK_ROUTES) <= names
    assert {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()} <= names
    assert names <= set(app.tasks)
    assert settings.CELERY_TASK_ROUTES[queues.CALCULATIONS_APPLY] == {"queue": "calculations"}
    assert settings.CELERY_TASK_ROUTES[queues.OBSERVATIONS_PROCESS] == {"queue": "observations.in"}
    assert settings.CELERY_TASK_ROUTES[queues.QA_RUNS_RUN] == {"queue": "qa_runs"}


def test_choices_are_defined_in_choices_modules_not_in_models():
    from django.apps import apps as registry
    from django.db.models import Choices

    defined_in_models = sorted(
        f"{value.__module__}.{value.__name__}"
        for config in registry.get_app_configs()
        if config.name.startswith("apps.") and config.models_module is not None
        for module in [config.models_module]
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, Choices)
        and value.__module__.startswith(config.name + ".models")
    )
    assert defined_in_models == []
