"""A window in Redis left by another database (restored, reset, a previous test run) is not used,
even when it names the same limits version and sequence."""

from dataclasses import replace

from apps.calculations.window import Lines, Point, RollingWindow
from spc import PRESETS

LINES = Lines(
    version=1, kind="imr", center=10.0, sigma=1.0, dispersion_lcl=0.0, dispersion_ucl=3.686,
    subgroup_size=1, params={}, stamp="7:2026-11-23T10:00:00+00:00",
)  # fmt: skip


def test_the_same_limits_row_resumes_and_another_one_does_not():
    window = RollingWindow(LINES, PRESETS["nelson"])
    for sequence, value in enumerate([10.5, 11.2, 9.1], start=1):
        window.judge(Point(sequence, value, 1, None, None))
    document = window.to_json(3)

    resumed = RollingWindow.from_json(document, LINES, PRESETS["nelson"], 3)
    assert resumed is not None
    assert resumed.evaluator.count == 3
    assert resumed.points == window.points

    other_database = replace(LINES, stamp="7:2026-11-24T08:30:00+00:00")
    assert RollingWindow.from_json(document, other_database, PRESETS["nelson"], 3) is None
