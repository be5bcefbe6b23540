"""The browser modules' pure logic (static/js/chartdata.js), tested by Node's own test runner."""

import shutil
import subprocess
from pathlib import Path

import pytest

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
