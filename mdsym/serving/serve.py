"""``mdsym serve``: an i-PI socket client serving any mdsym model, raw or symmetrized.

i-PI sends positions and the cell but no atomic numbers, so ``--structure`` names
the structure i-PI simulates (species, masses, periodicity; by default the shipped
ethanol of the default model); its positions are not used. The PES plugin
``drivers/mdsym_pes.py`` serves the same ``serving_potential`` inside i-PI's own
drivers, with the same options and defaults. Several ``mdsym serve`` processes may connect to one i-PI server: i-PI
spreads its requests over them (beads, replicas, or the rotations of an
``<ffrotations>`` block), which is how a simulation goes beyond one machine (use
TCP: ``--address HOST --port PORT``).

``--correction raw|direct`` serves the outer force of i-PI's multiple time
stepping (``mdsym run --engine ipi --symmetrize mts:K+SPEC``): ``--symmetrize SPEC``
minus the raw model with SPEC's fixes (``raw``), or the conservative forces
symmetrized by SPEC minus the direct ones (``direct``, ``mts:K:direct``), energy,
forces and virial (``mdsym.serving.ipi_client``). An option rather than an ``mts:K`` spec:
the client has no time step, and what it serves is a potential of its own, the
same whatever K the run uses.

The rotational standard deviation over the quadrature goes back to i-PI as the
JSON extras ``{"energy_rot_std": eV, "forces_rot_std": eV/A}`` (the latter is the
RMS over atoms and components) whenever ``--symmetrize`` averages over rotations.
"""

import torch

from mdsym.core.defaults import (
    CORRECTIONS,
    DEFAULT_CORRECTION,
    DEFAULT_DEVICE,
    DEFAULT_FORCES,
    DEFAULT_MODEL,
    DEFAULT_SEED,
    DEFAULT_STRUCTURE,
    DEFAULT_SYMMETRIZE,
    DEFAULT_THREADS,
    structure_path,
)
from mdsym.core.errors import MdsymError
from mdsym.core.system import System, read_structure
from mdsym.core.threads import configure_threads
from mdsym.models import load_model
from mdsym.models.devices import dtype_name
from mdsym.models.memory import check_fits
from mdsym.serving.ipi_client import Potential, load_quadrature
from mdsym.symmetry.spec import SymmetrizeSpec


def serving_potential(model=DEFAULT_MODEL, structure=DEFAULT_STRUCTURE,
                      symmetrize=DEFAULT_SYMMETRIZE, forces=DEFAULT_FORCES, batch_size=None,
                      seed=DEFAULT_SEED, threads=DEFAULT_THREADS, quadrature=None,
                      device=DEFAULT_DEVICE, dtype=None, correction=DEFAULT_CORRECTION,
                      variant=None):
    """The ``Potential`` that ``mdsym serve`` and the PES plugin (``drivers/mdsym_pes.py``)
    serve, from their options, with the CLI's defaults: one place, so both compute the
    same thing. ``batch_size`` None: chosen from the model and the system; ``dtype``
    None: the model's own; ``correction`` (``CORRECTIONS``): what is subtracted, for
    the outer force of i-PI's multiple time stepping; ``variant``: a metatomic model's
    energy variant (``energy/NAME``; None: its plain energy). Also sets torch's threads
    (``configure_threads``: one thread below 256 atoms)."""
    atoms = read_structure(structure_path(structure))
    configure_threads(str(threads), len(atoms))
    served_forces, subtracted_forces = correction_forces(correction, forces, symmetrize, quadrature)

    def load(kind):
        return load_model(model, forces=kind, device=device, dtype=dtype, variant=variant)

    the_model = load(served_forces)
    subtract = None
    if subtracted_forces is not None:  # the same model object when the forces are the same
        subtract = the_model if subtracted_forces == served_forces else load(subtracted_forces)
    grid = load_quadrature(quadrature) if quadrature else None
    evaluations = len(grid) if grid is not None else SymmetrizeSpec.parse(symmetrize).evaluations_per_call()
    system = System.from_atoms(atoms)
    the_model.check_system(system)  # species first, then memory: one line before connecting
    check_fits(the_model, system, batch_size, evaluations)
    return Potential(the_model, atoms, symmetrize, batch_size=batch_size, seed=seed,
                     quadrature=grid, subtract=subtract)


def correction_forces(correction, forces, symmetrize, quadrature=None) -> tuple:
    """``(served, subtracted)`` forces (``--forces`` values) of a correction mode;
    ``subtracted`` None when nothing is subtracted. One line for what makes no sense."""
    correction = str(correction)
    if correction not in CORRECTIONS:
        raise MdsymError(f"correction must be one of {', '.join(CORRECTIONS)}, not {correction!r}")
    if correction == "none":
        return forces, None
    if quadrature is not None:
        raise MdsymError("a correction is served for a --symmetrize spec, not an explicit --quadrature")
    if correction == "raw":
        if SymmetrizeSpec.parse(symmetrize).mode == "none":
            raise MdsymError(f"--correction raw with --symmetrize {symmetrize} serves zero: name a "
                             "symmetrization to correct towards (o3:L, so3:L, o3:auto, random)")
        return forces, forces
    if forces == "conservative":
        raise MdsymError("--correction direct serves the conservative forces minus the direct "
                         "ones: drop --forces conservative")
    return "conservative", "direct"


def describe(potential, structure, quadrature=None) -> str:
    """One line saying what is served (model, symmetrization, structure, device, threads)."""
    spec = f"quadrature {quadrature}" if quadrature else str(potential.symmetrizer.spec)
    inner = potential.symmetrizer.inner
    if inner is not None:  # correction mode
        spec += f" minus {inner.model.name} [{inner.spec}]"
    threads = torch.get_num_threads()
    model = potential.model
    if model.variant is not None:
        spec = f"energy/{model.variant}, {spec}"
    return (f"serving {model.name} [{spec}] for the {len(potential.template)} atoms "
            f"of {structure} on {model.device} in {dtype_name(model.dtype)} "
            f"({threads} torch thread{'s' if threads > 1 else ''})")
