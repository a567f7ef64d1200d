"""Angular momentum about the centre of mass, torque and net force, over frames.

``L(t) = sum_i m_i (r_i - R) x (v_i - V)`` in amu Angstrom^2/ps (positions in
Angstrom, velocities in Angstrom/ps, masses in amu); the torque
``tau = sum_i (r_i - R) x F_i`` in eV (forces in eV/Angstrom); the net force
``sum_i F_i`` in eV/Angstrom. Newton: ``dL/dt = tau``, with ``1 eV = 9648.5
amu Angstrom^2/ps^2``. Velocity Verlet satisfies it exactly in the trapezoid form
``L_{n+1} - L_n = dt/2 (tau_n + tau_{n+1})``, so a model with zero torque
conserves L to round-off. The formulas are ``mdsym.core.mechanics``'.

Under periodic boundary conditions L is not a conserved quantity (the positions
are not those of an isolated body); only the net force (momentum conservation)
is meaningful, and that is what is reported for periodic runs.

``AngularMomentum`` streams a trajectory: three vectors per frame in
``_single_frame``, the figures in ``_conclude``; the frames are never all in memory.
The functions work on one frame ``(N, 3)`` or on frames ``(F, N, 3)`` alike.
"""

import numpy as np
from MDAnalysis.analysis.base import AnalysisBase

from mdsym.analysis.trajectory import EV_IN_AMU_A2_PS2, frame_forces, frame_velocities
from mdsym.core.mechanics import angular_momentum, net_force, torque


def _rate(time_ps, values):
    """Least-squares slope of each column against time (per ps)."""
    if len(time_ps) < 2 or np.ptp(time_ps) == 0.0:
        return np.full(values.shape[1:], np.nan)
    return np.polyfit(time_ps - time_ps[0], values, 1)[0]


def figures_of(time_ps, L, tau, fnet, periodic: bool) -> tuple:
    """(figures for analysis.json, series for plots) from the series ``(F, 3)`` of
    L (amu Angstrom^2/ps), torque (eV) and net force (eV/Angstrom)."""
    series = {"time_ps": time_ps}
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


def summarize(time_ps, positions, velocities, forces, masses, periodic: bool) -> tuple:
    """(figures, series) of a trajectory held in arrays ``(F, N, 3)``."""
    return figures_of(time_ps, angular_momentum(positions, velocities, masses),
                      torque(positions, forces, masses), net_force(forces), periodic)


class AngularMomentum(AnalysisBase):
    """``AngularMomentum(universe, masses, periodic=False).run()``: L, torque, net force.

    ``results.time_ps`` ``(F,)``, ``results.L`` ``(F, 3)``, ``results.dL``
    ``|L(t) - L(0)|``, ``results.torque`` ``(F, 3)`` eV, ``results.net_force``
    ``(F, 3)`` eV/Angstrom (NaN in a frame without velocities or forces; their count
    in ``results.incomplete_frames``), the summary in ``results.figures`` and the
    plotted series in ``results.series``.
    """

    def __init__(self, universe, masses=None, periodic: bool = False, **kwargs):
        super().__init__(universe.trajectory, **kwargs)
        self.masses = np.asarray(universe.atoms.masses if masses is None else masses, float)
        self.periodic = periodic

    @classmethod
    def get_supported_backends(cls):
        return ("serial",)

    def _prepare(self):
        r = self.results
        r.L, r.torque, r.net_force = (np.full((self.n_frames, 3), np.nan) for _ in range(3))
        r.incomplete_frames = 0

    def _single_frame(self):
        ts, k, r = self._ts, self._frame_index, self.results
        positions = np.asarray(ts.positions, dtype=np.float64)
        velocities, forces = frame_velocities(ts), frame_forces(ts)
        r.incomplete_frames += velocities is None or forces is None
        if velocities is not None:
            r.L[k] = angular_momentum(positions, velocities, self.masses)
        if forces is not None:
            r.torque[k] = torque(positions, forces, self.masses)
            r.net_force[k] = net_force(forces)

    def _conclude(self):
        r = self.results
        r.time_ps = self.times
        r.dL = np.linalg.norm(r.L - r.L[:1], axis=1)
        r.figures, r.series = figures_of(r.time_ps, r.L, r.torque, r.net_force, self.periodic)
