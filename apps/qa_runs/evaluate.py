"""Evaluation of an executed run: totals, coverage (operations, documented status codes), the
verdict, and the run written out as JUnit XML (for CI dashboards) and as a readable HTML report.

Everything here is read from the database (the run's scenarios and step results), so the reports
can be made again at any time after the run, by any process.

Verdict, first that applies:
- ERROR: nothing could judge the target: no scenario executed, or no step got any answer;
- FAIL: a scenario failed (a failed check, a timeout, a refused or dropped request);
- PASS_WITH_WARNINGS: all passed, but a check warned (an undocumented status), an operation of the
  spec had no scenario executed (among them those whose scenarios were all skipped), or scenarios
  were left unexecuted (cancelled, run time out);
- PASS.

A skipped scenario (Scenario.skipped_reason: a step the package does not allow, safety.py) is
neither passed nor failed: it counts in scenarios_skipped only, never in the steps or failures, so a
read-only run's verdict says what was tested, and its coverage what was not.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.template.loader import render_to_string
from django.utils import timezone

from apps.qa_runs.checks import FAIL, RESPONSE, WARN
from apps.qa_runs.choices import Verdict
from apps.qa_runs.models import QaPackageRun, Scenario, StepResult
from apps.qa_runs.spec import Operation

# Characters XML 1.0 cannot carry at all (a target's body may contain them): replaced, or the
# report would not parse.
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_MESSAGE_LIMIT = 500


@dataclass(frozen=True)
class OperationResult:
    """One operation of the spec: the scenarios that started from it, and the statuses seen against
    the ones it documents (numeric codes and classes like 4XX; `default` documents nothing)."""

    operation_id: str
    method: str
    path: str
    scenarios: int
    passed: int
    failed: int
    skipped: int
    executed: bool
    documented: tuple[str, ...]
    covered: tuple[str, ...]
    observed: tuple[int, ...]

    @property
    def uncovered(self) -> tuple[str, ...]:
        return tuple(status for status in self.documented if status not in self.covered)


@dataclass(frozen=True)
class Evaluation:
    """What a run found. run_fields() is what the QaPackageRun row keeps; summary() the event's."""

    scenarios_total: int
    scenarios_executed: int
    scenarios_passed: int
    scenarios_failed: int
    scenarios_skipped: int
    steps_total: int
    steps_failed: int
    steps_answered: int
    warnings: int
    operations: tuple[OperationResult, ...]
    verdict: str
    failures: tuple[str, ...] = field(default=())

    @property
    def operations_total(self) -> int:
        return len(self.operations)

    @property
    def operations_covered(self) -> int:
        return sum(1 for op in self.operations if op.executed)

    @property
    def statuses_documented(self) -> int:
        return sum(len(op.documented) for op in self.operations)

    @property
    def statuses_covered(self) -> int:
        return sum(len(op.covered) for op in self.operations)

    def run_fields(self) -> dict[str, Any]:
        return {
            "operations_total": self.operations_total,
            "operations_covered": self.operations_covered,
            "scenarios_total": self.scenarios_total,
            "scenarios_passed": self.scenarios_passed,
            "scenarios_failed": self.scenarios_failed,
            "scenarios_skipped": self.scenarios_skipped,
            "steps_total": self.steps_total,
            "steps_failed": self.steps_failed,
            "verdict": self.verdict,
        }

    def summary(self) -> dict[str, Any]:
        """The QA_EVAL_DONE event's payload: the run fields, status coverage and what was missed."""
        return {
            **self.run_fields(),
            "scenarios_executed": self.scenarios_executed,
            "warnings": self.warnings,
            "statuses_documented": self.statuses_documented,
            "statuses_covered": self.statuses_covered,
            "operations_not_covered": [op.operation_id for op in self.operations if not op.executed],
            "operations_skipped": [
                op.operation_id for op in self.operations if op.skipped and op.skipped == op.scenarios
            ],
            "failures": list(self.failures[:20]),
        }


def _step_operation(scenario: Scenario, result: StepResult) -> str:
    steps = scenario.steps or []
    if 1 <= result.index <= len(steps) and isinstance(steps[result.index - 1], dict):
        return str(steps[result.index - 1].get("operation_id") or scenario.operation_id)
    return scenario.operation_id


def _covered(documented: Iterable[str], observed: Iterable[int]) -> tuple[str, ...]:
    seen = set(observed)
    return tuple(
        status
        for status in documented
        if any(str(code) == status or f"{code // 100}XX" == status.upper() for code in seen)
    )


def _failed_checks(result: StepResult) -> list[dict[str, str]]:
    return [check for check in result.checks or [] if check.get("outcome") == FAIL]


def _scenarios(run: QaPackageRun) -> list[Scenario]:
    return list(Scenario.objects.filter(run=run).order_by("position").prefetch_related("step_results"))


def _verdict(executed: int, answered: int, failed: int, warnings: int, incomplete: bool) -> str:
    if executed == 0 or answered == 0:
        return Verdict.ERROR
    if failed:
        return Verdict.FAIL
    if warnings or incomplete:
        return Verdict.PASS_WITH_WARNINGS
    return Verdict.PASS


def evaluation_compute(*, run: QaPackageRun, operations: Sequence[Operation]) -> Evaluation:
    """The run's evaluation from its stored scenarios and step results, against the spec's
    operations (for coverage). Operations that only appear in scenarios (an AI's invention) count
    for the totals, not the coverage."""
    scenarios = _scenarios(run)
    observed: dict[str, set[int]] = defaultdict(set)
    reached: set[str] = set()
    per_operation: dict[str, list[Scenario]] = defaultdict(list)
    steps_total = steps_failed = answered = warnings = 0
    failures: list[str] = []
    for scenario in scenarios:
        per_operation[scenario.operation_id].append(scenario)
        if scenario.skipped_reason:
            continue  # neither passed nor failed: what it sent before it was stopped judges nothing
        for result in scenario.step_results.all():
            operation_id = _step_operation(scenario, result)
            steps_total += 1
            steps_failed += not result.passed
            warnings += sum(1 for check in result.checks or [] if check.get("outcome") == WARN)
            failures += [
                f"{scenario.name} › step {result.index} ({operation_id}) {check['name']}: {check['message']}"
                for check in _failed_checks(result)
            ]
            if result.response_status is not None:
                answered += 1
                reached.add(operation_id)
                observed[operation_id].add(result.response_status)
    results = []
    for operation in operations:
        own = per_operation.get(operation.operation_id, [])
        documented = tuple(sorted(s.upper() for s in operation.responses if s != "default"))
        results.append(
            OperationResult(
                operation_id=operation.operation_id,
                method=operation.method,
                path=operation.path,
                scenarios=len(own),
                passed=sum(1 for s in own if s.passed is True),
                failed=sum(1 for s in own if s.passed is False),
                skipped=sum(1 for s in own if s.skipped_reason),
                executed=operation.operation_id in reached,
                documented=documented,
                covered=_covered(documented, observed.get(operation.operation_id, ())),
                observed=tuple(sorted(observed.get(operation.operation_id, ()))),
            )
        )
    executed = sum(1 for s in scenarios if s.passed is not None)
    failed = sum(1 for s in scenarios if s.passed is False)
    skipped = sum(1 for s in scenarios if s.skipped_reason)
    incomplete = executed + skipped < len(scenarios) or any(not op.executed for op in results)
    return Evaluation(
        scenarios_total=len(scenarios),
        scenarios_executed=executed,
        scenarios_passed=sum(1 for s in scenarios if s.passed is True),
        scenarios_failed=failed,
        scenarios_skipped=skipped,
        steps_total=steps_total,
        steps_failed=steps_failed,
        steps_answered=answered,
        warnings=warnings,
        operations=tuple(results),
        verdict=_verdict(executed, answered, failed, warnings, incomplete),
        failures=tuple(failures),
    )


# --- JUnit XML ---------------------------------------------------------------------------------------


def _xml_text(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _seconds(milliseconds: int) -> str:
    return f"{milliseconds / 1000:.3f}"


def _case(scenario: Scenario, classname: str) -> tuple[ET.Element, str]:
    """A testcase for a scenario, and what it counts as: passed, failure, error or skipped."""
    results = list(scenario.step_results.all())
    case = ET.Element(
        "testcase",
        name=_xml_text(scenario.name),
        classname=_xml_text(f"{classname}.{scenario.operation_id}"),
        time=_seconds(sum(r.duration_ms for r in results)),
    )
    if scenario.passed is None:
        reason = scenario.skipped_reason or "not executed (run cancelled or out of time)"
        ET.SubElement(case, "skipped", message=_xml_text(reason[:_MESSAGE_LIMIT]))
        return case, "skipped"
    if scenario.passed:
        return case, "passed"
    lines: list[str] = []
    found: list[dict[str, str]] = []
    for result in results:
        failed = _failed_checks(result)
        found += failed
        lines += [f"step {result.index} {check['name']}: {check['message']}" for check in failed]
        if failed or result.error:
            if result.error and not failed:
                lines.append(f"step {result.index}: {result.error}")
            lines.append(f"  reproduce: {result.curl}")
    # A failure is a wrong answer; an error is no answer at all (timeout, refused, dropped).
    answered = [check for check in found if check["name"] != RESPONSE]
    kind = "failure" if answered or not found else "error"
    first = (answered or found or [{"name": "scenario", "message": "failed"}])[0]
    message = f"{first['name']}: {first['message']}"[:_MESSAGE_LIMIT]
    element = ET.SubElement(case, kind, message=_xml_text(message), type=_xml_text(first["name"]))
    element.text = _xml_text("\n".join(lines))
    return case, kind


def junit_xml(*, run: QaPackageRun) -> str:
    """The run as JUnit XML: <testsuites> holding one <testsuite> for the run, one <testcase> per
    scenario (classname: package.operation), a <failure> for wrong answers, an <error> for no
    answer, <skipped> for scenarios not executed; failure texts carry each step's curl line."""
    package = run.package
    scenarios = _scenarios(run)
    cases = [_case(scenario, package.name) for scenario in scenarios]
    counts = {kind: sum(1 for _, k in cases if k == kind) for kind in ("failure", "error", "skipped")}
    total_ms = sum(r.duration_ms for s in scenarios for r in s.step_results.all())
    stamp = run.started_at or run.requested_at or timezone.now()
    attributes = {
        "tests": str(len(cases)),
        "failures": str(counts["failure"]),
        "errors": str(counts["error"]),
        "skipped": str(counts["skipped"]),
        "time": _seconds(total_ms),
    }
    root = ET.Element("testsuites", {"name": _xml_text(f"QA run {run.plan_id}"), **attributes})
    suite = ET.SubElement(
        root,
        "testsuite",
        {
            "name": _xml_text(package.name),
            "id": str(run.plan_id),
            "timestamp": stamp.replace(microsecond=0).isoformat(),
            "hostname": _xml_text(package.target_base_url),
            **attributes,
        },
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("plan_id", str(run.plan_id)),
        ("target", package.target_base_url),
        ("verdict", run.verdict or ""),
        ("spec_sha256", run.spec_hash),
        ("operations_covered", f"{run.operations_covered}/{run.operations_total}"),
    ):
        ET.SubElement(properties, "property", name=name, value=_xml_text(value))
    for case, _ in cases:
        suite.append(case)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


# --- HTML ----------------------------------------------------------------------------------------------


def _group(scenarios: Sequence[Scenario]) -> list[dict[str, Any]]:
    """Scenarios by the operation they start from, in order of first appearance, with counts."""
    groups: dict[str, dict[str, Any]] = {}
    for scenario in scenarios:
        group = groups.setdefault(
            scenario.operation_id,
            {
                "operation_id": scenario.operation_id,
                "method": scenario.method,
                "path": scenario.path,
                "scenarios": [],
                "passed": 0,
                "failed": 0,
                "skipped": 0,
            },
        )
        results = list(scenario.step_results.all())
        group["scenarios"].append(
            {
                "scenario": scenario,
                "steps": [{"result": r, "failed": _failed_checks(r), "warned": _warned(r)} for r in results],
            }
        )
        key = {True: "passed", False: "failed", None: "skipped"}[scenario.passed]
        group[key] += 1
    return list(groups.values())


def _warned(result: StepResult) -> list[dict[str, str]]:
    return [check for check in result.checks or [] if check.get("outcome") == WARN]


def html_report(*, run: QaPackageRun) -> str:
    """A standalone HTML page (no external assets: it is downloaded and mailed around) with the
    verdict, totals, coverage, per-operation outcomes and every failure with its curl reproducer."""
    scenarios = _scenarios(run)
    coverage = run.coverage
    return render_to_string(
        "qa_runs/report.html",
        {
            "run": run,
            "package": run.package,
            "coverage_percent": None if coverage is None else round(coverage * 100),
            "operations": _group(scenarios),
            "generated_at": timezone.now(),
        },
    )
