"""No test module imports another test module.

A test module is a `test_*.py` or a `conftest.py`. Importing one from another runs its module-level
code twice under two names, registers its fixtures where pytest did not put them, and ties a test to
another test's file: what tests share lives in tests/support/ (or tests/factories.py and the other
helper modules) and shared fixtures are registered once, in tests/conftest.py.
"""

import ast
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parents[1]
BASE_DIR = TESTS_DIR.parent


def is_test_module(path: Path) -> bool:
    return path.suffix == ".py" and (path.name == "conftest.py" or path.name.startswith("test_"))


def module_path(dotted: str) -> Path | None:
    """The file of a module or package named `tests.…`, or None outside tests/ or when missing."""
    if dotted != "tests" and not dotted.startswith("tests."):
        return None
    base = BASE_DIR.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def package_of(path: Path) -> str:
    return ".".join(path.relative_to(BASE_DIR).with_suffix("").parts[:-1])


def imported_test_modules(source: str, *, path: Path) -> list[tuple[int, str]]:
    """(line, module) of each test module that `source` (the text of `path`) imports or lists in
    pytest_plugins."""
    found = []
    for node in ast.walk(ast.parse(source, filename=str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                parent = package_of(path).split(".")
                parent = parent[: len(parent) - (node.level - 1)]
                module = ".".join([*parent, module] if module else parent)
            # `from tests.x import test_y` imports the module tests.x.test_y.
            targets = [module, *(f"{module}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "pytest_plugins" for target in node.targets
        ):
            targets = [
                c.value
                for c in ast.walk(node.value)
                if isinstance(c, ast.Constant) and isinstance(c.value, str)
            ]
        for target in targets:
            file = module_path(target)
            if file is not None and is_test_module(file) and file != path:
                found.append((node.lineno, target))
    return found


def test_no_test_module_imports_another_test_module() -> None:
    offenders = [
        f"{path.relative_to(BASE_DIR)}:{line} imports {module}"
        for path in sorted(TESTS_DIR.rglob("*.py"))
        if is_test_module(path)
        for line, module in imported_test_modules(path.read_text(), path=path)
    ]
    assert offenders == [], "move what they share to tests/support/:\n" + "\n".join(offenders)


def test_the_check_sees_each_form_of_import() -> None:
    """Each form a test module could import another with is found; helper modules are not."""
    source = (
        "import tests.web.test_pages\n"
        "from tests.project.test_settings import load_settings\n"
        "from tests.project import test_settings\n"
        "from .test_settings import GOOD_KEY\n"
        "from tests.web.conftest import dia\n"
        "from tests.support.plant import Plant\n"
        "from tests.factories import UserFactory\n"
        'pytest_plugins = ["tests.qa_runs.conftest"]\n'
    )
    found = imported_test_modules(source, path=TESTS_DIR / "project" / "test_probe.py")
    assert found == [
        (1, "tests.web.test_pages"),
        (2, "tests.project.test_settings"),
        (3, "tests.project.test_settings"),
        (4, "tests.project.test_settings"),
        (5, "tests.web.conftest"),
        (8, "tests.qa_runs.conftest"),
    ]
