"""The browser modules' pure logic (static/js/*.logic.js, format.js), tested by Node's own test
runner, and the data the server renders for them instead of a JS copy."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.contrib.auth.models import AbstractBaseUser
from django.test import Client
from django.urls import reverse

from apps.config.models import Characteristic
from apps.web.filters import RULE_NAMES
from tests.web.conftest import chart_html

JS_TESTS = Path(__file__).parent / "js"
STATIC_JS = Path(__file__).resolve().parents[2] / "static" / "js"
NO_NODE = pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")


class JavaScriptTests:
    @NO_NODE
    def test_node_test_runner_passes(self):
        done = subprocess.run(
            ["node", "--test", str(JS_TESTS)], capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
        assert "# fail 0" in done.stdout

    @NO_NODE
    def test_every_browser_module_parses(self):
        """A syntax error in a module the tests do not import (chart.js) still fails here."""
        modules = sorted(STATIC_JS.glob("*.js"))
        assert modules
        for module in modules:
            done = subprocess.run(
                ["node", "--input-type=module", "--check"],
                input=module.read_text(), capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            assert done.returncode == 0, f"{module.name}: {done.stderr[-2000:]}"


def rendered_rule_names(html: str) -> dict[str, str]:
    block = re.search(r'<script id="rule-names" type="application/json">(.*?)</script>', html)
    assert block is not None, "the page has no rule-names block"
    names: dict[str, str] = json.loads(block.group(1))
    return names


@pytest.mark.django_db
class RuleNamesTests:
    """The Nelson rules' names are written once (apps/web/filters.py) and put into the pages."""

    def test_the_chart_page_carries_every_rule_name(
        self, dia: Characteristic, operations_lead: AbstractBaseUser
    ):
        names = rendered_rule_names(chart_html(operations_lead, dia))
        assert names == {str(rule): name for rule, name in RULE_NAMES.items()}
        assert names["1"] == "a point beyond the control limits"

    def test_the_violations_page_carries_every_rule_name(self, operations_lead: AbstractBaseUser):
        client = Client()
        client.force_login(operations_lead)
        response = client.get(reverse("web-violations"))
        assert response.status_code == 200
        names = rendered_rule_names(response.content.decode())
        assert names == {str(rule): name for rule, name in RULE_NAMES.items()}

    def test_no_browser_module_keeps_its_own_copy(self):
        for module in sorted(STATIC_JS.glob("*.js")):
            text = module.read_text()
            for name in RULE_NAMES.values():
                assert name not in text, f"{module.name} writes the rule name {name!r} again"
