"""Fixtures for QA package runs: a small spec with a /things collection, and a package."""

import copy
from typing import Any

import pytest

from apps.qa_runs.models import QaPackage
from tests.factories import QaPackageFactory
from tests.support.qa_spec import things_spec


@pytest.fixture
def spec30() -> dict[str, Any]:
    return things_spec("3.0.3")


@pytest.fixture
def spec31() -> dict[str, Any]:
    return copy.deepcopy(things_spec("3.1.0"))


@pytest.fixture
def package(db: None) -> QaPackage:
    return QaPackageFactory(name="things")
