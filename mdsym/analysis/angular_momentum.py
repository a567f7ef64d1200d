"""Angular momentum about the centre of mass, torque and net force, over frames.

``L(t) = sum_i m_i (r_i - R) x (v_i - V)`` in amu Angstrom^2/ps (positions in
Angstrom, velocities in Angstrom/ps, masses in amu); the torque
``tau = sum_i (r_i - R) x F_i`` in eV (forces in eV/Angstrom); the net force
``sum_i F_i`` in eV/Angstrom. Newton: ``dL/dt = tau``, with ``1 eV = 9648.5
amu Angstrom^2/ps^2``. Velocity Verlet satisfies it exactly in the trapezoid form
``L_{n+1} - L_n = dt/2 (tau_n + tau_{n+1})``, so a model with zero torque
conserves L to round-off.

Under periodic boundary conditions L is not a conserved quantity (the positions
are not those of an isolated body); only the net force (momentum conservation)
is meaningful, and that is what is reported for periodic runs.

All functions are vectorised over frames: arrays ``(F, N, 3)``.
"""

import numpy as np

from .trajectory import EV_IN_AMU_A2_PS2, FrameArrays


def centre_of_mass(vectors, masses):
    """Mass-weighted mean over atoms: ``(F, N, 3)`` -> ``(F, 3)``."""
    return np.einsum("i,fij->fj", masses, vectors) / masses.sum()


def angular_momentum(positions, velocities, masses):
    """L about the centre of mass, ``(F, 3)`` amu Angstrom^2/ps."""
    r = positions - centre_of_mass(positions, masses)[:, None, :]
    v = velocities - centre_of_mass(velocities, masses)[:, None, :]
    return np.einsum("i,fij->fj", masses, np.cross(r, v))


def torque(positions, forces, masses):
    """Torque about the centre of mass, ``(F, 3)`` eV."""
    r = positions - centre_of_mass(positions, masses)[:, None, :]
    return np.cross(r, forces).sum(axis=1)


def net_force(forces):
    """Sum of the forces, ``(F, 3)`` eV/Angstrom."""
    return forces.sum(axis=1)


def _rate(time_ps, values):
    """Least-squares slope of each column against time (per ps)."""
    if len(time_ps) < 2 or np.ptp(time_ps) == 0.0:
        return np.full(values.shape[1:], np.nan)
    return np.polyfit(time_ps - time_ps[0], values, 1)[0]


def summarize(time_ps, positions, velocities, forces, masses, periodic: bool) -> tuple:
    """(figures for analysis.json, series for plots) of one trajectory."""
    series = {"time_ps": time_ps}
    fnet = net_force(forces)
    series["net_force"] = np.linalg.norm(fnet, axis=1)
    figures = {
        "net_force_max_eVA": float(np.max(series["net_force"])) if len(fnet) else float("nan"),
        "net_force_mean_eVA": float(np.mean(series["net_force"])) if len(fnet) else float("nan"),
    }
    if periodic:
        figures["conserved"] = False
        figures["note"] = (
            "periodic system: angular momentum is not a conserved quantity and is not "
            "reported; the net force (momentum conservation) is"
        )
        return figures, series
    L = angular_momentum(positions, velocities, masses)
    tau = torque(positions, forces, masses)
    dL = np.linalg.norm(L - L[:1], axis=1) if len(L) else np.zeros(0)
    rate = _rate(time_ps, L)  # amu A^2 / ps^2
    series.update(L=L, dL=dL, torque=np.linalg.norm(tau, axis=1))
    figures.update(
        conserved=True,
        L0=L[0].tolist() if len(L) else None,
        L0_norm=float(np.linalg.norm(L[0])) if len(L) else float("nan"),
        max_dL=float(dL.max()) if len(dL) else float("nan"),
        final_dL=float(dL[-1]) if len(dL) else float("nan"),
        drift_rate=float(np.linalg.norm(rate)),
        drift_rate_eV=float(np.linalg.norm(rate) / EV_IN_AMU_A2_PS2),
        torque_mean_eV=np.mean(tau, axis=0).tolist() if len(tau) else None,
        torque_max_eV=float(series["torque"].max()) if len(tau) else float("nan"),
        units={"L": "amu*Angstrom^2/ps", "drift_rate": "amu*Angstrom^2/ps^2", "torque": "eV"},
    )
    return figures, series


class AngularMomentum(FrameArrays):
    """``AngularMomentum(universe, masses, periodic=False).run()``: L, torque, net force.

    ``results.L`` ``(F, 3)``, ``results.dL`` ``|L(t) - L(0)|``, ``results.torque``
    ``(F, 3)`` eV, ``results.net_force`` ``(F, 3)`` eV/Angstrom and the summary
    figures in ``results.figures``.
    """

    def __init__(self, universe, masses=None, periodic: bool = False, **kwargs):
        super().__init__(universe, **kwargs)
        self.masses = np.asarray(universe.atoms.masses if masses is None else masses, float)
        self.periodic = periodic

    def _conclude(self):
        r = self.results
        r.figures, _ = summarize(r.time_ps, r.positions, r.velocities, r.forces,
                                 self.masses, self.periodic)
        r.L = angular_momentum(r.positions, r.velocities, self.masses)
        r.dL = np.linalg.norm(r.L - r.L[:1], axis=1)
        r.torque = torque(r.positions, r.forces, self.masses)
        r.net_force = net_force(r.forces)
