"""Multiple time stepping: the raw model every step, the symmetrization as an impulse every K.

Reversible RESPA (Tuckerman, Berne, Martyna, J. Chem. Phys. 97, 1990 (1992)), as
i-PI's ``<nmts>``. ASE has no RESPA integrator, so mdsym provides one, shaped as
ASE's ``VelocityVerlet`` (a ``MolecularDynamics`` whose ``step()`` advances one
inner step ``dt``), so that mdsym's one ASE MD loop (``mdsym.md.ase_engine``)
drives it with a thermo row per step and frames as for any run.

The force splits as ``F_sym = F_raw + dF``: the fast part ``F_raw`` is the raw
model (``atoms.calc``, with the spec's netforce/nettorque fixes), the slow part
``dF = F_sym - F_raw`` the correction towards the symmetrized model (energy and
forces; the stress too with ``with_stress``). One outer step of length ``K dt``::

    [thermostat K dt/2]   p += (K dt / 2) dF(x)
    K velocity-Verlet steps of dt with F_raw
    p += (K dt / 2) dF(x')   [thermostat K dt/2]

``dF(x')`` serves the closing kick of one outer step and the opening kick of the
next: an outer step costs K raw evaluations and one symmetrized call.

``mts:K:direct`` (Bigi, Langer, Ceriotti, "The dark side of the forces", 2024):
``atoms.calc`` gives the model's direct forces (no backward pass) and
``symmetrizer`` wraps the same model's conservative forces, symmetrized or not:
the dynamics is that of the conservative model, paid mostly at the direct price.

- ``K = 1`` is velocity Verlet with ``F_sym``; ``dF = 0`` (an exactly invariant
  model) is velocity Verlet with ``F_raw``, step for step.
- Energy: for a conservative model the integrator is symplectic and what it
  conserves is the symmetrized model's total energy ``E_sym + E_kin`` at outer
  steps, to ``O((K dt)^2)`` like velocity Verlet with step ``K dt`` applied to the
  (small) correction alone. Impulse MTS resonates when ``K dt`` nears half a
  period of the fastest vibration (C-H stretch, 11 fs: keep ``K dt`` below ~4 fs);
  the smaller ``dF``, the slower the resonant heating.
- Angular momentum: with a torque-free symmetrized model, the raw torque ``tau``
  acts at every inner step and the kicks take it back, so at outer steps ``L``
  differs from ``L(0)`` by the difference of two trapezoid rules for the integral
  of ``tau``: ``(K^2 - 1) dt^2 / 12 (tau'(t) - tau'(0))`` to leading order, bounded,
  no drift. Between outer steps ``L`` is off by up to about ``(K dt / 2) |tau|``.
  ``+nettorque`` removes the raw torque at every step: ``L`` is then conserved at
  every step (the drift of velocity Verlet conserves it exactly).

thermo.csv under ``mts:K`` (``reported_results``): ``potential_eV`` is the raw
energy plus the correction of the latest outer step, ``E_raw(x) + dE(x_o)``, and
the forces likewise ``F_raw(x) + dF(x_o)``. On rows with ``step % K == 0`` these
are the symmetrized model's energy and forces and ``conserved_eV`` is its total
energy (minus what a thermostat exchanged): the quantity to judge drift on.
Between outer steps the held correction lets ``conserved_eV`` wander by the
slow work not yet paid back, about ``(K dt / 2) |dF . v|``. Frames are written as
in any run; with ``--stride`` a multiple of ``K`` every frame is an outer step.

NVT: the thermostat acts at the outer level, for ``K dt / 2`` before the opening
and after the closing kick (as i-PI's ``<nmts>``); ``thermostat`` is a callable
that updates the velocities (ASE's ``Bussi.scale_velocities`` or
``LangevinBAOAB._BAOAB_OU`` of an object built with time step ``K dt / 2``); the
kinetic energy it exchanges is added up in ``transferred_energy``.
"""

import numpy as np
from ase.md.verlet import VelocityVerlet

from mdsym.core.errors import MdsymError
from mdsym.core.system import System
from mdsym.symmetry.symmetrized import SymmetrizedModel


class MultipleTimeStepVerlet(VelocityVerlet):
    """Velocity Verlet with ``atoms.calc`` (the raw model) inside, the correction
    towards ``symmetrizer`` as an impulse every ``interval`` steps.

    ``phase`` is the number of inner steps already done in the current outer step
    (``step % K`` when a run resumes) and ``correction`` the correction held since
    its last outer point (``state()`` gives both for a checkpoint).
    """

    def __init__(self, atoms, timestep, symmetrizer: SymmetrizedModel, interval: int, thermostat=None,
                 phase: int = 0, correction: dict = None, with_stress: bool = False, **kwargs):
        if int(interval) != interval or interval < 1:
            raise MdsymError(f"the multiple time step interval must be a whole number >= 1, got {interval}")
        super().__init__(atoms, timestep, **kwargs)
        self.symmetrizer = symmetrizer
        self.interval = int(interval)
        self.thermostat = thermostat
        self.phase = int(phase) % self.interval
        self.correction = correction
        self.with_stress = with_stress
        self.symmetrized = None  # the latest symmetrized results (rotational std)
        self.transferred_energy = 0.0

    def evaluate_correction(self) -> dict:
        """``dE``, ``dF`` (and ``dS``) at the current positions: symmetrized minus raw."""
        atoms = self.atoms
        properties = ["energy", "forces"]
        if self.with_stress and atoms.pbc.all():
            properties.append("stress")
            atoms.get_stress()
        atoms.get_forces()  # the raw model at x: cached after an inner step
        raw = atoms.calc.results
        symmetrized = self.symmetrizer(System.from_atoms(atoms), properties, inner=raw)
        correction = {key: symmetrized[f"correction_{key}"] for key in ("energy", "forces", "stress")
                      if f"correction_{key}" in symmetrized}
        self.symmetrized = symmetrized
        self.correction = correction
        return correction

    def _kick(self, forces, duration) -> None:
        self.atoms.set_momenta(self.atoms.get_momenta() + duration * forces, apply_constraint=False)

    def _thermostat(self) -> None:
        if self.thermostat is None:
            return
        before = self.atoms.get_kinetic_energy()
        self.thermostat()
        self.transferred_energy += self.atoms.get_kinetic_energy() - before

    def step(self, forces=None):
        half_outer = 0.5 * self.interval * self.dt
        if self.phase == 0:
            self._thermostat()
            correction = self.correction if self.correction is not None else self.evaluate_correction()
            self._kick(correction["forces"], half_outer)
        forces = super().step(forces)  # velocity Verlet with the raw model
        self.phase = (self.phase + 1) % self.interval
        if self.phase == 0:
            self._kick(self.evaluate_correction()["forces"], half_outer)
            self._thermostat()
        return forces

    def reported_results(self) -> dict:
        """Energy and forces for thermo rows and frames (see the module docstring)."""
        if self.correction is None:
            self.evaluate_correction()
        self.atoms.get_forces()
        raw = self.atoms.calc.results
        nan = float("nan")
        results = {
            "energy": raw["energy"] + self.correction["energy"],
            "forces": raw["forces"] + self.correction["forces"],
            "energy_rot_std": nan, "forces_rot_std": np.full_like(raw["forces"], nan),
        }
        if self.symmetrized is not None:
            results["energy_rot_std"] = self.symmetrized["energy_rot_std"]
            results["forces_rot_std"] = self.symmetrized["forces_rot_std"]
        return results

    def state(self) -> dict:
        """What a checkpoint needs to resume mid outer step: the held correction."""
        if self.correction is None:
            self.evaluate_correction()
        return {"energy": float(self.correction["energy"]),
                "forces": np.array(self.correction["forces"])}
