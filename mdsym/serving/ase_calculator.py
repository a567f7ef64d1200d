"""ASE calculator serving any mdsym model, raw or symmetrized."""

from ase.calculators.calculator import Calculator, all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from mdsym.core.errors import MdsymError
from mdsym.core.system import System
from mdsym.models.base import Model
from mdsym.symmetry.spec import SymmetrizeSpec
from mdsym.symmetry.symmetrized import SymmetrizedModel


class MdsymCalculator(Calculator):
    """Energy, forces and (periodic) stress of ``model`` under ``symmetrize``.

    ``symmetrize`` is a spec string (see ``mdsym.symmetry.spec``): ``none``,
    ``random``, ``o3:L``, ``so3:L``, ``o3:L:rotated``, ``o3:auto[:TOL[:N]]``,
    optionally ``+netforce`` / ``+nettorque`` (``mts:K`` is an integrator:
    ``mdsym.md.mts``).
    The rotational standard deviations over the quadrature are in ``results`` as
    ``energy_rot_std`` (eV), ``forces_rot_std`` (per component, eV/Angstrom) and
    ``stress_rot_std``.

    ``symmetrize``, ``batch_size`` and ``seed`` are ASE parameters: ``calc.set(symmetrize=
    "o3:3")`` rebuilds the symmetrizer and, as in every ASE calculator, drops the results
    so the next call computes them anew.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]
    default_parameters = {"symmetrize": "none", "batch_size": None, "seed": 0}

    def __init__(self, model: Model, symmetrize="none", batch_size=None, seed: int = 0, **kwargs):
        self.model = model
        self.symmetrizer = None
        super().__init__(symmetrize=symmetrize, batch_size=batch_size, seed=seed, **kwargs)

    def set(self, **kwargs) -> dict:
        changed = super().set(**kwargs)
        if changed:
            self.reset()  # every parameter changes the results (ASE leaves this to subclasses)
        if changed or self.symmetrizer is None:
            self.symmetrizer = self._symmetrized()
        return changed

    def _symmetrized(self) -> SymmetrizedModel:
        """The model under ``symmetrize``; a ``SymmetrizedModel`` given as the model is used
        as it is (wrapping it again would report the outer wrapper's std, zero)."""
        spec = SymmetrizeSpec.parse(self.parameters["symmetrize"])
        if isinstance(self.model, SymmetrizedModel):
            if str(spec) != "none":
                raise MdsymError(f"the model is already symmetrized ({self.model.spec}): give the "
                                 f"raw model with symmetrize={spec}, or this one with none")
            return self.model
        return SymmetrizedModel(self.model, spec, batch_size=self.parameters["batch_size"],
                                seed=self.parameters["seed"])

    @property
    def spec(self):
        return self.symmetrizer.spec

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        system = System.from_atoms(self.atoms)
        wanted = ["energy", "forces"]  # both from one evaluation; the stress only on request
        if "stress" in properties and system.periodic and self.model.has_stress:
            wanted.append("stress")
        results = self.symmetrizer(system, wanted)
        self.results = dict(results)
        self.results["free_energy"] = results["energy"]
        if "stress" in results:
            # a model that is not rotationally invariant can give an asymmetric
            # strain derivative: ASE's Voigt stress is its symmetric part
            # (order xx, yy, zz, yz, xz, xy); the full tensor stays in stress_3x3
            s = results["stress"]
            self.results["stress"] = full_3x3_to_voigt_6_stress(0.5 * (s + s.T))
            self.results["stress_3x3"] = s
