"""Locating and reading the shared SPC reference cases (../shared/reference/spc/cases)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from spc import ConstantsTable

ENV_VAR = "OPENSPC_REFERENCE_DIR"


def repo_root() -> Path:
    """The repository root: the first parent of this file that holds pyproject.toml."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").exists() and (parent / "apps").is_dir():
            return parent
    return here.parents[2]


def cases_dir() -> Path:
    """$OPENSPC_REFERENCE_DIR (the cases directory or its parent), else ../shared/..."""
    configured = os.environ.get(ENV_VAR)
    if configured:
        path = Path(configured)
        return path / "cases" if (path / "cases").is_dir() else path
    return repo_root().parent / "shared" / "reference" / "spc" / "cases"


def case_files() -> list[Path]:
    """Every case file; empty when the directory is missing (the tests then fail)."""
    directory = cases_dir()
    return sorted(directory.glob("*.json")) if directory.is_dir() else []


@cache
def load(name: str) -> dict[str, Any]:
    """One case by file stem."""
    with (cases_dir() / f"{name}.json").open(encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    return data


@cache
def qcc_table() -> ConstantsTable:
    """qcc 2.7's own d2 / d3 tables, from the constants case."""
    tables = load("constants_table_n2_25")["qcc_tables"]
    return ConstantsTable(
        dict(zip(tables["n"], tables["d2"], strict=True)), dict(zip(tables["n"], tables["d3"], strict=True))
    )


def leaves(tree: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, value) for every number or list of numbers in a JSON tree.

    Strings (chart type names) are skipped; lists of lists (confidence intervals) are
    one leaf.
    """
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from leaves(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(tree, bool | str) or tree is None:
        return
    else:
        yield prefix, tree


def lookup(tree: Any, path: str) -> Any:
    """The value at a dotted path (KeyError names the missing part)."""
    node = tree
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(f"the engine result has no {path!r} (missing {part!r})")
        node = node[part]
    return node
