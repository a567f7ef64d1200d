"""A run prepared for i-PI (``IpiRun``): everything its segments need, checked before
anything starts.

``IpiRun.prepare`` takes the run's ``RunContext`` (which checked the model on the
system; the model itself runs in the ``mdsym serve`` clients) and run directory: the
structure the run starts from, the same stability monitors as the ASE engine (bonds
judged against the initial structure), the socket (and under ``mts:K`` the
correction's, ``mdsym.md.ipi_engine.sockets``), and the ``<ffrotations>`` grid when
i-PI averages (``mdsym.md.ipi_engine.rotation_grid``). i-PI works in ``RUN/ipi``
(``workdir``).
"""

from dataclasses import dataclass
from pathlib import Path

from mdsym.core.system import read_structure
from mdsym.md.config import RunConfig
from mdsym.md.context import RunContext
from mdsym.md.ipi_engine.rotation_grid import rotation_grid
from mdsym.md.ipi_engine.sockets import Socket
from mdsym.md.monitors import StabilityMonitor
from mdsym.md.rundir import RunDirectory


@dataclass
class IpiRun:
    """Everything a segment needs, checked before anything starts."""

    config: RunConfig
    rundir: RunDirectory
    atoms: object
    periodic: bool
    monitor: StabilityMonitor
    socket: Socket
    extras: bool  # the rotational std comes back (from mdsym serve, or i-PI's grid energies)
    grid: object = None  # i-PI's <ffrotations> grid (--average-in ipi), else None
    correction: Socket = None  # mts:K: the outer force's socket

    @property
    def interval(self) -> int:
        """K of ``mts:K`` (inner steps per i-PI step), 1 without multiple time stepping."""
        return self.config.symmetrize.mts_interval or 1

    @property
    def workdir(self) -> Path:
        return self.rundir.path / "ipi"

    total = property(lambda self: self.config.steps)
    stride = property(lambda self: self.config.stride)
    drivers = property(lambda self: self.config.drivers)

    @classmethod
    def prepare(cls, context: RunContext, rundir: RunDirectory) -> "IpiRun":
        """``context`` has checked the model on the system; the model itself runs in
        the ``mdsym serve`` clients."""
        config = context.config
        atoms = read_structure(rundir.structure)  # where the ASE engine would start too
        # the same monitors as the ASE engine, bonds judged against the initial structure
        monitor = context.monitor(atoms, config.temperature_K)
        socket = Socket.open(config)
        correction = socket.correction(config) if config.symmetrize.mts_interval else None
        return cls(config, rundir, atoms, context.system.periodic, monitor, socket,
                   config.symmetrize.mode != "none", grid=rotation_grid(config),
                   correction=correction)
