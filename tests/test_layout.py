"""The package's structure, as the design document states it: floors that follow the
data flow, no import running back up or in a circle, small modules and functions, no
private name borrowed across modules, a reason beside every deferred import, and a
command line that starts without torch or ASE."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mdsym"
#: the floors, bottom up: a module imports only from its own floor or those below
FLOORS = ("core", "models", "symmetry", "serving", "md", "analysis", "reports", "workflows", "cli")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(("mdsym",) + path.relative_to(PACKAGE).with_suffix("").parts)
        yield name.removesuffix(".__init__"), path, ast.parse(path.read_text())


def floor_of(module: str) -> int:
    parts = module.split(".")
    return FLOORS.index(parts[1]) if len(parts) > 1 and parts[1] in FLOORS else -1


def imported_modules(tree, known):
    """(line, module imported, inside a function) for every mdsym import."""
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    inside = {id(n) for f in functions for n in ast.walk(f) if n is not f}
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mdsym"):
            targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module
                       for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names if a.name.startswith("mdsym")]
        for target in targets:
            yield node.lineno, target, id(node) in inside


def test_every_module_says_what_it_owns():
    missing = [str(path) for _, path, tree in modules() if not ast.get_docstring(tree)
               and path.name != "__main__.py"]
    assert not missing


def test_modules_and_functions_are_small():
    long_modules = [(str(p), n) for _, p, _ in modules()
                    if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES]
    long_functions = [(str(p), f.name, f.end_lineno - f.lineno + 1) for _, p, tree in modules()
                      for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                      and f.end_lineno - f.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long_modules and not long_functions


def test_no_private_name_crosses_a_module():
    borrowed = [(str(p), node.lineno, a.name) for _, p, tree in modules() for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mdsym")
                for a in node.names if a.name.startswith("_")]
    assert not borrowed


def test_every_deferred_import_says_why():
    """An import inside a function has a comment on its line, on a line of its block, or
    just above the block (an optional dependency, start-up time...)."""
    silent = []
    for _, path, tree in modules():
        lines = path.read_text().splitlines()
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for body in _bodies(function):
                block = []
                for statement in body + [None]:
                    if isinstance(statement, (ast.Import, ast.ImportFrom)):
                        block.append(statement)
                        continue
                    if block:
                        first, last = block[0].lineno, block[-1].end_lineno
                        text = lines[first - 2: last]
                        if not any("#" in line for line in text):
                            silent.append(f"{path}:{first}")
                    block = []
    assert not silent


def _bodies(function):
    for node in ast.walk(function):
        for field in ("body", "orelse", "finalbody", "handlers"):
            value = getattr(node, field, None)
            if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
                yield value


def test_imports_follow_the_floors_without_circles():
    found = list(modules())
    known = {name for name, _, _ in found}
    graph, upward = {}, []
    for name, path, tree in found:
        if name in ("mdsym", "mdsym.__main__"):  # the package face and the entry point
            continue
        for line, target, _ in imported_modules(tree, known):
            target = target if target in known else target.rpartition(".")[0]
            if target == name or target not in known or target == "mdsym":
                continue
            graph.setdefault(name, set()).add(target)
            if floor_of(target) > floor_of(name):
                upward.append(f"{path}:{line} imports {target}")
    assert not upward
    circles = []

    def visit(node, stack):
        for nxt in graph.get(node, ()):
            if nxt in stack:
                circles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in done:
                visit(nxt, stack + [nxt])
        done.add(node)

    done = set()
    for node in sorted(graph):
        if node not in done:
            visit(node, [node])
    # an import inside a package's own __init__ of its submodules is not a circle
    circles = [c for c in circles if not any(m.count(".") < c[0].count(".") for m in c)]
    assert not circles


@pytest.mark.parametrize("statement", ["import mdsym.cli.main", "import mdsym"])
def test_the_command_line_starts_without_torch_or_ase(statement):
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", statement],
                         capture_output=True, text=True, check=True).stderr
    loaded = {line.split("|")[-1].strip() for line in out.splitlines() if "|" in line}
    assert not {m for m in loaded if m.split(".")[0] in ("torch", "ase", "numpy", "scipy")}
