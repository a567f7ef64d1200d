"""NVIDIA nvalchemi-toolkit 0.3.0's ``StabilityMetrics`` of one trajectory, written
from ``nvalchemi.dynamics.hooks.StabilityMonitor.metrics`` (the function cites its
source). Units: ``mdsym.analysis.field_scores``.
"""

import numpy as np

#: femtoseconds per nanosecond (nvalchemi's rates are per ns)
FS_PER_NS = 1.0e6


def nvalchemi_stability(steps, total_eV, momenta, n_atoms: int, timestep_fs: float,
                        finite=None) -> dict:
    """nvalchemi's ``StabilityMetrics`` of one trajectory (one graph).

    ``steps`` ``(S,)`` step counts, ``total_eV`` the total energy ``(S,)``,
    ``momenta`` ``(S, 3)`` the total momentum. The series stops at the first
    sample that is not ``finite`` (default: a non-finite energy), whose step is
    ``first_divergence_step`` (None when none). Over the samples before it, with
    ``e = E / N``:

    - ``energy_drift_per_atom``: ``|e(end) - e(0)|`` (eV/atom), and per step;
    - ``energy_drift_per_atom_per_ns``: ``|slope|`` of a least-squares line through
      ``e`` against the step, times ``1e6 / timestep_fs`` (eV/atom/ns);
    - ``energy_fluctuation_per_atom``: RMS residual of ``e`` about that line;
    - ``max_energy_excursion_per_atom``: ``max |e(t) - e(0)|``;
    - ``max_momentum_drift``: ``max |P(t) - P(0)|`` (here amu A/ps).

    Source: nvalchemi-toolkit 0.3.0, ``nvalchemi.dynamics.hooks.monitors``:
    ``StabilityMonitor._record`` and ``StabilityMonitor.metrics``.
    """
    steps = np.asarray(steps, dtype=float)
    total = np.asarray(total_eV, dtype=float)
    momenta = np.asarray(momenta, dtype=float).reshape(len(total), 3)
    finite = np.isfinite(total) if finite is None else np.asarray(finite, bool)
    bad = np.flatnonzero(~finite)
    first_divergence = int(steps[bad[0]]) if bad.size else None
    stop = bad[0] if bad.size else len(total)
    steps, total, momenta = steps[:stop], total[:stop], momenta[:stop]
    out = {"num_samples": int(len(steps)), "first_divergence_step": first_divergence,
           "timestep_fs": float(timestep_fs)}
    if len(steps) < 2 or steps[-1] - steps[0] <= 0:
        out.update({key: None for key in (
            "energy_drift_per_atom", "energy_drift_per_atom_per_step", "energy_drift_per_atom_per_ns",
            "energy_fluctuation_per_atom", "max_energy_excursion_per_atom", "max_momentum_drift")})
        return out
    per_atom = total / n_atoms
    centred = steps - steps.mean()
    deviation = per_atom - per_atom.mean()
    slope = float(centred @ deviation / (centred @ centred))
    residual = deviation - slope * centred
    drift = abs(per_atom[-1] - per_atom[0])
    out.update(
        first_step=int(steps[0]), last_step=int(steps[-1]),
        energy_drift_per_atom=float(drift),
        energy_drift_per_atom_per_step=float(drift / (steps[-1] - steps[0])),
        energy_drift_per_atom_per_ns=abs(slope) * FS_PER_NS / float(timestep_fs),
        energy_fluctuation_per_atom=float(np.sqrt(np.mean(residual**2))),
        max_energy_excursion_per_atom=float(np.max(np.abs(per_atom - per_atom[0]))),
        max_momentum_drift=float(np.max(np.linalg.norm(momenta - momenta[0], axis=1))),
    )
    return out
