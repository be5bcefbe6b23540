"""Expected conditions log one line and no traceback; faults keep theirs."""

import logging

import pytest

from tests.factories import ProductFactory, TestFactory, characteristic_for

pytestmark = pytest.mark.django_db


def test_a_refused_page_is_one_line_without_a_traceback(client, tester, caplog):
    """A tester opening a chart (their role reads none) printed the PermissionDenied traceback,
    twice in the demo's log."""
    characteristic = characteristic_for(ProductFactory(), TestFactory())
    client.force_login(tester)
    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = client.get(f"/charts/{characteristic.pk}/")
    assert response.status_code == 403
    records = [record for record in caplog.records if record.name == "django.request"]
    assert [record.getMessage() for record in records] == [
        f"Forbidden (Permission denied): /charts/{characteristic.pk}/"
    ]
    assert records[0].exc_info is None


def test_a_server_error_keeps_its_traceback():
    from openspc.logs import ClientErrorWithoutTraceback

    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        record = logging.LogRecord(
            "django.request", logging.ERROR, __file__, 1, "Internal Server Error", (), sys.exc_info()
        )
    record.status_code = 500
    assert ClientErrorWithoutTraceback().filter(record)
    assert record.exc_info is not None


def test_django_records_are_printed_once():
    """Django's own console handler (with DEBUG) and the root's printed each record twice."""
    django_logger = logging.getLogger("django")
    assert django_logger.propagate is False
    assert "console" in [handler.name for handler in django_logger.handlers]
