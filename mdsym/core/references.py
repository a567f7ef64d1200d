"""What a run records for the files a user named: a shipped structure or model by its
name, ``analytic[:...]`` as written, any other file by its absolute path, so that a run
can be analysed and resumed from any directory."""

import re
from pathlib import Path

from mdsym.core.defaults import STRUCTURES

#: ``path/to/file.py:Name``, an object of a Python file (mdsym.models.load_model)
PYTHON_OBJECT = re.compile(r"^(?P<path>.+\.py)(?::(?P<name>[A-Za-z_][A-Za-z0-9_]*))?$")


def structure_reference(text) -> str:
    """A shipped structure by its name, any other file by its absolute path."""
    text = str(text)
    if not Path(text).exists() and (STRUCTURES / f"{text}.xyz").exists():
        return text
    return str(Path(text).resolve())


def model_reference(text) -> str:
    """A model file (``.pt``, or ``file.py:Name``) by its absolute path; a shipped name,
    an analytic spec or a file that does not exist (refused when loaded) as written."""
    text = str(text)
    python = PYTHON_OBJECT.match(text)
    if python and Path(python["path"]).is_file():
        name = f":{python['name']}" if python["name"] else ""
        return str(Path(python["path"]).resolve()) + name
    if not text.startswith("analytic") and Path(text).is_file():
        return str(Path(text).resolve())
    return text
