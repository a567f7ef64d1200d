"""docs/design.md names only what exists, so it cannot go stale silently; nor can the
README's Layout section.

The markup the design document follows (its opening paragraph says so):

- a repository path is backticked, ``mdsym/md/run.py``, ``drivers/mdsym_pes.py``
  (``RUN/...`` are run-directory files, not repository paths);
- a qualified name is backticked and dotted, ``mdsym.md.run.run_md``: importable, or an
  attribute of what is (a class's method, dataclass field or ``self.`` attribute);
- a floor table has the columns ``box | module | names``: one backticked module path
  and the names defined in that module;
- any other backticked code name (``RunDirectory.append_thermo``, ``energy_rot_std``) is
  a name the package's code defines or uses, or a dotted name of torch, ASE, MDAnalysis,
  numpy, scipy, click or i-PI that imports.

Only what the documents name is imported.
"""

import ast
import importlib
import inspect
import re
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DESIGN = ROOT / "docs" / "design.md"
README = ROOT / "README.md"
#: packages whose dotted names the design document may cite (checked by import)
EXTERNAL = ("torch", "ase", "MDAnalysis", "numpy", "scipy", "click", "ipi")
#: code names that the code builds rather than spells, and placeholders of the text
ALLOWED = {
    "stress_rot_std": "SymmetrizedModel's output, made as f'{key}_rot_std' (averaging.average)",
    "correction_energy": "made as f'correction_{key}' (SymmetrizedModel.__call__)",
    "correction_forces": "made as f'correction_{key}' (SymmetrizedModel.__call__)",
    "correction_stress": "made as f'correction_{key}' (SymmetrizedModel.__call__)",
    "segK": "i-PI's files of segment K, named f'seg{k}' (mdsym.md.ipi_engine.run)",
    "extras_0": "i-PI's extras file of bead 0, named f'{prefix}.extras_0' (input.output_files)",
    "FFRotations": "i-PI's class behind <ffrotations>, named for comparison",
}
FILE_SUFFIXES = (".py", ".csv", ".json", ".xyz", ".trr", ".traj", ".npz", ".png", ".md", ".pt",
                 ".xml", ".log", ".bin", ".toml", ".txt")

BACKTICKED = re.compile(r"`([^`\n]+)`")
PATH = re.compile(r"^[\w.\-]+(/[\w.\-]*)+$")
DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def without_fences(text: str) -> str:
    """The text outside fenced code blocks (the diagram is drawn, not marked up)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def tokens(text: str) -> list:
    return BACKTICKED.findall(without_fences(text))


def repository_paths(text: str) -> list:
    return sorted({t for t in tokens(text) if PATH.match(t) and not t.startswith("RUN/")})


def module_of(path: str) -> str:
    parts = Path(path).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def resolve(dotted: str):
    """The object a dotted name names: the longest importable module, then attributes
    (a class's dataclass field or ``self.`` attribute counts as its attribute)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            found = attribute(found, name)
        return found
    raise ImportError(f"no module in {dotted}")


def attribute(owner, name):
    if hasattr(owner, name):
        return getattr(owner, name)
    if inspect.isclass(owner):
        for klass in owner.__mro__:
            if name in getattr(klass, "__dataclass_fields__", {}) or name in vars(klass).get(
                    "__annotations__", {}):
                return None
            try:
                source = inspect.getsource(klass)
            except (OSError, TypeError):
                continue
            if re.search(rf"\bself\.{re.escape(name)}\s*[:=]", source):
                return None
    raise AttributeError(f"{owner!r} has no attribute {name!r}")


def top_level_names(path: Path) -> set:
    tree = ast.parse(path.read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


@lru_cache(maxsize=1)
def code_names() -> frozenset:
    """Every name the package (and drivers/) defines or uses, and every string constant
    that is a name (dict keys, JSON fields); docstrings and comments do not count."""
    names = set()
    for path in sorted((ROOT / "mdsym").rglob("*.py")) + sorted((ROOT / "drivers").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Name):
                names.add(node.id)
            elif isinstance(node, ast.Attribute):
                names.add(node.attr)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
            elif isinstance(node, ast.keyword) and node.arg:
                names.add(node.arg)
            elif isinstance(node, ast.alias):
                names |= set(node.name.split(".")) | ({node.asname} if node.asname else set())
            elif isinstance(node, ast.ImportFrom) and node.module:
                names |= set(node.module.split("."))
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and node.value.isidentifier():
                names.add(node.value)
    return frozenset(names)


def floor_tables(text: str) -> list:
    """``(module path, [names])`` of every row of the ``box | module | names`` tables."""
    rows, in_table = [], False
    for line in without_fences(text).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else None
        if cells is None:
            in_table = False
        elif [c.lower() for c in cells] == ["box", "module", "names"]:
            in_table = True
        elif in_table and not set(line) <= set("|- "):
            modules = BACKTICKED.findall(cells[1])
            assert len(modules) == 1 and modules[0].endswith(".py"), f"one module per row: {line}"
            rows.append((modules[0], BACKTICKED.findall(cells[2])))
    return rows


def test_the_design_document_has_its_floor_tables():
    modules = [module for module, _ in floor_tables(DESIGN.read_text())]
    for floor in ("core", "models", "symmetry", "serving", "md", "analysis", "reports",
                  "workflows", "cli"):
        assert any(m.startswith(f"mdsym/{floor}/") for m in modules), floor


def test_every_path_the_design_document_names_exists():
    text = DESIGN.read_text()
    missing = [p for p in repository_paths(text) if not (ROOT / p).exists()]
    assert not missing
    # a module is named by its path from the repository root, never by its file name alone
    assert not [t for t in tokens(text) if t.endswith(".py") and "/" not in t]


def test_every_qualified_name_the_design_document_names_exists():
    names = sorted({t for t in tokens(DESIGN.read_text())
                    if DOTTED.match(t) and t.split(".")[0] == "mdsym"})
    assert len(names) > 20  # the markup is in use
    missing = []
    for name in names:
        try:
            resolve(name)
        except (ImportError, AttributeError) as error:
            missing.append(f"{name}: {error}")
    assert not missing


def test_every_name_in_the_floor_tables_is_its_module_s():
    missing = []
    for module_path, names in floor_tables(DESIGN.read_text()):
        path = ROOT / module_path
        if not path.exists():
            missing.append(f"{module_path} does not exist")
            continue
        if module_path.startswith("mdsym/"):
            module = importlib.import_module(module_of(module_path))
            for name in names:
                try:
                    resolve(f"{module.__name__}.{name}") if "." in name else attribute(module, name)
                except (ImportError, AttributeError):
                    missing.append(f"{module_path}: {name}")
        else:  # outside the package (drivers/): read, not imported
            defined = top_level_names(path)
            missing += [f"{module_path}: {n}" for n in names if n.split(".")[0] not in defined]
    assert not missing


def code_like(token: str) -> bool:
    return bool(DOTTED.match(token)) and not token.endswith(FILE_SUFFIXES) and (
        "_" in token or "." in token or re.search(r"[a-z][A-Z]", token) is not None
        or (token.isupper() and len(token) > 2))


def test_every_other_code_name_in_the_design_document_exists():
    unknown = []
    for token in sorted({t for t in tokens(DESIGN.read_text()) if code_like(t)}):
        first = token.split(".")[0]
        if first == "mdsym":
            continue  # checked by import above
        if first in EXTERNAL and "." in token:
            try:
                resolve(token)
            except (ImportError, AttributeError) as error:
                unknown.append(f"{token}: {error}")
            continue
        unknown += [f"{token}: {part}" for part in token.split(".")
                    if part not in code_names() and part not in ALLOWED]
    assert not unknown


def readme_layout() -> str:
    text = README.read_text()
    match = re.search(r"^## Layout\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M)
    assert match, "README.md has a '## Layout' section"
    return match.group(1)


def test_the_readme_layout_names_only_what_exists():
    layout = readme_layout()
    named = repository_paths(layout) + re.findall(r"\]\(([^)#]+)\)", layout)
    assert named  # the section names the folders
    assert not [p for p in named if not (ROOT / p).exists()]


@pytest.mark.parametrize("floor", ["core", "models", "symmetry", "serving", "md", "analysis",
                                   "reports", "workflows", "cli"])
def test_the_readme_layout_names_every_floor(floor):
    assert f"`mdsym/{floor}/`" in readme_layout()
