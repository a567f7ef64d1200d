"""Energy drift of the conserved quantity.

Two figures, as public MLIP stability audits report them:

- ``slope_meV_atom_ps``: slope of a least-squares line through the conserved
  energy per atom against time, in meV/atom/ps;
- ``ratio``: the drift over the run (fitted slope times duration) divided by the
  standard deviation of the kinetic energy, dimensionless. Values well below 1
  mean the drift is small against the natural thermal fluctuations.

For NVT the conserved quantity must include the thermostat's energy bookkeeping
(the engines write it so in ``thermo.csv``'s ``conserved_eV``).
"""

import numpy as np


def energy_drift(time_ps, conserved_eV, kinetic_eV, n_atoms: int) -> dict:
    """Drift figures of one series; NaN where fewer than two finite points exist."""
    t = np.asarray(time_ps, dtype=np.float64)
    e = np.asarray(conserved_eV, dtype=np.float64)
    k = np.asarray(kinetic_eV, dtype=np.float64)
    good = np.isfinite(t) & np.isfinite(e)
    t, e, k = t[good], e[good], k[good]
    out = {
        "slope_meV_atom_ps": float("nan"), "intercept_eV": float("nan"),
        "drift_over_run_eV": float("nan"), "kinetic_std_eV": float("nan"),
        "ratio": float("nan"), "max_deviation_meV_atom": float("nan"),
        "duration_ps": float(t[-1] - t[0]) if len(t) else 0.0, "points": int(len(t)),
    }
    if len(t) < 2 or np.ptp(t) == 0.0:
        return out
    slope, intercept = np.polyfit(t - t[0], e, 1)  # eV/ps
    duration = float(t[-1] - t[0])
    kinetic_std = float(np.std(k[np.isfinite(k)])) if np.isfinite(k).any() else float("nan")
    drift = float(slope * duration)
    out.update(
        slope_meV_atom_ps=float(slope * 1000.0 / n_atoms),
        intercept_eV=float(intercept),
        drift_over_run_eV=drift,
        kinetic_std_eV=kinetic_std,
        ratio=abs(drift) / kinetic_std if kinetic_std > 0 else float("nan"),
        max_deviation_meV_atom=float(np.max(np.abs(e - e[0])) * 1000.0 / n_atoms),
    )
    return out
