"""Read a run directory: run.json, structure, masses, thermo, and its frames.

``load_run`` reads a whole run directory, also a partial one (status ``running``
after a kill) or a failed one: only the whole frames of ``trajectory.trr`` are
counted (a torn last frame is left out and noted), an unreadable ``thermo.csv`` is
noted and the drift skipped. Every note names the file it is about.

The frames are read in one of two ways:

- streamed (``load_run(path, arrays=False)``, what ``mdsym analyze`` does): the run's
  ``universe`` is opened and the analyses, MDAnalysis ``AnalysisBase`` subclasses,
  walk it frame by frame, several of them in one pass (``walk``); memory does not
  grow with the number of frames;
- in memory (``arrays=True``, the default, for tests and small runs): ``FrameArrays``
  copies every frame's positions (Angstrom), velocities (Angstrom/ps) and forces
  (eV/Angstrom) into ``(F, N, 3)`` arrays: 72 bytes per atom and frame, 7 GB for
  10^5 frames of 1000 atoms.

``frame_velocities`` and ``frame_forces`` give one frame's velocities and forces in
those units (MDAnalysis reads forces in kJ/mol/Angstrom).
"""

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import ase.io
import numpy as np
from ase import units
from MDAnalysis.analysis.base import AnalysisBase

from mdsym.core.errors import MdsymError
from mdsym.md.rundir import RunDirectory, complete_frames
from mdsym.md.thermo import FORCE_TO_KJ_MOL_A

#: 1 eV in amu Angstrom^2 / ps^2 (about 9648.5)
EV_IN_AMU_A2_PS2 = (1000.0 * units.fs) ** 2


def frame_velocities(ts):
    """Velocities of a frame (Angstrom/ps, float64), or None when it has none."""
    return np.asarray(ts.velocities, dtype=np.float64) if ts.has_velocities else None


def frame_forces(ts):
    """Forces of a frame (eV/Angstrom, float64), or None when it has none."""
    return np.asarray(ts.forces, dtype=np.float64) / FORCE_TO_KJ_MOL_A if ts.has_forces else None


def walk(analyses, stop=None):
    """Run several ``AnalysisBase`` analyses of one trajectory in a single pass.

    MDAnalysis runs one analysis per pass over the trajectory (its
    ``AnalysisCollection``, issue #3569 / PR #4017, is not released), and reading a
    TRR frame costs more than analysing it, so this walks the frames once and calls
    each analysis' ``_prepare``, ``_single_frame`` and ``_conclude`` as
    ``AnalysisBase.run`` does with the serial backend. Returns ``analyses``.
    """
    trajectory = analyses[0]._trajectory
    for analysis in analyses:
        if analysis._trajectory is not trajectory:
            raise ValueError("walk: the analyses must share one trajectory")
        analysis._setup_frames(trajectory, stop=stop)
        analysis._prepare()
    for index, ts in enumerate(trajectory[:stop]):
        for analysis in analyses:
            analysis._frame_index, analysis._ts = index, ts
            analysis.frames[index], analysis.times[index] = ts.frame, ts.time
            analysis._single_frame()
    for analysis in analyses:
        analysis._conclude()
    return analyses


class FrameArrays(AnalysisBase):
    """Positions, velocities, forces, boxes and times of the frames walked."""

    def __init__(self, universe, **kwargs):
        super().__init__(universe.trajectory, **kwargs)
        self.universe = universe
        self.n_atoms = len(universe.atoms)

    def _prepare(self):
        shape = (self.n_frames, self.n_atoms, 3)
        self.results.positions = np.zeros(shape)
        self.results.velocities = np.full(shape, np.nan)
        self.results.forces = np.full(shape, np.nan)
        self.results.boxes = np.zeros((self.n_frames, 6))
        self.results.time_ps = np.zeros(self.n_frames)
        self.results.step = np.zeros(self.n_frames, dtype=np.int64)

    def _single_frame(self):
        ts, k = self._ts, self._frame_index
        self.results.positions[k] = ts.positions
        if ts.has_velocities:
            self.results.velocities[k] = frame_velocities(ts)
        if ts.has_forces:
            self.results.forces[k] = frame_forces(ts)
        if ts.dimensions is not None:
            self.results.boxes[k] = ts.dimensions
        self.results.time_ps[k] = ts.time
        self.results.step[k] = ts.data.get("step", ts.frame)

    def _conclude(self):
        pass

    @classmethod
    def get_supported_backends(cls):
        return ("serial",)


@dataclass
class RunData:
    """Everything an analysis needs from one run directory, read once."""

    path: Path
    info: dict
    atoms: object  # ase.Atoms of structure.xyz
    masses: np.ndarray  # (N,) amu
    numbers: np.ndarray  # (N,)
    periodic: bool
    time_ps: np.ndarray  # (F,)
    step: np.ndarray  # (F,)
    positions: np.ndarray  # (F, N, 3) Angstrom
    velocities: np.ndarray  # (F, N, 3) Angstrom/ps
    forces: np.ndarray  # (F, N, 3) eV/Angstrom
    boxes: np.ndarray  # (F, 6) MDAnalysis dimensions
    thermo: dict = None  # columns of thermo.csv, or None when unreadable
    notes: list = field(default_factory=list)  # partial / failed / truncated, one line each
    universe: object = None  # MDAnalysis Universe over the whole frames
    n_frames: int = 0  # whole frames of trajectory.trr (the arrays hold them only with arrays=True)
    #: provenance: what was read, in which units and precision (analysis.json's ``source``)
    source: dict = field(default_factory=dict)
    #: what the reader must say first (truncated files): the report's and terminal's top lines
    warnings: list = field(default_factory=list)

    @property
    def n_atoms(self) -> int:
        return len(self.masses)

    @property
    def status(self) -> str:
        return str(self.info.get("status", "unknown"))

    @property
    def config(self) -> dict:
        return self.info.get("config", {}) or {}

    @property
    def complete(self) -> bool:
        return self.status == "completed"


def energy_rows(thermo: dict, config) -> np.ndarray:
    """Mask of the ``thermo`` rows whose ``conserved_eV`` is the conserved quantity of
    a run made with ``config`` (its ``RunConfig``, or None): every row, except under
    multiple time stepping (``mts:K``), where only the outer steps (``step % K == 0``)
    carry the symmetrized model's total energy; between them the held correction
    lets it wander (``mdsym.md.mts``). Drift figures are fitted on these rows."""
    steps = np.asarray(thermo["step"]).astype(int)
    interval = config.symmetrize.mts_interval if config is not None else 0
    return steps % interval == 0 if interval > 1 else np.ones(len(steps), bool)


def missing_frames(info: dict, last_frame_step: int):
    """The step the run reached when its trajectory should hold a later frame than
    ``last_frame_step`` (frames come every ``stride`` steps and at a completed run's last
    step), else None."""
    config, done = info.get("config") or {}, info.get("steps_done")
    stride = config.get("stride")
    if not isinstance(done, int) or not isinstance(stride, int) or stride < 1:
        return None
    expected = done if info.get("status") == "completed" else done // stride * stride
    return done if last_frame_step < expected else None


def run_source(run: RunDirectory, info: dict) -> dict:
    """The provenance of an mdsym run directory: its files, their units and precision,
    and the energy the drift is fitted on."""
    config = info.get("config") or {}
    nvt = config.get("ensemble") == "nvt"
    return {
        "kind": "mdsym", "engine": config.get("engine"),
        "files": [str(f) for f in (run.info, run.structure, run.thermo, run.trajectory)],
        "units": {"thermo.csv": info.get("thermo_units"),
                  "trajectory.trr": "GROMACS TRR read by MDAnalysis: positions A, velocities A/ps, "
                                    "forces kJ/mol/A, time ps (single precision)"},
        "energy": {"column": "conserved_eV", "file": str(run.thermo),
                   "kind": "conserved (total energy minus the thermostat's exchange)" if nvt
                   else "total energy"},
        "precision": {"thermo.csv": "float64, every step", "trajectory.trr": "float32, every stride steps"},
        "velocities": True, "forces": True,
    }


def open_frames(run: RunDirectory, info: dict, data: RunData):
    """Open the run's whole frames into ``data`` (``universe``, ``n_frames``, the notes and
    warnings about a torn or cut trajectory); ``(universe, whole frames)``, or
    ``(None, [])`` when there is none."""
    notes = data.notes
    n = data.n_atoms
    if not run.trajectory.exists() or run.trajectory.stat().st_size == 0:
        notes.append(f"{run.trajectory} is missing or empty: no frame to analyse")
        return None, []

    whole = complete_frames(run.trajectory)
    if not whole:
        raise MdsymError(f"{run.trajectory} holds no whole frame (unreadable or truncated)")
    torn = run.trajectory.stat().st_size - whole[-1][1]
    if torn > 0:
        notes.append(
            f"{run.trajectory} ends with a truncated frame ({torn} bytes): "
            f"analysed its {len(whole)} whole frames"
        )
    missing = missing_frames(info, whole[-1][2])
    if missing:
        data.warnings.append(f"{run.trajectory} was cut: its last whole frame is step {whole[-1][2]} "
                             f"but the run reached step {missing}; the figures from frames cover "
                             f"{len(whole)} frames only (thermo.csv's figures cover every step)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MDAnalysis: offsets cache rebuilt, no box
        universe = run.universe()
    if len(universe.atoms) != n:
        raise MdsymError(
            f"{run.trajectory} has {len(universe.atoms)} atoms but {run.structure} has {n}"
        )
    data.universe, data.n_frames = universe, len(whole)
    return universe, whole


def load_run(path, read_frames: bool = True, arrays: bool = True) -> RunData:
    """Read ``path`` (a run directory) into a ``RunData``; see the module docstring.

    ``read_frames=False``: no trajectory at all; ``arrays=False``: the trajectory is
    opened (``universe``, ``n_frames``) but its frames are left for analyses to stream.
    """
    run = RunDirectory(path)
    if not run.path.is_dir():
        raise MdsymError(f"{run.path} is not a directory")
    info = run.read_info()
    notes = []
    status = info.get("status", "unknown")
    if status == "failed":
        reason = info.get("reason") or "no reason recorded"
        ttf = info.get("time_to_failure_fs")
        when = f" after {ttf:g} fs" if isinstance(ttf, (int, float)) else ""
        notes.append(f"the run failed{when} ({reason}): analysed up to its last flushed frame")
    elif status != "completed":
        notes.append(
            f"the run is partial (status {status!r} in {run.info.name}: still running or "
            "killed): analysed up to its last flushed frame"
        )

    if not run.structure.exists():
        raise MdsymError(f"{run.structure} is missing")
    try:
        atoms = ase.io.read(run.structure, format="extxyz")
    except Exception as error:
        raise MdsymError(f"cannot read {run.structure}: {error}") from None

    thermo = None
    try:
        thermo = run.read_thermo()
        if len(thermo["step"]) == 0:
            notes.append(f"{run.thermo} has no rows: no energy drift")
            thermo = None
    except MdsymError as error:
        notes.append(f"{error}: no energy drift")

    n = len(atoms)
    empty = np.zeros((0, n, 3))
    data = RunData(
        path=run.path, info=info, atoms=atoms, masses=np.asarray(atoms.get_masses(), float),
        numbers=np.asarray(atoms.numbers), periodic=bool(np.all(atoms.pbc)),
        time_ps=np.zeros(0), step=np.zeros(0, dtype=np.int64), positions=empty,
        velocities=empty, forces=empty, boxes=np.zeros((0, 6)), thermo=thermo, notes=notes,
        source=run_source(run, info),
    )
    if not read_frames:
        return data
    universe, whole = open_frames(run, info, data)
    if universe is None or not arrays:
        return data
    frames = FrameArrays(universe).run(stop=len(whole))
    r = frames.results
    data.time_ps, data.step, data.positions = r.time_ps, r.step, r.positions
    data.velocities, data.forces, data.boxes = r.velocities, r.forces, r.boxes
    return data
