"""The engine stays a pure numpy package: no Django, no scipy, small modules."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import spc as spc

from .reference import repo_root

PACKAGE = Path(spc.__file__).resolve().parent


def test_importing_the_package_loads_no_django_or_scipy() -> None:
    code = (
        "import sys, spc\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'scipy'))\n"
        "assert not bad, bad\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], cwd=repo_root(),
                               capture_output=True, text=True, check=False)  # fmt: skip
    assert completed.returncode == 0, completed.stderr


def test_modules_import_only_numpy_and_the_standard_library() -> None:
    allowed = {"numpy", "__future__", *sys.stdlib_module_names}
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"


def test_modules_stay_short() -> None:
    for path in PACKAGE.glob("*.py"):
        assert len(path.read_text(encoding="utf-8").splitlines()) < 600, path.name


def test_public_api_is_exported() -> None:
    for name in spc.__all__:
        assert hasattr(spc, name), name
