"""The dependency rule of docs/architecture.md, checked on the source: no import from a lower layer
to a higher one, no cycle between apps, and the SPC engine imports no Django, no app, no openspc.

The graph is built with `ast` from every `import` and `from … import` of every module under
apps/*, openspc/ and spc/, at any depth (inside functions too) and in migrations too. Imports
under `if TYPE_CHECKING:` count as well: a type-only import still makes the lower layer know the
higher one's names, and hiding an import from the interpreter is the usual way a cycle is
papered over, which is what this test is for. Strings do not count: a task queued by name
(`send_task("calculations.apply")`) or a channel-layer event is the way up.
"""

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Lowest first; an import may only point to a strictly lower layer (or stay inside its own node).
# openspc and spc share the bottom layer, so neither imports the other. audit sits below config, and
# signatures between them (config signs control limits and plan releases):
# every app records its changes through apps.audit.services, and audit asks openspc (roles,
# permissions) who may read the trail.
LAYERS: dict[str, int] = {
    "openspc": 0,
    "spc": 0,
    "apps.audit": 1,
    "apps.signatures": 2,
    "apps.config": 3,
    "apps.observations": 4,
    "apps.calculations": 5,
    "apps.subscriptions": 6,
    "apps.records": 6,
    "apps.mqtt_bridge": 7,
    "apps.qa_runs": 7,
    "apps.web": 8,
}

# The composition root: these modules wire every app into one project (URLs, WebSocket routes,
# the ASGI application), so they import the apps by design. Nothing else in openspc/ may.
WIRING = {"openspc.urls", "openspc.routing", "openspc.asgi"}

# What the pure engine may not import (besides any app and openspc).
FRAMEWORKS = {"django", "rest_framework", "channels", "celery", "daphne"}


def module_name(root: Path, path: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(module: str, is_package: bool, tree: ast.AST) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every import statement anywhere in the tree, relative ones
    resolved against `module`."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield target, node.lineno
            # `from apps import config` names a package, not an attribute.
            for alias in node.names:
                yield f"{target}.{alias.name}", node.lineno


def node_of(module: str) -> str | None:
    """The layer node a module belongs to: "apps.<app>", "openspc", "spc", or None (outside)."""
    parts = module.split(".")
    if parts[0] == "apps":
        return ".".join(parts[:2]) if len(parts) > 1 else None
    if parts[0] in ("openspc", "spc"):
        return parts[0]
    return None


def import_graph(root: Path) -> tuple[list[tuple[str, str, str, int]], dict[str, set[str]]]:
    """(edges, externals): edges are (from node, to node, from module, line) between different
    nodes; externals maps each node to the top-level names of what it imports from outside."""
    edges: list[tuple[str, str, str, int]] = []
    externals: dict[str, set[str]] = {}
    files = [
        *(root / "apps").glob("*/**/*.py"),
        *(root / "openspc").rglob("*.py"),
        *(root / "spc").rglob("*.py"),
    ]
    for path in sorted(files):
        module = module_name(root, path)
        source = node_of(module)
        if source is None:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for target, line in imported(module, path.name == "__init__.py", tree):
            destination = node_of(target)
            if destination is None:
                if target and target.split(".")[0] != "apps":
                    externals.setdefault(source, set()).add(target.split(".")[0])
            elif destination != source:
                edges.append((source, destination, module, line))
    return edges, externals


def upward_arrows(edges: list[tuple[str, str, str, int]]) -> list[str]:
    bad = []
    for source, destination, module, line in edges:
        if module in WIRING:
            continue
        assert source in LAYERS, f"{source} has no layer in LAYERS"
        assert destination in LAYERS, f"{destination} has no layer in LAYERS"
        if LAYERS[destination] >= LAYERS[source]:
            bad.append(
                f"{module}:{line} imports {destination} (layer {LAYERS[destination]} >= {LAYERS[source]})"
            )
    return sorted(set(bad))


def app_cycles(edges: list[tuple[str, str, str, int]]) -> list[list[str]]:
    """Every cycle of the graph between apps (each reported once, from its smallest node)."""
    graph: dict[str, set[str]] = {}
    for source, destination, _module, _line in edges:
        if source.startswith("apps.") and destination.startswith("apps."):
            graph.setdefault(source, set()).add(destination)
    cycles = []

    def walk(start: str, node: str, path: list[str]) -> None:
        for following in sorted(graph.get(node, ())):
            if following == start:
                cycles.append([*path, start])
            elif following > start and following not in path:
                walk(start, following, [*path, following])

    for start in sorted(graph):
        walk(start, start, [start])
    return cycles


def spc_impurities(edges: list[tuple[str, str, str, int]], externals: dict[str, set[str]]) -> list[str]:
    bad = sorted(
        {
            f"{module}:{line} imports {destination}"
            for source, destination, module, line in edges
            if source == "spc"
        }
    )
    bad += [f"spc imports {name}" for name in sorted(externals.get("spc", set()) & FRAMEWORKS)]
    return bad


EDGES, EXTERNALS = import_graph(ROOT)


def test_every_app_has_a_layer() -> None:
    apps = {f"apps.{path.parent.name}" for path in (ROOT / "apps").glob("*/apps.py")}
    assert len(apps) >= 8, apps
    assert apps <= set(LAYERS), apps - set(LAYERS)


def test_the_graph_sees_the_imports_it_is_about() -> None:
    """Guards the builder itself: known arrows downwards, a function-level import included."""
    pairs = {(source, destination) for source, destination, _module, _line in EDGES}
    assert ("apps.calculations", "spc") in pairs
    assert ("apps.config", "spc") in pairs
    assert ("apps.config", "apps.audit") in pairs
    assert ("apps.qa_runs", "openspc") in pairs
    assert ("apps.web", "apps.calculations") in pairs
    assert "numpy" in EXTERNALS["spc"]


def test_no_import_points_from_a_lower_layer_to_a_higher_one() -> None:
    bad = upward_arrows(EDGES)
    assert not bad, "\n".join(bad)


def test_no_cycle_between_apps() -> None:
    cycles = app_cycles(EDGES)
    assert not cycles, "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_the_spc_engine_imports_no_django_no_app_and_not_openspc() -> None:
    bad = spc_impurities(EDGES, EXTERNALS)
    assert not bad, "\n".join(bad)


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


@pytest.mark.parametrize(
    ("files", "check", "expected"),
    [
        pytest.param(
            {"apps/config/rules.py": "def f():\n    from apps.calculations.window import x\n"},
            "upward",
            ["apps.config.rules:2 imports apps.calculations (layer 5 >= 3)"],
            id="upward-inside-a-function",
        ),
        pytest.param(
            {"apps/audit/views.py": "import typing\nif typing.TYPE_CHECKING:\n    import apps.config\n"},
            "upward",
            ["apps.audit.views:3 imports apps.config (layer 3 >= 1)"],
            id="upward-type-checking",
        ),
        pytest.param(
            {"apps/qa_runs/c.py": "from ..mqtt_bridge import nodes\n"},
            "upward",
            ["apps.qa_runs.c:1 imports apps.mqtt_bridge (layer 7 >= 7)"],
            id="sideways-relative",
        ),
        pytest.param(
            {
                "apps/config/a.py": "import apps.observations\n",
                "apps/observations/b.py": "from apps import config\n",
            },
            "cycles",
            [["apps.config", "apps.observations", "apps.config"]],
            id="cycle",
        ),
        pytest.param(
            {"spc/x.py": "import numpy\nfrom django.conf import settings\nfrom openspc import rows\n"},
            "spc",
            ["spc.x:3 imports openspc", "spc imports django"],
            id="impure-engine",
        ),
    ],
)
def test_the_checks_catch_a_bad_arrow(
    tmp_path: Path, files: dict[str, str], check: str, expected: object
) -> None:
    """Each check fails on a tree with the arrow it forbids: the checks above are not vacuous."""
    write(tmp_path, {"apps/__init__.py": "", **files})
    edges, externals = import_graph(tmp_path)
    found = {
        "upward": lambda: upward_arrows(edges),
        "cycles": lambda: app_cycles(edges),
        "spc": lambda: spc_impurities(edges, externals),
    }[check]()
    assert found == expected
