"""An MDAnalysis reader over frames that another library reads one by one.

ASE (``ase.io.Trajectory``, extended XYZ) and i-PI (``ipi.utils.io.read_file``) read
trajectories frame by frame but have no MDAnalysis reader; ``FrameReader`` puts a
``FrameSource`` (anything with ``len()`` and ``frame(k) -> Frame``) behind the
MDAnalysis ``ReaderBase`` interface, so the analyses stream it as they stream a TRR:
one frame in memory at a time, random access by index.

A ``Frame`` is in MDAnalysis' units: positions in Angstrom, velocities in
Angstrom/ps, forces in eV/Angstrom (converted here to MDAnalysis' kJ/mol/Angstrom),
time in ps; ``data`` holds what else the file stores per frame (``step``,
``potential_eV``...), copied into ``ts.data``, with the frame's float64 arrays
(``ts.data[FLOAT64]``: MDAnalysis holds positions, velocities and forces in float32).
"""

from dataclasses import dataclass, field

import MDAnalysis as mda
import numpy as np
from MDAnalysis.coordinates.base import ReaderBase

from mdsym.md.thermo import FORCE_TO_KJ_MOL_A


@dataclass
class Frame:
    positions: np.ndarray  # (N, 3) Angstrom
    velocities: np.ndarray = None  # (N, 3) Angstrom/ps
    forces: np.ndarray = None  # (N, 3) eV/Angstrom
    dimensions: np.ndarray = None  # (6,) MDAnalysis box, None when isolated
    time_ps: float = None
    data: dict = field(default_factory=dict)


#: ``ts.data`` key of a frame's float64 positions, velocities and forces (eV/Angstrom)
FLOAT64 = "mdsym_float64"


class FrameReader(ReaderBase):
    """``mda.Universe(topology, source, format=FrameReader)``: the frames of ``source``."""

    units = {"time": "ps", "length": "Angstrom", "velocity": "Angstrom/ps",
             "force": "kJ/(mol*Angstrom)"}

    def __init__(self, source, **kwargs):
        super().__init__("frames", convert_units=False, **kwargs)
        self.source = source
        self.filename = getattr(source, "name", "frames")
        self.n_atoms = source.n_atoms
        self.ts = self._Timestep(self.n_atoms, velocities=True, forces=True, **self._ts_kwargs)
        self._read_frame(0)

    @property
    def n_frames(self) -> int:
        return len(self.source)

    def _reopen(self):
        self.ts.frame = -1

    def close(self):
        pass

    def _read_next_timestep(self, ts=None):
        frame = self.ts.frame + 1
        if frame >= self.n_frames:
            raise IOError("end of the frames")  # MDAnalysis' signal for the end of iteration
        return self._read_frame(frame)

    def _read_frame(self, frame):
        ts = self.ts
        values = self.source.frame(frame)
        ts.frame = frame
        ts.positions = values.positions
        ts.has_velocities = values.velocities is not None
        if ts.has_velocities:
            ts.velocities = values.velocities
        ts.has_forces = values.forces is not None
        if ts.has_forces:
            ts.forces = np.asarray(values.forces) * FORCE_TO_KJ_MOL_A
        ts.dimensions = values.dimensions
        ts.data.clear()
        ts.data.update(values.data)
        # MDAnalysis holds frames in float32; the file's own float64 values, for mdsym's sums
        ts.data[FLOAT64] = (np.asarray(values.positions, float), values.velocities, values.forces)
        # no time in the file: NaN, never MDAnalysis' default of the frame index x 1 ps
        ts.time = values.time_ps if values.time_ps is not None else float("nan")
        return ts


def universe_of(source, names, masses):
    """A Universe over ``source``'s frames, with element ``names`` and ``masses``."""
    universe = mda.Universe.empty(source.n_atoms, trajectory=False)
    universe.add_TopologyAttr("names", list(names))
    universe.add_TopologyAttr("elements", list(names))
    universe.add_TopologyAttr("masses", np.asarray(masses, dtype=np.float64))
    universe.load_new(source, format=FrameReader)
    return universe
