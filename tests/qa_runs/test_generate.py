"""The deterministic generator on the /things spec: valid values within the schema, the negative
variants, the unauthenticated one only where security is declared, the create → read → delete chain."""

import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from apps.qa_runs.generate import (
    SCENARIO_SCHEMA,
    GeneratedScenario,
    GenerationContext,
    ScenarioGenerator,
    ScenarioInvalid,
    SpecGenerator,
    sample,
    scenario_from_dict,
)
from apps.qa_runs.models import QaPackage, Scenario
from apps.qa_runs.services import qa_run_request, scenario_store
from apps.qa_runs.spec import Spec, spec_parse
from tests.support.qa_spec import things_spec


def parse(document: dict[str, Any]) -> Spec:
    return spec_parse(json.dumps(document))


def generate_all(spec: Spec, **context: Any) -> dict[str, list[GeneratedScenario]]:
    generator: ScenarioGenerator = SpecGenerator()
    ctx = GenerationContext(operations=spec.operations, **context)
    return {op.operation_id: generator.generate(op, ctx) for op in spec.operations}


@pytest.fixture(params=["3.0.3", "3.1.0"])
def scenarios(request: pytest.FixtureRequest) -> dict[str, list[GeneratedScenario]]:
    return generate_all(parse(things_spec(request.param)))


def by_kind(found: list[GeneratedScenario], kind: str) -> list[GeneratedScenario]:
    return [s for s in found if s.kind == kind]


def test_the_valid_body_honours_enum_bounds_and_read_only(
    scenarios: dict[str, list[GeneratedScenario]],
) -> None:
    (valid,) = by_kind(scenarios["createThing"], "positive")
    (step,) = valid.steps
    assert (step.method, step.path, step.auth) == ("POST", "/things", True)
    body = step.json
    assert body["colour"] in ("red", "green")
    assert 10 <= body["size"] <= 20
    assert isinstance(body["size"], int)
    assert 3 <= len(body["name"]) <= 20
    assert 0.5 <= body["weight"] < 9.5
    assert "created" not in body  # readOnly: never sent
    assert step.expect.statuses == (201,)
    assert step.expect.schema is not None
    assert "thingId" in step.expect.schema["allOf"][1]["properties"]


def test_query_parameters_and_path_parameters_are_filled(
    scenarios: dict[str, list[GeneratedScenario]],
) -> None:
    (listing,) = by_kind(scenarios["listThings"], "positive")
    assert listing.steps[0].query == {"limit": 10}  # the default
    (reading,) = by_kind(scenarios["getThing"], "positive")
    assert reading.steps[0].path == "/things/1"  # integer, minimum 1
    assert reading.steps[0].json is None


def test_negative_variants_break_one_rule_each_and_expect_a_4xx(
    scenarios: dict[str, list[GeneratedScenario]],
) -> None:
    negatives = {s.name.split(": ", 1)[1]: s.steps[0] for s in by_kind(scenarios["createThing"], "negative")}
    assert set(negatives) == {
        "missing required field 'name'",
        "wrong type for 'name'",
        "'name' breaks maxLength",
    }
    assert "name" not in negatives["missing required field 'name'"].json
    assert negatives["wrong type for 'name'"].json["name"] == 12345
    assert len(negatives["'name' breaks maxLength"].json["name"]) == 21
    for step in negatives.values():
        assert step.expect.statuses == ("4xx",)
        assert {k: v for k, v in step.json.items() if k != "name"} == {
            "colour": "red",
            "size": 15,
            "weight": step.json["weight"],
        }
    query = {s.name.split(": ", 1)[1]: s.steps[0].query for s in by_kind(scenarios["listThings"], "negative")}
    assert query == {
        "missing required field 'limit'": {},
        "wrong type for 'limit'": {"limit": "not-a-number"},
        "'limit' breaks maximum": {"limit": 101},
    }


def test_the_unauthenticated_variant_only_where_security_is_declared(
    scenarios: dict[str, list[GeneratedScenario]],
) -> None:
    assert by_kind(scenarios["ping"], "unauthenticated") == []
    for operation in ("listThings", "createThing", "getThing", "deleteThing"):
        (anonymous,) = by_kind(scenarios[operation], "unauthenticated")
        (valid,) = by_kind(scenarios[operation], "positive")
        assert anonymous.steps[0].auth is False
        assert anonymous.steps[0].expect.statuses == (401, 403)
        assert (anonymous.steps[0].path, anonymous.steps[0].json) == (
            valid.steps[0].path,
            valid.steps[0].json,
        )


def test_create_read_delete_chain_for_a_collection_and_its_item(
    scenarios: dict[str, list[GeneratedScenario]],
) -> None:
    (chain,) = by_kind(scenarios["createThing"], "chain")
    steps = [(s.operation_id, s.method, s.path, s.expect.statuses, s.extract) for s in chain.steps]
    assert steps == [
        ("createThing", "POST", "/things", (201,), {"thingId": "$.thingId"}),
        ("getThing", "GET", "/things/{{thingId}}", (200,), {}),
        ("deleteThing", "DELETE", "/things/{{thingId}}", (204,), {}),
        ("getThing", "GET", "/things/{{thingId}}", (404, 410), {}),
    ]
    assert all(not by_kind(found, "chain") for op, found in scenarios.items() if op != "createThing")


def test_no_chain_without_a_delete_or_an_id_to_read() -> None:
    without_delete = things_spec()
    del without_delete["paths"]["/things/{thingId}"]["delete"]
    assert not by_kind(generate_all(parse(without_delete))["createThing"], "chain")
    without_id = things_spec()
    without_id["components"]["schemas"]["Thing"] = {
        "type": "object",
        "properties": {"name": {"type": "string"}},
    }
    assert not by_kind(generate_all(parse(without_id))["createThing"], "chain")


def test_the_step_limit_drops_the_check_after_delete_first() -> None:
    spec = parse(things_spec())
    (chain,) = by_kind(generate_all(spec, max_steps=3)["createThing"], "chain")
    assert [s.method for s in chain.steps] == ["POST", "GET", "DELETE"]
    assert not by_kind(generate_all(spec, max_steps=2)["createThing"], "chain")


def test_expected_status_overrides_replace_the_documented_ones() -> None:
    found = generate_all(parse(things_spec()), expected_status_overrides={"createThing": [200, 201]})
    (valid,) = by_kind(found["createThing"], "positive")
    assert valid.steps[0].expect.statuses == (200, 201)


def test_same_spec_same_scenarios() -> None:
    first = generate_all(parse(things_spec()))
    again = generate_all(spec_parse(json.dumps(things_spec(), sort_keys=True)))
    # The same scenarios in the same order; schemas copied from the spec keep its key order.
    assert json.dumps({k: [s.to_dict() for s in v] for k, v in first.items()}, sort_keys=True) == json.dumps(
        {k: [s.to_dict() for s in v] for k, v in again.items()}, sort_keys=True
    )
    assert list(first) == list(again)


def test_every_generated_scenario_matches_the_schema_and_reads_back(
    scenarios: dict[str, list[GeneratedScenario]],
) -> None:
    Draft202012Validator.check_schema(SCENARIO_SCHEMA)
    for found in scenarios.values():
        for scenario in found:
            assert scenario_from_dict(scenario.to_dict(), source="generated") == scenario


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("steps"), "'steps' is a required property"),
        (lambda d: d.update(steps=[]), "should be non-empty"),
        (lambda d: d["steps"][0].update(method="FETCH"), "'FETCH' is not one of"),
        (lambda d: d["steps"][0]["expect"].update(statuses=[700]), "700 is not valid"),
        (lambda d: d["steps"][0].update(extract={"id": "id"}), "'id' does not match"),
        (lambda d: d.update(kind="fuzz"), "'fuzz' is not one of"),
        (lambda d: d.update(extra=1), "Additional properties are not allowed"),
    ],
)
def test_a_reply_that_does_not_match_the_schema_is_refused(change: Any, message: str) -> None:
    scenario = generate_all(parse(things_spec()))["createThing"][0].to_dict()
    change(scenario)
    with pytest.raises(ScenarioInvalid, match=None) as caught:
        scenario_from_dict(scenario, source="ai")
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("schema", "check"),
    [
        ({"type": "integer", "minimum": 3, "maximum": 4}, lambda v: v in (3, 4)),
        ({"type": "integer", "exclusiveMinimum": 3, "exclusiveMaximum": 5}, lambda v: v == 4),
        ({"type": "integer", "minimum": 7, "multipleOf": 5}, lambda v: v == 10),
        ({"type": "number", "maximum": -2}, lambda v: v <= -2),
        ({"type": "string", "format": "uuid"}, lambda v: len(v) == 36),
        ({"type": "string", "minLength": 12}, lambda v: len(v) >= 12),
        ({"type": ["string", "null"], "maxLength": 2}, lambda v: isinstance(v, str) and len(v) <= 2),
        ({"type": "array", "minItems": 2, "items": {"enum": ["a"]}}, lambda v: v == ["a", "a"]),
        ({"oneOf": [{"type": "null"}, {"type": "boolean"}]}, lambda v: v is True),
        ({"type": "string", "example": "given"}, lambda v: v == "given"),
    ],
)
def test_sample_values_are_valid_for_their_schema(schema: dict[str, Any], check: Any) -> None:
    assert check(sample(schema))


@pytest.mark.django_db
def test_stored_scenarios_keep_their_steps_and_announce_themselves(package: QaPackage) -> None:
    run = qa_run_request(package=package, requested_by=None)
    found = generate_all(parse(things_spec()))["createThing"]
    for position, scenario in enumerate(found):
        scenario_store(run=run, scenario=scenario, position=position)
    rows = list(Scenario.objects.filter(run=run))
    assert [(r.name, r.kind, r.source) for r in rows] == [(s.name, s.kind, s.source) for s in found]
    assert [scenario_from_dict(_as_dict(r), source=r.source) for r in rows] == found
    assert list(run.events.values_list("type", flat=True)).count("SCENARIO_CREATED") == len(found)


def _as_dict(row: Scenario) -> dict[str, Any]:
    return {"name": row.name, "operation_id": row.operation_id, "method": row.method, "path": row.path,
            "kind": row.kind, "source": row.source, "steps": row.steps}  # fmt: skip
