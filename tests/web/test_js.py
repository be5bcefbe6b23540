"""The browser modules' pure logic (static/js/chartdata.js), tested by Node's own test runner."""

import shutil
import subprocess
from pathlib import Path

import pytest

JS_TESTS = Path(__file__).parent / "js"


class JavaScriptTests:
    @pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
    def test_node_test_runner_passes(self):
        done = subprocess.run(
            ["node", "--test", str(JS_TESTS)], capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
        assert "# fail 0" in done.stdout
