"""The one place where mdsym finds, starts and stops other processes.

A new user's virtual environment is often not activated, so its scripts (``i-pi``,
``i-pi-py_driver``) are not on PATH. ``command_for`` looks for a script where pip put
it for the Python running mdsym, then on PATH, and names every place it tried when it
finds none. ``mdsym_command`` starts mdsym itself with the same interpreter.

``start`` and ``stop`` launch and end a child in its own process group (so its own
children go with it); ``start`` also asks Linux to signal the child when mdsym dies,
even by SIGKILL, so a killed ``mdsym run`` leaves no i-PI or client behind.
"""

import ctypes
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from sysconfig import get_path as scheme_path

from mdsym.core.errors import MdsymError

PACKAGE_OF_SCRIPT = {"i-pi": "ipi", "i-pi-py_driver": "ipi"}


def _script_dirs() -> list:
    """Where pip installs scripts for this interpreter: beside it (a venv's bin/, even
    unactivated; sys.executable is not resolved, since a venv's python is a link),
    then the scheme's and the user scheme's script folders."""
    dirs = [Path(sys.executable).parent, Path(scheme_path("scripts"))]
    try:
        dirs.append(Path(scheme_path("scripts", f"{os.name}_user")))
    except KeyError:
        pass
    unique = []
    for folder in dirs:
        if folder not in unique:
            unique.append(folder)
    return unique


def _is_python_script(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            first = handle.readline(200)
    except OSError:
        return False
    return first.startswith(b"#!") and b"python" in first


def command_for(script: str) -> list:
    """The argv prefix that runs ``script`` (e.g. ``i-pi``) for this Python, or one
    clear line naming what was tried. A Python script found beside the interpreter is
    run with this interpreter, so a venv moved after install (stale shebang) still works."""
    tried = []
    for folder in _script_dirs():
        path = folder / script
        tried.append(str(path))
        if path.is_file() and os.access(path, os.X_OK):
            return [sys.executable, str(path)] if _is_python_script(path) else [str(path)]
    on_path = shutil.which(script)
    tried.append(f"'{script}' on PATH")
    if on_path:
        return [on_path]
    package = PACKAGE_OF_SCRIPT.get(script, script)
    raise MdsymError(
        f"cannot find '{script}' (tried {', '.join(tried)}): "
        f"install it into this Python with {sys.executable} -m pip install {package}"
    )


def mdsym_command() -> list:
    """argv prefix running mdsym's CLI with this interpreter (no PATH needed)."""
    return [sys.executable, "-m", "mdsym"]


def _die_with_parent():
    """Child side of Popen (Linux): get SIGTERM when the parent dies, even by SIGKILL
    (PR_SET_PDEATHSIG), so i-PI soft-exits and writes its RESTART."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except Exception:  # not Linux: the parent's cleanup still stops the child
        pass


def start(command, cwd, log_path, env=None) -> subprocess.Popen:
    """Start ``command`` in ``cwd`` in its own process group, stdout and stderr to
    ``log_path`` (appended)."""
    log = open(log_path, "a")
    try:
        return subprocess.Popen(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=_die_with_parent, env=env)
    finally:
        log.close()  # the child holds its own descriptor


def stop(process, signum=signal.SIGTERM, wait=10.0):
    """Signal a process group, wait, then kill it. Safe on a process already gone."""
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=10)
