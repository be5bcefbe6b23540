"""QA package runs' rows: packages (what to test and how), runs with their events, scenarios and
step results."""

from apps.qa_runs.models.packages import QaPackage
from apps.qa_runs.models.runs import QaEvent, QaPackageRun
from apps.qa_runs.models.scenarios import Scenario, StepResult

__all__ = ["QaEvent", "QaPackage", "QaPackageRun", "Scenario", "StepResult"]
