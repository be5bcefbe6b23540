"""Fixtures for every test package: role users, API clients, fast hashing, the plant world."""

import os
from collections.abc import Callable

import pytest
from django.contrib.auth.models import AbstractBaseUser
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from apps.config import services
from openspc.kept import kept_forget
from openspc.roles import Role
from tests.factories import UserFactory
from tests.support.parallel import isolate_worker

isolate_worker()  # a parallel run (make test-fast): this worker's own Redis database

# Fixtures every package shares, registered here once: test modules and conftests import no test
# module (tests/project/test_test_imports.py); what they share lives in tests/support/.
pytest_plugins = ["tests.support.plant"]


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    """On SQLite, a test database in a file rather than in memory, so that a real Celery worker
    started by a test (tests/observations/test_worker.py) opens the same database."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        worker = os.environ.get("PYTEST_XDIST_WORKER")
        name = f"test_openspc_{worker}.sqlite3" if worker else "test_openspc.sqlite3"
        database.setdefault("TEST", {})["NAME"] = str(settings.VAR_DIR / name)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: pytest.FixtureRequest) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # type: ignore[attr-defined]


@pytest.fixture
def quality_specialist(db: None) -> AbstractBaseUser:
    return UserFactory(username="qs", roles=[Role.QUALITY_SPECIALIST], is_staff=True)


@pytest.fixture
def operations_lead(db: None) -> AbstractBaseUser:
    return UserFactory(username="ops", roles=[Role.OPERATIONS_LEAD])


@pytest.fixture
def tester(db: None) -> AbstractBaseUser:
    """A tester. Items and their assignment come with the observation pipeline."""
    return UserFactory(username="tester", roles=[Role.TESTER])


@pytest.fixture
def manager(db: None) -> AbstractBaseUser:
    return UserFactory(username="manager", roles=[Role.MANAGER])


@pytest.fixture
def device_token(db: None) -> str:
    _, token = services.device_create(name="gauge-1")
    return token


@pytest.fixture
def api() -> Callable[[AbstractBaseUser | None], APIClient]:
    """api(user) -> a client sending that user's JWT (as a real API client would); api(None): anonymous."""

    def make(user: AbstractBaseUser | None) -> APIClient:
        client = APIClient()
        if user is not None:
            # An access token alone: a refresh token is recorded in the database (rotation and
            # blacklisting), which query-count tests must not see as the view's work.
            token = AccessToken.for_user(user)  # type: ignore[arg-type]
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return client

    return make


@pytest.fixture
def device_api(device_token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Device {device_token}")
    return client


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every transactional test must use serialized_rollback=True.

    A plain transactional test flushes the database when it ends; the flush re-creates
    content types with new ids, and the next serialized test then fails to restore the
    role groups and their permissions (which the data migrations created).
    """
    for item in items:
        marker = item.get_closest_marker("django_db")
        if marker and marker.kwargs.get("transaction") and not marker.kwargs.get("serialized_rollback"):
            raise pytest.UsageError(
                f"{item.nodeid}: use django_db(transaction=True, serialized_rollback=True)"
            )


@pytest.fixture(autouse=True)
def _configuration_forgotten() -> None:
    """Each test reads the configuration afresh: a test's writes are rolled back, never committed, so
    what a process kept of them (openspc.kept) would outlive them."""
    kept_forget()
