"""The walls between the layers, read from the sources with `ast` (README "Architecture").

Each subpackage may import only the layers its row names; the virtual board imports of the
product only leaf modules (modules that import no other module of the product); argparse lives
only at the command-line boundaries; nothing loads our modules by name; no cycles between
subpackages; no product module outside the virtual board grows past the size limit.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "qspi_gdb"
MAX_LINES = 450  # per product module outside sim/: split by job beyond this

# layer -> the layers it may import (itself included). A layer is a top-level module or a
# subpackage of qspi_gdb; "qspi_gdb" is the package's own __init__ (the version and the
# re-exported Python API).
ALLOWED: dict[str, set[str]] = {
    "qspi_gdb": {"api"},
    "errors": set(),
    "log": set(),
    "rundir": set(),
    "inputs": {"errors", "log"},
    "loader": {"errors", "log", "inputs"},
    "flash": {"errors", "log", "rundir", "inputs", "loader"},
    "transport": {"errors", "log", "rundir"},
    "connect": {"errors", "log", "inputs", "loader", "flash", "transport"},
    "api": {"errors", "log", "inputs", "loader", "flash", "transport", "connect"},
    "cli": {"qspi_gdb", "errors", "log", "inputs", "loader", "flash", "transport", "connect",
            "api"},
    # west, the Zephyr runner, labgrid, the GDB command: adapters over the API, never the CLI
    "integrations": {"errors", "log", "inputs", "loader", "flash", "connect", "api"},
    "__main__": {"cli"},
    "sim": {"errors", "log", "rundir", "inputs"},  # and of inputs only the leaves: see below
}
# What the virtual board may use of the product: leaf modules only.
SIM_MAY_IMPORT = {"qspi_gdb.errors", "qspi_gdb.log", "qspi_gdb.rundir", "qspi_gdb.inputs.boards",
                  "qspi_gdb.inputs.parts", "qspi_gdb.inputs.probes", "qspi_gdb.inputs"}
# Where argparse may be imported: the command lines (the product's, the virtual board's, and the
# `qspi` command typed inside a GDB session).
ARGPARSE_HOMES = ("qspi_gdb.cli", "qspi_gdb.sim.cli", "qspi_gdb.integrations.gdb_command")
# The optional frameworks (extras `west`, `labgrid`; Zephyr's runners package; gdb's embedded
# `gdb` module) each live in one integration module: the rest of the package imports without them.
FRAMEWORK_HOMES = {
    "west": ("qspi_gdb.integrations.west_command",),
    "runners": ("qspi_gdb.integrations.zephyr_runner",),
    "labgrid": ("qspi_gdb.integrations.labgrid_driver",),
    "attr": ("qspi_gdb.integrations.labgrid_driver",),
    "gdb": ("qspi_gdb.integrations.gdb_session", "qspi_gdb.integrations.gdb_command",
            "qspi_gdb.integrations.gdb_script"),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, ast.Module]:
    return {_module_name(p): ast.parse(p.read_text(), str(p)) for p in sorted(PACKAGE.rglob("*.py"))}


MODULES = _modules()


def _imports(name: str, tree: ast.Module) -> set[str]:
    """Every module imported anywhere in the file (functions too), absolute names."""
    package = name if _is_package(name) else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import submodule` imports the submodule; other names come from base
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in MODULES else base)
    return found


def _is_package(name: str) -> bool:
    return (PACKAGE.parent / name.replace(".", "/") / "__init__.py").is_file()


def _layer(name: str) -> str:
    parts = name.split(".")
    return "qspi_gdb" if len(parts) == 1 else parts[1]


def _product(names: set[str]) -> set[str]:
    return {n for n in names if n == "qspi_gdb" or n.startswith("qspi_gdb.")}


IMPORTS = {name: _product(_imports(name, tree)) for name, tree in MODULES.items()}


def test_every_module_belongs_to_a_layer_of_the_table():
    assert {_layer(name) for name in MODULES} <= set(ALLOWED)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_stay_within_the_allowed_layers(name):
    layer = _layer(name)
    allowed = ALLOWED[layer] | {layer}
    wrong = sorted(i for i in IMPORTS[name] if _layer(i) not in allowed)
    assert not wrong, f"{name} ({layer}) imports {wrong}; {layer} may import {sorted(allowed)}"


def test_no_product_module_imports_the_virtual_board():
    offenders = {name: sorted(i for i in imports if _layer(i) == "sim")
                 for name, imports in IMPORTS.items() if _layer(name) != "sim"}
    assert not {k: v for k, v in offenders.items() if v}


def test_the_virtual_board_imports_only_leaf_modules_of_the_product():
    used = {i for name, imports in IMPORTS.items() if _layer(name) == "sim"
            for i in imports if _layer(i) != "sim"}
    assert used <= SIM_MAY_IMPORT, sorted(used - SIM_MAY_IMPORT)
    for leaf in SIM_MAY_IMPORT:
        assert not IMPORTS[leaf] - {leaf}, f"{leaf} is no leaf: it imports {IMPORTS[leaf]}"


def test_argparse_only_at_the_command_line_boundaries():
    users = sorted(name for name, tree in MODULES.items() if "argparse" in _imports(name, tree))
    assert users and all(u.startswith(ARGPARSE_HOMES) for u in users), users


def test_optional_frameworks_only_in_their_integration_module():
    misplaced = sorted(
        (name, imported) for name, tree in MODULES.items() for imported in _imports(name, tree)
        if (top := imported.split(".")[0]) in FRAMEWORK_HOMES
        and name not in FRAMEWORK_HOMES[top])
    assert not misplaced, misplaced


def test_no_module_is_loaded_by_name():
    users = sorted(name for name, tree in MODULES.items()
                   if {"importlib", "imp"} & _imports(name, tree)
                   or any(isinstance(n, ast.Name) and n.id == "__import__" for n in ast.walk(tree)))
    assert not users


def test_no_import_cycles_between_layers():
    edges = {layer: set() for layer in ALLOWED}
    for name, imports in IMPORTS.items():
        edges[_layer(name)] |= {_layer(i) for i in imports} - {_layer(name)}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n}))
                   for n in edges[start])

    cycles = sorted(layer for layer in edges if reaches(layer, layer, {layer}))
    assert not cycles, cycles


def test_product_modules_stay_small():
    long = {name: n for name in MODULES if _layer(name) != "sim"
            if (n := len((PACKAGE.parent / (name.replace(".", "/") + (
                "/__init__.py" if _is_package(name) else ".py"))).read_text().splitlines()))
            > MAX_LINES}
    assert not long, f"split by job: {long}"


def test_product_modules_import_the_product_at_module_level():
    """An import inside a function hides a dependency from readers and from this test's table
    (and once served only as a test seam); the virtual board may defer its heavy CPU model."""
    late = []
    for name, tree in MODULES.items():
        if _layer(name) == "sim":
            continue
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                late += [f"{name}.{fn.name}" for node in ast.walk(fn)
                         if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("qspi_gdb")]
    assert not late, late
