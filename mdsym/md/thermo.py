"""thermo.csv: its columns and units, and the one row builder and formatter every engine
uses (so the ASE, i-PI and LAMMPS engines write the same rows, and a resumed run writes
them exactly as the first segment did).

A row is one MD step in ASE units converted to thermo.csv's (``THERMO_UNITS``): energies
in eV, time in fs, momentum and angular momentum about the centre of mass in
amu Angstrom/ps and amu Angstrom^2/ps, net force in eV/Angstrom, torque in eV.
"""

import numpy as np
from ase import units

from mdsym.core import mechanics

THERMO_COLUMNS = (
    "step", "time_fs", "potential_eV", "kinetic_eV", "conserved_eV", "temperature_K",
    "px", "py", "pz", "Lx", "Ly", "Lz", "fnet_x", "fnet_y", "fnet_z",
    "torque_x", "torque_y", "torque_z", "energy_rot_std_eV", "forces_rot_std_eVA",
    "symmetrize_degree", "energy_uncertainty_eV",
)  # fmt: skip
#: thermo.csv files written before a column was added end at one of these
OLDEST_LAST_COLUMN = "forces_rot_std_eVA"
#: the header line every thermo.csv starts with
HEADER = ",".join(THERMO_COLUMNS) + "\n"

# ASE velocity unit (Angstrom / ase time unit) to Angstrom/ps; eV/A to kJ/mol/A
VELOCITY_TO_A_PS = 1000.0 * units.fs
FORCE_TO_KJ_MOL_A = units.mol / units.kJ

THERMO_UNITS = {
    "time_fs": "fs", "potential_eV": "eV", "kinetic_eV": "eV", "conserved_eV": "eV",
    "temperature_K": "K", "p": "amu Angstrom/ps (total linear momentum)",
    "L": "amu Angstrom^2/ps (angular momentum about the centre of mass)",
    "fnet": "eV/Angstrom", "torque": "eV (about the centre of mass)",
    "energy_rot_std_eV": "eV", "forces_rot_std_eVA": "eV/Angstrom (RMS over components)",
    "symmetrize_degree": "degree L of the quadrature behind the row (nan: none, random)",
    "energy_uncertainty_eV": "eV: the model's own estimate of its energy error (its "
                             "energy_uncertainty output; nan: it has none)",
}  # fmt: skip


def mechanics_columns(positions, velocities, forces, masses) -> dict:
    """Momentum, angular momentum and torque about the centre of mass, net force: the
    mechanical columns of a row. ASE units in (Angstrom, Angstrom/ASE time,
    eV/Angstrom, amu); thermo.csv units out. The formulas are ``mdsym.core.mechanics``'."""
    velocities = np.asarray(velocities) * VELOCITY_TO_A_PS
    momentum = masses @ velocities
    angular = mechanics.angular_momentum(positions, velocities, masses)
    net_force = mechanics.net_force(forces)
    torque = mechanics.torque(positions, forces, masses)
    row = {}
    for k, axis in enumerate("xyz"):
        row[f"p{axis}"] = momentum[k]
        row[f"L{axis}"] = angular[k]
        row[f"fnet_{axis}"] = net_force[k]
        row[f"torque_{axis}"] = torque[k]
    return row


def thermo_row(step, time_fs, potential_eV, kinetic_eV, conserved_eV, temperature_K, positions,
               velocities, forces, masses, energy_rot_std_eV=float("nan"),
               forces_rot_std_eVA=float("nan"), symmetrize_degree=float("nan"),
               energy_uncertainty_eV=float("nan")) -> dict:
    """One thermo.csv row from what an engine knows of one step (ASE units)."""
    row = {"step": int(step), "time_fs": float(time_fs), "potential_eV": potential_eV,
           "kinetic_eV": kinetic_eV, "conserved_eV": conserved_eV, "temperature_K": temperature_K,
           "energy_rot_std_eV": energy_rot_std_eV, "forces_rot_std_eVA": forces_rot_std_eVA,
           "symmetrize_degree": symmetrize_degree, "energy_uncertainty_eV": energy_uncertainty_eV}
    row.update(mechanics_columns(positions, velocities, forces, masses))
    return row


def format_row(row: dict) -> str:
    """A row as its thermo.csv line: the step as an integer, every other value as the
    shortest text that reads back to the same float (``repr``)."""
    cells = [str(int(row["step"]))]
    cells += [repr(float(row.get(c, float("nan")))) for c in THERMO_COLUMNS[1:]]
    return ",".join(cells) + "\n"
