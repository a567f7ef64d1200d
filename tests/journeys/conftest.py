"""What the journey tests share: the installed ``mdsym`` run as a new user runs it.

A journey is a user's path through mdsym, run exactly as the README says, in a
fresh directory, by the ``mdsym`` script of the virtual environment that runs the
tests (``Path(sys.executable).parent / "mdsym"``), called by its full path with an
environment whose PATH does NOT contain that environment's ``bin`` folder: the venv
is never activated, as a new user's often is not, so mdsym must find its own tools
(i-PI, its own scripts) without PATH.

Every journey asserts physical outcomes (files, row counts, energies, angular
momentum), not only exit codes. On failure the message shows the command, its exit
code and the tail of its stdout and stderr.
"""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mdsym.md.processes import stop as stop_group  # SIGTERM to the group, then SIGKILL

VENV_BIN = Path(sys.executable).parent
MDSYM = VENV_BIN / "mdsym"
IPI = VENV_BIN / "i-pi"

DEFAULT_TIMEOUT_S = 300
TAIL_CHARS = 3000


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: a journey that takes a minute or more on a loaded 2-core machine (still runs by default)")


def user_env() -> dict:
    """The environment of a user who has not activated the venv: PATH without the
    venv's bin folder, no VIRTUAL_ENV, no PYTHONPATH."""
    env = dict(os.environ)
    venv_bin = os.path.realpath(VENV_BIN)
    kept = [entry for entry in env.get("PATH", "").split(os.pathsep)
            if entry and os.path.realpath(entry) != venv_bin]
    env["PATH"] = os.pathsep.join(kept) or "/usr/bin:/bin"
    for name in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"):
        env.pop(name, None)
    return env


def tail(text: str, chars: int = TAIL_CHARS) -> str:
    text = text or ""
    return text if len(text) <= chars else "..." + text[-chars:]


class Result:
    def __init__(self, args, returncode, stdout, stderr):
        self.args, self.returncode, self.stdout, self.stderr = args, returncode, stdout, stderr

    def describe(self) -> str:
        return (f"command: {' '.join(map(str, self.args))}\nexit code: {self.returncode}\n"
                f"--- stdout (tail) ---\n{tail(self.stdout)}\n--- stderr (tail) ---\n{tail(self.stderr)}")

    @property
    def stderr_lines(self) -> list:
        return [line for line in self.stderr.splitlines() if line.strip()]


def start(args, cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) -> subprocess.Popen:
    """Start a command in its own session with the user's environment (not waited for)."""
    return subprocess.Popen([str(a) for a in args], cwd=cwd, env=user_env(), text=True,
                            stdout=stdout, stderr=stderr, start_new_session=True)


def start_mdsym(*args, cwd, **kwargs) -> subprocess.Popen:
    return start([MDSYM, *args], cwd, **kwargs)


def run(args, cwd, timeout=DEFAULT_TIMEOUT_S, check=True) -> Result:
    """Run a command to its end; fail the test with its output on a timeout, or on a
    non-zero exit when ``check``."""
    process = start(args, cwd)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_group(process, wait=5.0)
        stdout, stderr = process.communicate()
        result = Result(args, None, stdout, stderr)
        pytest.fail(f"timed out after {timeout} s\n{result.describe()}", pytrace=False)
    result = Result(args, process.returncode, stdout, stderr)
    if check and result.returncode != 0:
        pytest.fail(f"exited with {result.returncode}\n{result.describe()}", pytrace=False)
    return result


def mdsym(*args, cwd, timeout=DEFAULT_TIMEOUT_S, check=True) -> Result:
    """``mdsym ARGS`` by the full path of the installed script, PATH stripped."""
    return run([MDSYM, *args], cwd, timeout=timeout, check=check)


def snapshot(folder) -> dict:
    """Every file under ``folder`` with the hash of its content."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def assert_one_line_error(result: Result, code: int = 2, mentions=()):
    """A bad input: exit ``code``, exactly one line on stderr (``mdsym: error: ...``)
    that names what was wrong (each of ``mentions``, case-insensitive)."""
    assert result.returncode == code, f"expected exit code {code}\n{result.describe()}"
    lines = result.stderr_lines
    assert len(lines) == 1, f"stderr should be exactly one line\n{result.describe()}"
    assert lines[0].startswith("mdsym: error:"), result.describe()
    for word in mentions:
        assert word.lower() in lines[0].lower(), f"the error should mention {word!r}\n{result.describe()}"


@pytest.fixture
def stop_later():
    """Register processes to be stopped (whole session) when the test ends."""
    processes = []
    yield processes.append
    for process in processes:
        stop_group(process, wait=5.0)


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """In-process reference evaluations on one torch thread, as `mdsym --threads auto`
    does for small systems: the journeys' own subprocesses keep the other core."""
    import torch

    torch.set_num_threads(1)
