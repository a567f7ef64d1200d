"""What every reader of a foreign trajectory shares: the user's options, what a reader
hands back (``Opened``), and ``finish``, which turns it into the ``RunData`` that
mdsym's analyses read from a run directory.

``finish`` walks the frames once (``FrameSummary``): their steps and times, whether
their coordinates are finite (the first non-finite frame ends what is analysed), and,
from the velocities, the kinetic energy, temperature, momentum and angular momentum
of each frame, with the net force and torque from its forces. Then the thermo table
(``thermo.csv``'s columns, NaN where the source has nothing): the engine's own energy
rows when it wrote some (``log.lammps``, i-PI's ``properties.out``), else one row per
frame, whose potential is the file's, or the one ``--model`` gives when the file has
none. The conserved quantity is the engine's total energy in NVE and only a
thermostat's conserved quantity otherwise; without one, the drift is not computed and
``source.energy.why_not`` and a note say why.
"""

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import units
from ase.data import atomic_masses, chemical_symbols
from ase.geometry import cellpar_to_cell
from MDAnalysis.analysis.base import AnalysisBase

from mdsym.analysis.sources.frames import FLOAT64
from mdsym.analysis.trajectory import EV_IN_AMU_A2_PS2, frame_forces, frame_velocities
from mdsym.core import mechanics
from mdsym.core.errors import MdsymError
from mdsym.core.system import System
from mdsym.md.thermo import THERMO_COLUMNS

KINDS = ("mdsym", "ase", "ipi", "lammps", "mdanalysis")


@dataclass
class SourceOptions:
    """What the user says about a foreign trajectory (``mdsym analyze`` options)."""

    format: str = None  # None: detected from the extension and content
    log: Path = None  # ASE MDLogger log or log.lammps
    topology: Path = None  # MDAnalysis formats
    timestep_fs: float = None  # MD time step, when the file does not say
    stride: int = None  # steps between frames, when the file does not say
    units: str = None  # LAMMPS units style, when the log does not say
    elements: tuple = None  # LAMMPS type map: element of type 1, 2, ...
    model: str = None  # re-evaluates a missing potential (and measures A)

    @classmethod
    def parse(cls, items: dict) -> "SourceOptions":
        """From ``key=value`` texts (``mdsym compare PATH::key=value``)."""
        known = {name: kind for name, kind in (
            ("format", str), ("log", Path), ("topology", Path), ("timestep", float),
            ("stride", int), ("units", str), ("elements", str), ("model", str))}
        values = {}
        for key, text in items.items():
            if key not in known:
                raise MdsymError(f"unknown trajectory option {key!r}; the options are "
                                 f"{', '.join(known)}")
            try:
                value = known[key](text)
            except ValueError:
                raise MdsymError(f"trajectory option {key}={text!r} is not a {known[key].__name__}") from None
            values["timestep_fs" if key == "timestep" else key] = value
        if "elements" in values:
            values["elements"] = element_map(values["elements"])
        return cls(**values)


def element_map(text) -> tuple:
    """``O,H`` -> ``("O", "H")``: the elements of atom types 1, 2, ... (one line if unknown)."""
    if isinstance(text, (tuple, list)):
        names = [str(name) for name in text]
    else:
        names = [name.strip() for name in str(text).split(",") if name.strip()]
    for name in names:
        if name.capitalize() not in chemical_symbols[1:]:
            raise MdsymError(f"--elements: {name!r} is not an element symbol")
    return tuple(name.capitalize() for name in names)


def masses_of(names) -> np.ndarray:
    """ASE's atomic masses of element symbols (what the ASE engine integrates with)."""
    return np.array([atomic_masses[chemical_symbols.index(name)] for name in names])


@dataclass
class Opened:
    """What a format's reader found: the frames (as a Universe) and what it knows."""

    kind: str
    path: Path
    files: list
    universe: object
    n_frames: int  # whole frames
    names: list  # element symbols
    masses: np.ndarray
    periodic: bool
    cell: np.ndarray = None  # (3, 3) of the first frame when periodic
    units: dict = field(default_factory=dict)
    energies: dict = None  # the engine's own rows: step, time_fs, potential_eV, ...
    energy: dict = field(default_factory=dict)  # column, file, kind, why_not
    timestep_fs: float = None  # the MD time step, when known
    ensemble: str = None  # nve, nvt, npt, or None when the file does not say
    thermostat: str = None
    temperature_K: float = None
    notes: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)  # what else a reader records in info


class FrameSummary(AnalysisBase):
    """Steps, times, finiteness and the mechanics of every frame, in one pass."""

    def __init__(self, universe, masses, model=None, numbers=None, cell=None, **kwargs):
        super().__init__(universe.trajectory, **kwargs)
        self.masses = np.asarray(masses, float)
        self.model, self.numbers, self.cell = model, numbers, cell

    @classmethod
    def get_supported_backends(cls):
        return ("serial",)

    def _prepare(self):
        n = self.n_frames
        self.results.columns = {name: np.full(n, np.nan) for name in THERMO_COLUMNS}
        self.results.finite = np.ones(n, bool)
        self.results.velocities = np.zeros(n, bool)
        self.results.forces = np.zeros(n, bool)
        self.results.step = np.full(n, -1, dtype=np.int64)

    def _single_frame(self):
        ts, k, r = self._ts, self._frame_index, self.results
        positions = np.asarray(ts.positions, dtype=np.float64)
        velocities, forces = frame_velocities(ts), frame_forces(ts)
        if FLOAT64 in ts.data:  # the file's float64 values, where its reader keeps them
            positions, velocities, forces = ts.data[FLOAT64]
        r.finite[k] = bool(np.all(np.isfinite(positions)))
        step = ts.data.get("step")
        r.step[k] = int(step) if step is not None and np.isfinite(step) else -1
        columns = r.columns
        columns["time_fs"][k] = ts.time * 1000.0
        columns["potential_eV"][k] = ts.data.get("potential_eV", np.nan)
        r.velocities[k], r.forces[k] = velocities is not None, forces is not None
        if velocities is not None:
            kinetic = 0.5 * float(self.masses @ (velocities * velocities).sum(axis=1)) / EV_IN_AMU_A2_PS2
            columns["kinetic_eV"][k] = kinetic
            columns["temperature_K"][k] = 2.0 * kinetic / (3 * len(self.masses) * units.kB)
            fill(columns, k, "p", self.masses @ velocities)
            fill(columns, k, "L", mechanics.angular_momentum(positions, velocities, self.masses))
        if forces is not None:
            fill(columns, k, "fnet_", mechanics.net_force(forces))
            fill(columns, k, "torque_", mechanics.torque(positions, forces, self.masses))
        if self.model is not None and r.finite[k] and not np.isfinite(columns["potential_eV"][k]):
            columns["potential_eV"][k] = model_energy(self.model, positions, self.numbers,
                                                      self.cell, ts.dimensions, self.masses)

    def _conclude(self):
        pass


def fill(columns, k, prefix, vector):
    for axis, value in zip("xyz", vector):
        columns[f"{prefix}{axis}"][k] = value


def model_energy(model, positions, numbers, cell, dimensions, masses) -> float:
    """The potential energy ``model`` gives for one frame (eV)."""
    periodic = cell is not None
    if periodic and dimensions is not None:
        cell = cellpar_to_cell(dimensions)
    system = System(positions, np.asarray(numbers, np.int64),
                    np.asarray(cell if periodic else np.zeros((3, 3)), float),
                    np.array([periodic] * 3), np.asarray(masses, float))
    return float(model.evaluate(system, np.eye(3)[None], ("energy",))["energy"][0])


def summarize(opened: Opened, model=None, stop=None):
    """``FrameSummary`` of the whole frames (with warnings of the readers silenced)."""
    numbers = [chemical_symbols.index(name) for name in opened.names]
    summary = FrameSummary(opened.universe, opened.masses, model, numbers,
                           opened.cell if opened.periodic else None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            summary.run(stop=stop if stop is not None else opened.n_frames)
        except MdsymError:
            raise
        except Exception as error:  # noqa: BLE001 (a reader's complaint about a frame, in one line)
            frame = getattr(summary, "_frame_index", None)
            where = f"frame {frame + 1} of " if frame is not None else ""
            text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise MdsymError(f"cannot read {where}{opened.path}: {text}") from None
    return summary.results
