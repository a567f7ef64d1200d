"""The local ``mdsym serve`` clients of a run: their command lines, and how many are left.

Each client serves the run's model on the run's structure with the run's options
(file paths made absolute: the clients run in ``RUN/ipi``), averaging as the spec
says, or one rotation per request when i-PI averages (``--average-in ipi``,
``client_symmetrize``). Under ``mts:K+SPEC`` (``mts_serve_commands``) the
``--drivers`` raw clients serve the inner force (SPEC's netforce/nettorque fixes
only; the model's direct forces under ``mts:K:direct``) on the run's socket, and one
``mdsym serve --correction`` client the outer one (SPEC minus that: energy, forces
and virial) on the correction socket. A restart starts the raw clients left
(``clients_left``) and a fresh correction client.
"""

from pathlib import Path

from mdsym.md.config import RunConfig
from mdsym.md.ipi_engine.prepare import IpiRun
from mdsym.md.ipi_engine.sockets import Socket
from mdsym.md.ipi_engine.supervisor import IpiProcesses
from mdsym.md.processes import mdsym_command


def serve_command(config: RunConfig, structure, socket: Socket) -> list:
    """The ``mdsym serve`` client of a run on ``structure`` (the run's structure.xyz)."""
    model = config.model
    if Path(model).exists():  # the client runs in RUN/ipi: make file paths absolute
        model = str(Path(model).resolve())
    command = [
        *mdsym_command(), "serve",
        "--model", model, "--structure", str(Path(structure).resolve()),
        "--symmetrize", client_symmetrize(config), "--forces", config.forces,
        "--seed", str(config.seed), "--wait", "120", "--threads", config.threads,
        "--device", config.device,
    ]
    if config.dtype is not None:
        command += ["--dtype", config.dtype]
    if config.variant is not None:
        command += ["--variant", config.variant]
    if config.batch_size is not None:
        command += ["--batch-size", str(config.batch_size)]
    return command + socket.client_args()


def client_symmetrize(config: RunConfig) -> str:
    """What each client averages: the spec, or nothing when i-PI averages
    (``--average-in ipi``: every client evaluates one rotation per request)."""
    return "none" if config.average_in == "ipi" else str(config.symmetrize)


def mts_serve_commands(run: IpiRun, clients: int) -> list:
    """``clients`` raw clients (the inner force: SPEC's fixes only; the direct forces
    under ``mts:K:direct``) on the run's socket, then one correction client (SPEC
    minus that) on the correction socket."""
    config, spec, structure = run.config, run.config.symmetrize, run.rundir.structure
    inner = config.replace(symmetrize=str(spec.inner()),
                           forces="direct" if spec.mts_direct else config.forces)
    raw = serve_command(inner, structure, run.socket)
    outer = serve_command(config.replace(symmetrize=str(spec.outer())), structure, run.correction)
    outer += ["--correction", "direct" if spec.mts_direct else "raw"]
    return [raw] * clients + [outer]


def client_commands(run: IpiRun, clients: int) -> list:
    if run.correction is not None:
        return mts_serve_commands(run, clients)
    return [serve_command(run.config, run.rundir.structure, run.socket)] * clients


def clients_left(run: IpiRun, processes: IpiProcesses) -> int:
    """The raw clients still running (a restart adds a fresh correction client)."""
    if run.correction is None:
        return processes.alive_clients()
    return sum(process.poll() is None for process, _ in processes.clients[:-1])
