"""Models shipped inside the package, addressable by short names.

Each shipped model is a file in ``mdsym/models/data/`` with its model card in
``inputs/models/``. ``names()`` lists what is installed.
"""

from pathlib import Path

DATA = Path(__file__).parent / "data"


def names() -> list:
    if not DATA.is_dir():
        return []
    return sorted(p.stem for p in DATA.glob("*.pt"))


def path(name: str) -> Path:
    return DATA / f"{name}.pt"
