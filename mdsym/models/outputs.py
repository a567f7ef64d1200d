"""Which outputs of a metatomic model mdsym uses: the energy variant, direct forces and
the energy uncertainty, named as metatomic and i-PI name them.

A metatomic model declares its outputs in ``capabilities.outputs``. Foundation models
such as PET-MAD and UPET declare, besides ``energy``:

- energy **variants** ``energy/NAME`` (several levels of theory or heads in one file;
  metatomic's ``pick_output``, metatomic-ase's ``variants={"energy": NAME}`` and
  i-PI's ``energy_variant=NAME``); ``--variant NAME`` picks ``energy/NAME``, and the
  other outputs of that variant, as metatomic-ase and i-PI do:
  ``non_conservative_force/NAME`` and ``energy_uncertainty/NAME`` when the model has
  them. Without ``--variant``, the plain ``energy`` (a model whose energies are all
  variants is refused, with the list);
- ``non_conservative_force`` (direct forces; ``--forces direct``, ``mts:K:direct``;
  ``non_conservative_forces``, the older name, is read too);
- ``energy_uncertainty`` (an estimate of the model's own error, e.g. LLPR): not
  required; when the model has it, every evaluation also returns it (per structure,
  eV) as ``energy_uncertainty``.
"""

from dataclasses import dataclass

import numpy as np

from mdsym.core.defaults import FORCES
from mdsym.core.errors import MdsymError

#: the direct-force output, under its metatomic name and its older one
DIRECT_FORCE_KEYS = ("non_conservative_force", "non_conservative_forces")
UNCERTAINTY_KEY = "energy_uncertainty"


@dataclass(frozen=True)
class Outputs:
    """The output keys one model evaluation asks for."""

    energy: str  # "energy" or "energy/NAME"
    direct_forces: str | None  # the direct-force key of the variant, if the model has one
    uncertainty: str | None  # the energy-uncertainty key of the variant, if the model has one
    forces_kind: str  # "conservative" or "direct": what ``forces`` resolved to
    variant: str | None = None


def normalise_variant(variant) -> str | None:
    """``NAME`` from ``NAME`` or ``energy/NAME``; None (or empty) for the default."""
    if variant is None:
        return None
    text = str(variant).strip()
    text = text.removeprefix("energy/")
    return text or None


def variants_of(outputs, base: str = "energy") -> list:
    """The variant names the model declares for ``base`` (``energy/NAME`` -> NAME)."""
    return sorted(key.split("/", 1)[1] for key in outputs if key.startswith(f"{base}/"))


def _declared(outputs) -> str:
    names = variants_of(outputs)
    listed = ", ".join(names) if names else "none"
    default = "plain energy" if "energy" in outputs else "no plain energy"
    return f"its energy variants: {listed}; {default}"


def select_outputs(outputs, name: str, variant=None, forces: str = "auto") -> Outputs:
    """The outputs of ``variant`` (None: the default) that ``forces`` asks for; one clear
    line for a variant the model does not declare or forces it cannot give."""
    if forces not in FORCES:
        raise MdsymError(f"forces must be {', '.join(FORCES)}, got {forces!r}")
    variant = normalise_variant(variant)
    if variant is None:
        if "energy" not in outputs:
            if variants_of(outputs):
                raise MdsymError(f"model {name} has no default energy: choose one with --variant "
                                 f"({_declared(outputs)})")
            raise MdsymError(f"metatomic model {name} has no 'energy' output")
        energy, suffix = "energy", ""
    else:
        energy, suffix = f"energy/{variant}", f"/{variant}"
        if energy not in outputs:
            raise MdsymError(f"model {name} does not declare the energy variant {variant!r} "
                             f"({_declared(outputs)})")
    direct = next((k + suffix for k in DIRECT_FORCE_KEYS if k + suffix in outputs), None)
    uncertainty = UNCERTAINTY_KEY + suffix if UNCERTAINTY_KEY + suffix in outputs else None
    if forces == "direct" and direct is None:
        other = [k for k in outputs if k.split("/")[0] in DIRECT_FORCE_KEYS]
        found = f" (it has {', '.join(sorted(other))})" if other else ""
        raise MdsymError(f"model {name} has no non_conservative_force{suffix} output{found}: "
                         "it gives conservative forces only (drop --forces direct / :direct)")
    use_direct = direct is not None if forces == "auto" else forces == "direct"
    return Outputs(energy, direct if use_direct else None, uncertainty,
                   "direct" if use_direct else "conservative", variant)


def own_figures(model, system) -> dict:
    """What a model says of itself at ``system``: the variant it uses and, when it
    declares one, its energy uncertainty (eV; one evaluation of the unrotated system)."""
    found = {"variant": model.variant}
    if "energy_uncertainty" in model.extra_outputs:
        found["energy_uncertainty_eV"] = float(
            model.evaluate(system, np.eye(3)[None], ("energy",))["energy_uncertainty"][0])
    return found
