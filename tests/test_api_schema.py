"""The published OpenAPI schema against the live server: schemathesis, as a client would see it.

schemathesis generates requests for every operation from /api/schema/ and checks
that none ends in a server error and that every documented response matches the
schema. It runs as a quality specialist, the role that may call every operation.
"""

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from rest_framework_simplejwt.tokens import RefreshToken

from apps.calculations.choices import Severity
from apps.calculations.models import Violation
from apps.config.models import Characteristic, Product
from apps.observations.models import Lot, Sample
from tests.factories import LotFactory, ProductFactory, TestFactory, characteristic_for

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


def test_schema_documents_the_error_format(client):
    schema = client.get("/api/schema/?format=json").json()
    assert schema["components"]["schemas"]["Error"]["required"] == ["error"]
    product_post = schema["paths"]["/api/v1/products/"]["post"]["responses"]
    assert product_post["400"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    assert "404" in schema["paths"]["/api/v1/products/{id}/"]["get"]["responses"]
    assert schema["paths"]["/api/v1/products/"]["get"]["responses"]["503"] == {
        "$ref": "#/components/responses/DatabaseUnavailable"
    }
    unavailable = schema["components"]["responses"]["DatabaseUnavailable"]
    assert unavailable["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert unavailable["headers"]["Retry-After"]["schema"] == {"type": "integer"}


def _unacknowledged_violation(characteristic: Characteristic, lot: Lot) -> Violation:
    """Rows whose nullable columns are null (no reason, no acknowledging user), so that the
    conformance check meets the nulls the API really sends, not only filled-in values."""
    sample = Sample.objects.create(
        characteristic=characteristic, sequence=1, lot=lot, values=[2.5], observation_ids=[], n=1,
        mean=2.5, in_control=False,
    )  # fmt: skip
    return Violation.objects.create(
        characteristic=characteristic, sample=sample, rule=1, points=[1], limits_version=1,
        severity=Severity.CRITICAL,
    )  # fmt: skip


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.slow
def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    live_server, quality_specialist, tmp_path
):
    product = ProductFactory(code="RING-74")
    characteristic = characteristic_for(product, TestFactory(code="DIA"), lsl=1.0, usl=2.0)
    _unacknowledged_violation(characteristic, LotFactory(product=product))
    token = RefreshToken.for_user(quality_specialist).access_token
    report = tmp_path / "report.json"
    options = {
        "--url": live_server.url,
        "--header": f"Authorization: Bearer {token}",
        "--checks": "not_a_server_error,response_schema_conformance,content_type_conformance",
        "--phases": "examples,coverage,fuzzing",
        "--max-examples": "5",
        "--seed": "20261123",
        "--request-timeout": "10",
        "--max-time": "150",
        "--report": "json",
        "--report-json-path": str(report),
        "--warnings": "off",
    }
    command = [str(SCHEMATHESIS), "run", f"{live_server.url}/api/schema/?format=json", "--no-color"]
    command += [part for option in options.items() for part in option]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    summary = result.stdout[-6000:]
    (Path(__file__).parent.parent / "var" / "schemathesis.log").write_text(result.stdout)
    assert result.returncode == 0, summary
    # The run did exercise the API: the report lists operations, and data was really written.
    operations = json.loads(report.read_text()) if report.exists() else {}
    assert operations, summary
    assert "passed" in summary.lower(), summary
    assert Product.objects.count() >= 1


def test_committed_schema_is_current():
    """openapi.yaml is the API as shipped, so a change to it shows in review. Refresh: make schema."""
    out = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    committed = (Path(__file__).resolve().parents[1] / "openapi.yaml").read_text()
    assert out.getvalue() == committed, "openapi.yaml is stale: run `make schema` and commit it"


def test_operations_are_grouped_by_the_part_of_the_system_that_serves_them(client):
    """One tag per operation, from the declared groups, and the groups really divide the API
    (before, all 104 operations sat under one tag, `v1`)."""
    schema = client.get("/api/schema/?format=json").json()
    declared = [tag["name"] for tag in schema["tags"]]
    used: dict[str, int] = {}
    for operations in schema["paths"].values():
        for operation in operations.values():
            assert len(operation["tags"]) == 1, operation["operationId"]
            used[operation["tags"][0]] = used.get(operation["tags"][0], 0) + 1
    assert set(used) <= set(declared)
    assert {"Authentication", "Configuration", "Observations", "SPC", "QA package runs"} <= set(used)
    assert max(used.values()) < sum(used.values()) / 2
    paths = schema["paths"]
    assert paths["/api/v1/violations/"]["get"]["tags"] == ["SPC"]
    assert paths["/api/v1/lots/"]["get"]["tags"] == ["Observations"]
    assert paths["/api/v1/auth/token/"]["post"]["tags"] == ["Authentication"]
