"""ASE trajectories: ``.traj`` (``MolecularDynamics(trajectory=...)``) and extended XYZ,
read by ASE, with an ASE ``MDLogger`` log (``--log``).

- ``.traj``: ``ase.io.Trajectory`` (random access). Its description, written by ASE's
  dynamics, gives the integrator (``md-type``: the ensemble), the time step and the
  interval between frames, so frame ``k`` is step ``k * interval`` at ``step * dt``.
  Momenta, and the calculator's energy and forces, are stored per frame when the
  calculator had them.
- extended XYZ: each frame parsed by ``ase.io.read`` (random access through the byte
  offsets of the frames, found by their atom-count lines); velocities from the
  ``momenta`` column (ASE's), energy and forces from the calculator fields ASE reads.
  Time from the frame's ``time`` (fs) if it has one, else ``--timestep`` x ``--stride``.
- ``MDLogger`` log: time (ps), ``Etot``, ``Epot``, ``Ekin`` (eV, or eV/atom with
  ``peratom``) per logged step, read with numpy; these rows are the energies used
  when given. ASE's logger and trajectory record no thermostat work, so an NVT run
  has no conserved quantity and no drift.
"""

import io
from pathlib import Path

import ase.io
import numpy as np
from ase import units
from ase.geometry import cell_to_cellpar

from mdsym.analysis.sources.assemble import adjust
from mdsym.analysis.sources.common import Opened
from mdsym.analysis.sources.frames import Frame, universe_of
from mdsym.core.errors import MdsymError
from mdsym.md.thermo import VELOCITY_TO_A_PS

#: ASE integrators by ensemble (``md-type`` in a .traj description)
NVE_TYPES = ("VelocityVerlet",)
NPT_TYPES = ("NPT", "NPTBerendsen", "Inhomogeneous_NPTBerendsen", "MTKNPT", "IsotropicMTKNPT",
             "NPTLangevin")


def frame_of(atoms, data=None) -> Frame:
    """An ``ase.Atoms`` as a ``Frame`` (velocities from its momenta, calculator results)."""
    velocities = atoms.get_velocities() * VELOCITY_TO_A_PS if atoms.has("momenta") else None
    results = atoms.calc.results if atoms.calc is not None else {}
    data = dict(data or {})
    if "energy" in results:
        data["potential_eV"] = float(results["energy"])
    forces = results.get("forces")
    dimensions = cell_to_cellpar(atoms.cell.array) if atoms.pbc.all() else None
    time_fs = data.pop("time_fs", None)
    return Frame(np.asarray(atoms.positions, float), velocities,
                 None if forces is None else np.asarray(forces, float), dimensions,
                 None if time_fs is None else time_fs / 1000.0, data)


class TrajFrames:
    """The frames of an ASE ``.traj``."""

    def __init__(self, path: Path):
        self.name = str(path)
        try:
            self.trajectory = ase.io.Trajectory(str(path))
            self.length = len(self.trajectory)
            first = self.trajectory[0] if self.length else None
        except Exception as error:
            raise MdsymError(f"cannot read {path} as an ASE trajectory: {error}") from None
        if first is None:
            raise MdsymError(f"{path} holds no frame")
        self.first = first
        self.n_atoms = len(first)
        self.description = dict(getattr(self.trajectory, "description", {}) or {})
        self.timestep_fs = (self.description["timestep"] / units.fs
                            if "timestep" in self.description else None)
        self.interval = int(self.description.get("interval", 1))

    def __len__(self):
        return self.length

    def frame(self, k):
        atoms = self.trajectory[k]
        if len(atoms) != self.n_atoms:
            raise MdsymError(f"{self.name}: frame {k} has {len(atoms)} atoms, the first "
                             f"{self.n_atoms}: a changing atom count is not analysed")
        data = {"step": k * self.interval}
        if self.timestep_fs:
            data["time_fs"] = k * self.interval * self.timestep_fs
        return frame_of(atoms, data)


class XyzFrames:
    """The frames of an extended XYZ file, each parsed by ASE; whole frames only."""

    def __init__(self, path: Path):
        self.name, self.path = str(path), Path(path)
        self.offsets, self.counts, self.torn = xyz_offsets(self.path)
        if not self.offsets:
            raise MdsymError(f"{path} holds no whole extended XYZ frame")
        self.n_atoms = self.counts[0]
        changed = [k for k, count in enumerate(self.counts) if count != self.n_atoms]
        if changed:
            raise MdsymError(f"{path}: frame {changed[0]} has {self.counts[changed[0]]} atoms, the "
                             f"first {self.n_atoms}: a changing atom count is not analysed")
        self.first = self.atoms(0)

    def __len__(self):
        return len(self.offsets)

    def atoms(self, k):
        with open(self.path, "rb") as handle:
            handle.seek(self.offsets[k])
            text = b"".join(handle.readline() for _ in range(self.counts[k] + 2)).decode()
        try:
            return ase.io.read(io.StringIO(text), format="extxyz")
        except Exception as error:
            raise MdsymError(f"cannot read frame {k} of {self.name}: {error}") from None

    def frame(self, k):
        atoms = self.atoms(k)
        data = {key: atoms.info[key] for key in ("step",) if key in atoms.info}
        if "time" in atoms.info:
            data["time_fs"] = float(atoms.info["time"])
        return frame_of(atoms, data)


def xyz_offsets(path: Path):
    """Byte offsets and atom counts of the whole frames of an XYZ file, and whether a
    torn last frame (missing lines, or a last line without its end) was left out."""
    offsets, counts = [], []
    with open(path, "rb") as handle:
        while True:
            start = handle.tell()
            line = handle.readline()
            if not line.strip():
                return offsets, counts, bool(line)
            try:
                count = int(line)
            except ValueError:
                raise MdsymError(f"{path} is not an XYZ file (frame {len(offsets)} does not "
                                 "start with an atom count)") from None
            lines = [handle.readline() for _ in range(count + 1)]
            if not lines[-1].endswith(b"\n"):
                return offsets, counts, True
            offsets.append(start)
            counts.append(count)


def ensemble_of(md_type):
    if md_type is None:
        return None
    if md_type in NVE_TYPES:
        return "nve"
    return "npt" if md_type in NPT_TYPES else "nvt"


def read_mdlogger(path: Path, n_atoms: int, timestep_fs) -> dict:
    """The rows of an ASE ``MDLogger`` log: step, time, energies (eV)."""
    try:
        with open(path) as handle:
            header = handle.readline().split()
        table = np.loadtxt(path, skiprows=1, ndmin=2)
    except (OSError, ValueError) as error:
        raise MdsymError(f"cannot read {path} as an ASE MDLogger log: {error}") from None
    if not header or header[0] != "Time[ps]":
        raise MdsymError(f"{path} is not an ASE MDLogger log (it does not start with Time[ps])")
    per_atom = any(name.endswith("/N[eV]") for name in header)
    names = [name.replace("/N", "") for name in header]
    column = {name: table[:, k] for k, name in enumerate(names) if k < table.shape[1]}
    scale = n_atoms if per_atom else 1.0
    time_fs = column["Time[ps]"] * 1000.0
    if not timestep_fs:
        raise MdsymError(f"{path} gives times, not steps: give --timestep FS to match them to frames")
    return {"step": np.round(time_fs / timestep_fs), "time_fs": time_fs,
            "potential_eV": column["Epot[eV]"] * scale, "kinetic_eV": column["Ekin[eV]"] * scale,
            "conserved_eV": column["Etot[eV]"] * scale, "temperature_K": column.get("T[K]")}


def open_ase(path: Path, options, kind: str) -> Opened:
    """An ASE trajectory (``kind``: ``traj`` or ``extxyz``) as an ``Opened``."""
    frames = TrajFrames(path) if kind == "traj" else XyzFrames(path)
    first = frames.first
    names = first.get_chemical_symbols()
    universe = universe_of(frames, names, first.get_masses())
    opened = Opened(kind="ase", path=Path(path), files=[str(path)], universe=universe,
                    n_frames=len(frames), names=names, masses=first.get_masses(),
                    periodic=bool(first.pbc.all()),
                    cell=first.cell.array if first.pbc.all() else None,
                    units={"positions": "Angstrom", "velocities": "ASE momenta / masses",
                           "energy": "eV", "forces": "eV/Angstrom", "time": "fs"})
    opened.extra["adjust"] = adjust(universe)
    if getattr(frames, "torn", False):
        opened.notes.append(f"{path} ends with a truncated frame: analysed its {len(frames)} whole frames")
    description = getattr(frames, "description", {})
    md_type = description.get("md-type")
    opened.ensemble = ensemble_of(md_type)
    opened.thermostat = md_type if opened.ensemble != "nve" else None
    opened.temperature_K = description.get("temperature_K")
    opened.timestep_fs = getattr(frames, "timestep_fs", None)
    if description:
        opened.extra["stride"] = getattr(frames, "interval", None)
        opened.extra["config"] = {"integrator": md_type}
    if "potential_eV" in frames.frame(0).data:
        opened.energy = {"column": "energy stored with each frame + kinetic energy of its momenta",
                         "file": str(path)}
    if options.log is not None:
        opened.energies = read_mdlogger(Path(options.log), len(names),
                                        opened.timestep_fs or options.timestep_fs)
        opened.files.append(str(options.log))
        opened.energy = {"column": "Etot[eV]", "file": str(options.log), "kind": "total"}
        if opened.ensemble not in (None, "nve"):
            opened.energies["conserved_eV"] = opened.energies["conserved_eV"] * np.nan
            opened.energy.update(column=None, kind=None)
    if opened.ensemble not in (None, "nve"):
        opened.energy["why_not"] = (f"{md_type} is a thermostat: ASE's MDLogger and trajectory "
                                    "record no thermostat work, so there is no conserved quantity")
    return opened
