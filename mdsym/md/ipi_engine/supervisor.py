"""i-PI and its clients as one unit: started, watched and stopped together.

The one supervisor of i-PI processes, used by the i-PI engine of ``mdsym run``, the
tests and the benchmarks. ``IpiProcesses`` (a context manager) starts ``i-pi`` and
its clients in one folder, each in its own process group and with its own log
(``mdsym.md.processes.start``); leaving the ``with`` block, however it is left, stops
i-PI first (SIGTERM: i-PI writes its RESTART and tells its clients EXIT), then the
clients, and removes the unix socket file.

Watching a run (``problem``):

- a client that exits with an error code fails the run (its last log line says why:
  it would fail again on a restart);
- a client killed by a signal, or i-PI's socket thread dying, stalls i-PI 3.3 for
  good: when one of several clients disconnects in the middle of a request, the
  thread that polls the clients dies (``ConnectionResetError``) and i-PI's main
  loop waits forever. The caller stops i-PI (which still writes its RESTART) and
  continues from it with the clients left (``mdsym.md.ipi_engine.run``).

``terminate_as_interrupt`` makes SIGTERM and SIGHUP raise ``KeyboardInterrupt``, so
that a terminated ``mdsym run`` cleans up as Ctrl-C does. ``run_input`` runs one
i-PI input with its clients to the end (tests, benchmarks).
"""

import contextlib
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from mdsym.md.processes import command_for
from mdsym.md.processes import start as start_process
from mdsym.md.processes import stop as stop_process

#: what Python prints when a thread dies; in i-PI's log it means its socket thread
THREAD_DIED = "Exception in thread"


@dataclass
class Problem:
    """Why a running i-PI will not finish as it is: ``kind`` is ``failed`` (a client
    exited with an error) or ``stalled`` (a client or i-PI's socket thread is gone)."""

    kind: str
    reason: str


def last_line(path: Path) -> str:
    """The last line of a log that mentions an error, else its last line."""
    try:
        lines = [line.strip() for line in Path(path).read_text(errors="replace").splitlines()
                 if line.strip()]
    except FileNotFoundError:
        return ""
    for line in reversed(lines):
        if "error" in line.lower():
            return line
    return lines[-1] if lines else ""


@contextlib.contextmanager
def terminate_as_interrupt():
    """While inside, SIGTERM and SIGHUP raise KeyboardInterrupt (main thread only)."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    saved = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGHUP):
            saved[signum] = signal.signal(signum, interrupt)
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


class IpiProcesses:
    """``i-pi`` and its clients, run in ``workdir``; stopped on leaving ``with``."""

    def __init__(self, workdir, socket_file=None):
        self.workdir = Path(workdir)
        self.socket_file = socket_file
        self.server = None
        self.server_log = None
        self.clients = []  # (process, log path)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start_server(self, input_name: str, log_name: str = "ipi.log"):
        self.server_log = self.workdir / log_name
        self.server = start_process([*command_for("i-pi"), input_name], self.workdir,
                                    self.server_log)
        return self.server

    def start_client(self, command, log_name: str):
        log = self.workdir / log_name
        self.clients.append((start_process(command, self.workdir, log), log))
        return self.clients[-1][0]

    def server_running(self) -> bool:
        return self.server is not None and self.server.poll() is None

    def alive_clients(self) -> int:
        return sum(process.poll() is None for process, _ in self.clients)

    def problem(self):
        """A ``Problem`` if i-PI, still running, cannot finish as it is, else None."""
        if not self.server_running():
            return None
        for process, log in self.clients:
            code = process.poll()
            if code is not None and code > 0:
                return Problem("failed", f"mdsym serve failed: {last_line(log)}")
        for process, log in self.clients:
            if process.poll() is not None and process.returncode < 0:
                return Problem("stalled", f"a client was killed (signal {-process.returncode})")
        if THREAD_DIED in self.read_server_log():
            return Problem("stalled", "i-PI lost a client (its socket thread died)")
        return None

    def read_server_log(self) -> str:
        try:
            return self.server_log.read_text(errors="replace")
        except (AttributeError, FileNotFoundError):
            return ""

    def wait_server(self, timeout: float):
        """i-PI's exit code once it exits, or None after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while self.server.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.server.poll()

    def wait_clients(self, timeout: float):
        """Wait for the clients to leave (they do on i-PI's EXIT)."""
        for process, _ in self.clients:
            process.wait(timeout=timeout)

    def client_logs(self) -> list:
        return [log.read_text(errors="replace") for _, log in self.clients]

    def stop(self):
        """i-PI first (SIGTERM: it checkpoints and says EXIT), then the clients; the
        socket file goes. Safe to call twice."""
        stop_process(self.server, signal.SIGTERM, wait=10.0)
        for process, _ in self.clients:
            stop_process(process, signal.SIGTERM, wait=5.0)
        if self.socket_file and os.path.exists(self.socket_file):
            with contextlib.suppress(OSError):
                os.unlink(self.socket_file)


@dataclass
class Finished:
    """How ``run_input`` ended: i-PI's exit code (None: not within the timeout), its
    log and the clients' logs."""

    returncode: object
    log: str
    client_logs: list


def run_input(workdir, xml: str, clients, timeout: float = 120.0, settle: float = 0.0,
              input_name: str = "input.xml") -> Finished:
    """Run i-PI on ``xml`` in ``workdir`` with the ``clients`` (commands; logs
    ``client{k}.log``) to its end, or for ``timeout`` seconds; every process is stopped
    on return. Clients start first, ``settle`` seconds before i-PI (they retry until
    i-PI opens its socket, so every one is there at step 0)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / input_name).write_text(xml)
    with IpiProcesses(workdir) as processes:
        for k, command in enumerate(clients):
            processes.start_client(command, f"client{k}.log")
        time.sleep(settle)
        processes.start_server(input_name)
        returncode = processes.wait_server(timeout)
        if returncode == 0:
            for process, _ in processes.clients:
                with contextlib.suppress(Exception):
                    process.wait(timeout=30)  # they leave on i-PI's EXIT
    return Finished(returncode, processes.read_server_log(), processes.client_logs())
