"""Who sees the chart's acknowledge and limits controls: the roles the API lets acknowledge
(calculations.change_violation: managers, quality specialists) and change limits
(config.add_controllimits: quality specialists); every other role reads the same chart without
them. The API's own refusals are tested in tests/calculations."""

import re

import pytest

from tests.factories import UserFactory
from tests.support.pages import chart_html

pytestmark = pytest.mark.django_db


def controls(html: str) -> dict[str, bool]:
    return {
        "acknowledge button": "data-acknowledge-open" in html,
        "acknowledge dialog": "<dialog" in html and "data-ack-dialog" in html,
        "limits panel": "data-limits-panel" in html,
    }


class ChartControlsTests:
    @pytest.mark.parametrize(
        ("role", "acknowledge", "limits"),
        [
            ("quality_specialist", True, True),
            ("manager", True, False),
            ("operations_lead", False, False),
        ],
    )
    def test_each_role_sees_the_controls_the_api_allows_it(
        self, request, plant, dia, role, acknowledge, limits
    ):
        user = request.getfixturevalue(role)
        assert controls(chart_html(user, dia)) == {
            "acknowledge button": acknowledge, "acknowledge dialog": acknowledge, "limits panel": limits,
        }  # fmt: skip
        assert user.has_perm("calculations.change_violation") is acknowledge
        assert user.has_perm("config.add_controllimits") is limits

    def test_a_superuser_sees_both(self, dia):
        html = chart_html(UserFactory(is_superuser=True), dia)
        assert all(controls(html).values())

    def test_the_acknowledge_button_waits_for_a_pulse(self, dia, manager):
        html = chart_html(manager, dia)
        assert re.search(r"<button [^>]*data-acknowledge-open disabled>Acknowledge…</button>", html)
        assert "press Enter on it, to acknowledge" in html

    def test_the_dialog_asks_for_a_reason_comment_and_corrective_action(self, dia, manager):
        html = chart_html(manager, dia)
        dialog = re.search(r"<dialog [^>]*>(.*?)</dialog>", html, re.S)
        assert dialog is not None
        body = dialog.group(1)
        assert re.findall(r'<label for="(ack-[a-z]+)">', body) == ["ack-reason", "ack-comment", "ack-action"]
        assert re.search(r'<select id="ack-reason" name="reason" required', body)
        assert 'role="alert" hidden' in body  # errors are read out when they appear

    def test_the_limits_panel_needs_a_reason_and_previews_before_confirming(self, dia, quality_specialist):
        html = chart_html(quality_specialist, dia)
        panel = re.search(r"<section class=\"limits-panel\".*?</section>", html, re.S)
        assert panel is not None
        body = panel.group(0)
        assert re.search(r'<textarea id="limits-reason" name="reason"[^>]*required', body)
        assert re.findall(r'name="baseline" value="(\w+)"', body) == ["count", "range"]
        assert re.search(r'id="limits-exclude" name="exclude_out_of_control" checked', body)
        # Confirm lives in the result, hidden until a preview is shown.
        result = r'<div class="limits-result" data-limits-result hidden>.*data-limits-confirm'
        assert re.search(result, body, re.S)
        assert '<link rel="stylesheet" href="/static/css/chartops.css">' in html
