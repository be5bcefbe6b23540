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
from tests.support.pages import chart_html

JS_TESTS = Path(__file__).parent / "js"
ROOT = Path(__file__).resolve().parents[2]
STATIC_JS = ROOT / "static" / "js"
PAGE_TEMPLATES = ROOT / "templates" / "web"
PAGE_SCRIPT = re.compile(r"<script type=\"module\" src=\"\{% static 'js/([^']+)\.js' %\}\"")
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


class NamingTests:
    """docs/development.md, "A page": templates/web/<page>.html loads static/js/<page>.js; its pure
    logic is static/js/<page>.logic.js, tested in tests/web/js/<page>.logic.test.mjs."""

    def test_a_page_loads_the_module_named_as_its_template(self):
        pages = [t for t in sorted(PAGE_TEMPLATES.glob("*.html")) if "{% extends" in t.read_text()]
        assert pages
        for template in pages:
            for module in PAGE_SCRIPT.findall(template.read_text()):
                assert module == template.stem, f"{template.name} loads js/{module}.js"

    def test_every_logic_module_has_its_page_and_its_node_tests(self):
        logic = sorted(STATIC_JS.glob("*.logic.js"))
        assert logic
        for module in logic:
            page = module.name.removesuffix(".logic.js")
            assert (STATIC_JS / f"{page}.js").exists(), f"{module.name} has no {page}.js"
            assert (PAGE_TEMPLATES / f"{page}.html").exists(), f"{module.name} has no page {page}.html"
            assert (JS_TESTS / f"{page}.logic.test.mjs").exists(), f"{module.name} has no Node tests"

    def test_every_node_test_is_named_for_a_module(self):
        for test in sorted(JS_TESTS.glob("*.mjs")):
            assert test.name.endswith(".test.mjs"), test.name
            assert (STATIC_JS / f"{test.name.removesuffix('.test.mjs')}.js").exists(), test.name


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
