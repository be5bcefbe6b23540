"""evaluation_compute on stored results (totals, coverage, each verdict), and the JUnit XML and HTML
written from them."""

import json
from xml.etree import ElementTree as ET

import pytest

from apps.qa_runs.choices import RunStatus, ScenarioKind, ScenarioSource, Verdict
from apps.qa_runs.evaluate import evaluation_compute, html_report, junit_xml
from apps.qa_runs.generate import Expect, GeneratedScenario, Step
from apps.qa_runs.models import QaPackage, QaPackageRun, Scenario
from apps.qa_runs.services import qa_run_request, qa_run_transition, scenario_store, step_result_record
from apps.qa_runs.spec import Operation, Response, spec_parse
from tests.support.qa_spec import things_spec

OPERATIONS = spec_parse(
    json.dumps(things_spec())
).operations  # ping, listThings, createThing, getThing, deleteThing


def add(
    run: QaPackageRun,
    operation_id: str,
    *results: tuple[int | None, str],
    kind: str = ScenarioKind.POSITIVE,
    name: str = "",
) -> Scenario:
    """A scenario with one step result per (status, outcome of its one check); outcome "" leaves
    the scenario unexecuted. A None status is a step without an answer."""
    position = Scenario.objects.filter(run=run).count()
    generated = GeneratedScenario(
        name=name or f"{operation_id} #{position}",
        operation_id=operation_id,
        method="GET",
        path="/x",
        kind=kind,
        source=ScenarioSource.GENERATED,
        steps=tuple(Step("GET", "/x", Expect((200,)), operation_id=operation_id) for _ in results),
    )
    row = scenario_store(run=run, scenario=generated, position=position)
    if not results or results[0][1] == "":
        return row
    for index, (status, outcome) in enumerate(results, start=1):
        check = {"name": "expected_status" if status else "response", "outcome": outcome, "message": "m"}
        step_result_record(
            scenario=row,
            index=index,
            request={"method": "GET", "url": "http://t/x", "headers": {}, "body": ""},
            response_status=status,
            response_headers={},
            response_body="",
            duration_ms=5,
            checks=[check],
            passed=status is not None and outcome != "fail",
            curl="curl -X GET http://t/x",
            error="" if status else "timeout: no complete answer within 1 s",
        )
    row.passed = all(status is not None and outcome != "fail" for status, outcome in results)
    row.save(update_fields=["passed"])
    return row


@pytest.fixture
def run(package: QaPackage) -> QaPackageRun:
    return qa_run_request(package=package, requested_by=None)


def cover_all(run: QaPackageRun) -> None:
    for operation in OPERATIONS:
        add(run, operation.operation_id, (200, "pass"))


@pytest.mark.django_db
def test_all_passed_and_every_operation_covered_is_a_pass(run: QaPackageRun) -> None:
    cover_all(run)
    evaluation = evaluation_compute(run=run, operations=OPERATIONS)
    assert evaluation.verdict == Verdict.PASS
    assert evaluation.run_fields() == {
        "operations_total": 5,
        "operations_covered": 5,
        "scenarios_total": 5,
        "scenarios_passed": 5,
        "scenarios_failed": 0,
        "scenarios_skipped": 0,
        "steps_total": 5,
        "steps_failed": 0,
        "verdict": "PASS",
    }


@pytest.mark.django_db
@pytest.mark.parametrize("why", ["a warning", "an operation without a scenario", "a scenario not executed"])
def test_what_makes_a_pass_a_pass_with_warnings(run: QaPackageRun, why: str) -> None:
    cover_all(run)
    if why == "a warning":
        add(run, "ping", (200, "warn"))
    elif why == "an operation without a scenario":
        Scenario.objects.filter(run=run, operation_id="deleteThing").delete()
    else:
        add(run, "ping", (None, ""))
    evaluation = evaluation_compute(run=run, operations=OPERATIONS)
    assert evaluation.verdict == Verdict.PASS_WITH_WARNINGS
    assert evaluation.scenarios_failed == 0


@pytest.mark.django_db
def test_a_failed_check_or_a_step_without_answer_fails_the_run(run: QaPackageRun) -> None:
    cover_all(run)
    add(run, "getThing", (200, "pass"), (None, "fail"))
    evaluation = evaluation_compute(run=run, operations=OPERATIONS)
    assert evaluation.verdict == Verdict.FAIL
    assert (evaluation.scenarios_failed, evaluation.steps_total, evaluation.steps_failed) == (1, 7, 1)
    assert evaluation.failures == ("getThing #5 › step 2 (getThing) response: m",)


@pytest.mark.django_db
def test_no_answer_at_all_is_an_error_not_a_failure(run: QaPackageRun) -> None:
    for operation in OPERATIONS:
        add(run, operation.operation_id, (None, "fail"))
    evaluation = evaluation_compute(run=run, operations=OPERATIONS)
    assert evaluation.verdict == Verdict.ERROR
    assert evaluation.operations_covered == 0


@pytest.mark.django_db
def test_nothing_executed_is_an_error(run: QaPackageRun) -> None:
    add(run, "ping", (None, ""))
    assert evaluation_compute(run=run, operations=OPERATIONS).verdict == Verdict.ERROR


@pytest.mark.django_db
def test_status_coverage_counts_documented_codes_and_classes_seen(run: QaPackageRun) -> None:
    op = Operation(
        operation_id="getThing",
        method="GET",
        path="/things/{id}",
        summary="",
        parameters=(),
        request_body=None,
        responses={
            "200": Response("200", "", None, None),
            "404": Response("404", "", None, None),
            "4XX": Response("4XX", "", None, None),
            "default": Response("default", "", None, None),
        },
        security=(),
    )
    add(run, "getThing", (200, "pass"), (422, "pass"))
    evaluation = evaluation_compute(run=run, operations=[op])
    (result,) = evaluation.operations
    assert result.documented == ("200", "404", "4XX")
    assert result.covered == ("200", "4XX")
    assert result.uncovered == ("404",)
    assert result.observed == (200, 422)
    assert (evaluation.statuses_documented, evaluation.statuses_covered) == (3, 2)
    assert evaluation.summary()["statuses_covered"] == 2


@pytest.mark.django_db
def test_the_run_fields_are_what_the_run_row_takes(run: QaPackageRun) -> None:
    cover_all(run)
    add(run, "getThing", (500, "fail"))
    evaluation = evaluation_compute(run=run, operations=OPERATIONS)
    for status in (RunStatus.SPEC_FETCHED, RunStatus.SCENARIOS_CREATED, RunStatus.EXECUTING):
        run = qa_run_transition(run=run, to=status)
    run = qa_run_transition(
        run=run, to=RunStatus.EVALUATED, payload=evaluation.summary(), **evaluation.run_fields()
    )
    assert (run.verdict, run.scenarios_failed, run.operations_covered, run.coverage) == ("FAIL", 1, 5, 1.0)
    assert run.events.get(type="QA_EVAL_DONE").payload["failures"] == [
        "getThing #5 › step 1 (getThing) expected_status: m"
    ]


# --- JUnit XML ---------------------------------------------------------------------------------------


def _parse(xml: str) -> ET.Element:
    assert xml.startswith("<?xml version='1.0' encoding='utf-8'?>")
    return ET.fromstring(xml.split("?>", 1)[1])


@pytest.mark.django_db
def test_junit_has_one_suite_per_run_and_one_case_per_scenario(run: QaPackageRun) -> None:
    add(run, "ping", (200, "pass"), name="ping: valid")
    add(run, "getThing", (200, "pass"), (404, "fail"), name="getThing: chain")
    add(run, "listThings", (None, "fail"), name="listThings: times out")
    add(run, "deleteThing", (None, ""), name="deleteThing: never run")
    root = _parse(junit_xml(run=run))
    assert root.tag == "testsuites"
    (suite,) = root
    assert suite.tag == "testsuite"
    assert {k: suite.get(k) for k in ("name", "tests", "failures", "errors", "skipped")} == {
        "name": "things",
        "tests": "4",
        "failures": "1",
        "errors": "1",
        "skipped": "1",
    }
    assert suite.get("id") == str(run.plan_id)
    assert float(suite.get("time") or "x") == pytest.approx(0.02)
    properties = {p.get("name"): p.get("value") for p in suite.findall("properties/property")}
    assert properties["plan_id"] == str(run.plan_id)
    cases = suite.findall("testcase")
    assert [(c.get("name"), c.get("classname")) for c in cases] == [
        ("ping: valid", "things.ping"),
        ("getThing: chain", "things.getThing"),
        ("listThings: times out", "things.listThings"),
        ("deleteThing: never run", "things.deleteThing"),
    ]
    assert [[child.tag for child in case] for case in cases] == [[], ["failure"], ["error"], ["skipped"]]
    failure = cases[1].find("failure")
    assert failure is not None
    assert failure.get("message") == "expected_status: m"
    assert "step 2 expected_status: m" in (failure.text or "")
    assert "reproduce: curl -X GET http://t/x" in (failure.text or "")


@pytest.mark.django_db
def test_junit_survives_characters_xml_cannot_carry(run: QaPackageRun) -> None:
    row = add(run, "ping", (200, "fail"), name="ping \x01\x1b[31m bell\x07 <&>")
    result = row.step_results.get()
    result.checks = [{"name": "schema", "outcome": "fail", "message": "got \x0b and \x1f"}]
    result.save()
    root = _parse(junit_xml(run=run))
    case = root.find("testsuite/testcase")
    assert case is not None
    assert case.get("name") == "ping \ufffd\ufffd[31m bell\ufffd <&>"


# --- HTML ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_html_report_groups_by_operation_and_escapes_what_the_target_sent(run: QaPackageRun) -> None:
    cover_all(run)
    row = add(run, "getThing", (500, "fail"), name="getThing: <b>valid</b>")
    result = row.step_results.get()
    result.response_body = "<script>alert(1)</script>"
    result.checks = [{"name": "no_server_error", "outcome": "fail", "message": "answered 500"}]
    result.curl = "curl -sS -i -X GET 'http://t/things/1?a=1&b=2'"
    result.save()
    page = html_report(run=run)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "getThing: &lt;b&gt;valid&lt;/b&gt;" in page
    assert "no_server_error: answered 500" in page
    assert "curl -sS -i -X GET &#x27;http://t/things/1?a=1&amp;b=2&#x27;" in page
    # One row per operation in the overview, with its counts.
    assert page.count('<tr id="op-') == 5
    assert '<code>GET /x</code></td>\n        <td class="num ok">1</td><td class="num bad">1</td>' in page
    assert "src=" not in page  # standalone: nothing loaded from elsewhere
    assert 'href="http' not in page
