"""Fixtures for QA package runs: a small spec with a /things collection, and a package."""

import copy
from typing import Any

import pytest

from apps.qa_runs.models import QaPackage
from apps.qa_runs.services import qa_package_create
from tests.support.qa_spec import things_spec


@pytest.fixture
def spec30() -> dict[str, Any]:
    return things_spec("3.0.3")


@pytest.fixture
def spec31() -> dict[str, Any]:
    return copy.deepcopy(things_spec("3.1.0"))


@pytest.fixture
def package(db: None) -> QaPackage:
    return qa_package_create(name="things", target_base_url="https://things.example.com/api", spec_text="{}")
