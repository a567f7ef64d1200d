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
forces and virial (``mdsym.ipi.client``). An option rather than an ``mts:K`` spec:
the client has no time step, and what it serves is a potential of its own, the
same whatever K the run uses.

The rotational standard deviation over the quadrature goes back to i-PI as the
JSON extras ``{"energy_rot_std": eV, "forces_rot_std": eV/A}`` (the latter is the
RMS over atoms and components) whenever ``--symmetrize`` averages over rotations.
"""

import click

from .cli_support import (DEFAULT_FORCES, DEFAULT_MODEL, DEFAULT_SEED, DEFAULT_STRUCTURE,
                              DEFAULT_SYMMETRIZE, DEFAULT_THREADS, THREADS_HELP, YES_HELP,
                              check_cost, configure_threads, one_line_errors, structure_path)
from .ipi.client import CORRECTIONS, DEFAULT_CORRECTION
from .models.devices import DEFAULT_DEVICE, DEVICE_HELP, DTYPE_HELP, DTYPES, dtype_name


def serving_potential(model=DEFAULT_MODEL, structure=DEFAULT_STRUCTURE,
                      symmetrize=DEFAULT_SYMMETRIZE, forces=DEFAULT_FORCES, batch_size=None,
                      seed=DEFAULT_SEED, threads=DEFAULT_THREADS, quadrature=None,
                      device=DEFAULT_DEVICE, dtype=None, correction=DEFAULT_CORRECTION):
    """The ``Potential`` that ``mdsym serve`` and the PES plugin (``drivers/mdsym_pes.py``)
    serve, from their options, with the CLI's defaults: one place, so both compute the
    same thing. ``batch_size`` None: chosen from the model and the system; ``dtype``
    None: the model's own; ``correction`` (``CORRECTIONS``): what is subtracted, for
    the outer force of i-PI's multiple time stepping. Also sets torch's threads
    (``configure_threads``: one thread below 256 atoms)."""
    from .ipi.client import Potential, load_quadrature
    from .models import load_model
    from .system import read_structure

    atoms = read_structure(structure_path(structure))
    configure_threads(str(threads), len(atoms))
    served_forces, subtracted_forces = correction_forces(correction, forces, symmetrize, quadrature)

    def load(kind):
        return load_model(model, forces=kind, device=device, dtype=dtype)

    the_model = load(served_forces)
    subtract = None
    if subtracted_forces is not None:  # the same model object when the forces are the same
        subtract = the_model if subtracted_forces == served_forces else load(subtracted_forces)
    grid = load_quadrature(quadrature) if quadrature else None
    return Potential(the_model, atoms, symmetrize, batch_size=batch_size, seed=seed,
                     quadrature=grid, subtract=subtract)


def correction_forces(correction, forces, symmetrize, quadrature=None) -> tuple:
    """``(served, subtracted)`` forces (``--forces`` values) of a correction mode;
    ``subtracted`` None when nothing is subtracted. One line for what makes no sense."""
    from .errors import MdsymError
    from .ipi.client import CORRECTIONS
    from .symmetrize import SymmetrizeSpec

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
    import torch

    spec = f"quadrature {quadrature}" if quadrature else str(potential.symmetrizer.spec)
    if potential.subtracted is not None:  # correction mode
        spec += f" minus {potential.subtracted.model.name} [{potential.subtracted.spec}]"
    threads = torch.get_num_threads()
    model = potential.model
    return (f"serving {model.name} [{spec}] for the {len(potential.template)} atoms "
            f"of {structure} on {model.device} in {dtype_name(model.dtype)} "
            f"({threads} torch thread{'s' if threads > 1 else ''})")


@click.command()
@click.option("--model", "-m", default=DEFAULT_MODEL, show_default=True,
              help="Shipped model name, model file (.pt) or analytic[:TERMS].")
@click.option("--structure", "-s", default=str(DEFAULT_STRUCTURE), show_default=True,
              help="The structure i-PI simulates (i-PI sends no species): a file readable "
                   "by ASE or a shipped structure name.")
@click.option("--symmetrize", default=DEFAULT_SYMMETRIZE, show_default=True,
              help="Symmetrization spec: none, random, o3:L, so3:L, +netforce, +nettorque.")
@click.option("--quadrature", type=click.Path(dir_okay=False),
              help="Average over this explicit grid instead (.npz with rotations (G,3,3) "
                   "acting as r' = r R^T, and weights (G,)), e.g. the grid of an i-PI "
                   "<ffrotations> block; --symmetrize may then only add netforce/nettorque.")
@click.option("--forces", type=click.Choice(["auto", "conservative", "direct"]),
              default=DEFAULT_FORCES, show_default=True,
              help="Conservative (autograd) or direct forces.")
@click.option("--correction", type=click.Choice(list(CORRECTIONS)), default=DEFAULT_CORRECTION,
              show_default=True,
              help="Serve a difference, the outer force of i-PI multiple time stepping (mdsym "
                   "run --engine ipi --symmetrize mts:K+SPEC): raw: --symmetrize SPEC minus "
                   "the raw model with SPEC's netforce/nettorque fixes; direct: the "
                   "conservative forces symmetrized by SPEC minus the direct forces (mts:K:direct).")
@click.option("--unix", "unix", metavar="NAME",
              help="Connect to i-PI's unix socket NAME (the file /tmp/ipi_NAME, or NAME "
                   "itself if it contains a '/').")
@click.option("--address", default="localhost", show_default=True,
              help="Host of i-PI's TCP socket (with --port).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port of i-PI's TCP socket.")
@click.option("--sockets-prefix", default="/tmp/ipi_", show_default=True,
              help="i-PI's <simulation sockets_prefix> for unix socket names.")
@click.option("--batch-size", default=None, type=click.IntRange(min=1),
              help="Rotated copies evaluated per model call when symmetrizing (default: "
                   "chosen from the model and size; i-PI's own <batch_size> is read "
                   "from its INIT message).")
@click.option("--seed", default=DEFAULT_SEED, show_default=True, type=click.IntRange(min=0),
              help="Seed of the random rotations (--symmetrize random).")
@click.option("--wait", default=0.0, show_default=True, type=click.FloatRange(min=0),
              help="Keep trying to connect for this many seconds.")
@click.option("--threads", default=DEFAULT_THREADS, show_default=True, help=THREADS_HELP)
@click.option("--device", default=DEFAULT_DEVICE, show_default=True, help=DEVICE_HELP)
@click.option("--dtype", type=click.Choice(list(DTYPES)), default=None, help=DTYPE_HELP)
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
@click.option("--yes", "-y", is_flag=True, help=YES_HELP)
@one_line_errors
def serve(model, structure, symmetrize, quadrature, forces, correction, unix, address, port,
          sockets_prefix, batch_size, seed, wait, threads, device, dtype, quiet, yes):
    """Serve a model to an i-PI server over a socket (unix or TCP) until it says EXIT.

    Exits 0 after i-PI's EXIT; non-zero, with one line, when i-PI closes the
    connection without it (killed, crashed, or refusing the client before INIT)."""
    from .errors import MdsymError
    from .ipi.client import Client, log_to_stderr
    from .symmetrize import SymmetrizeSpec

    if unix and port is not None:
        raise MdsymError("give either --unix NAME or --port PORT, not both")
    if not unix and port is None:
        raise MdsymError("give --unix NAME, or --port PORT (and --address HOST) to reach i-PI")
    check_cost(SymmetrizeSpec.parse(symmetrize).evaluations_per_call(), yes,
               f"--symmetrize {symmetrize}")
    potential = serving_potential(model, structure, symmetrize, forces, batch_size, seed,
                                  threads, quadrature, device=device, dtype=dtype,
                                  correction=correction)
    log = (lambda message: None) if quiet else log_to_stderr()
    client = Client(potential, unix=unix, address=address, port=port,
                    sockets_prefix=sockets_prefix, wait=wait, log=log)
    log(f"connected; {describe(potential, structure, quadrature)}")
    client.serve()  # i-PI closing without EXIT: ServerClosed, one line, exit 2
    log(f"i-PI said EXIT after {potential.calls} evaluations; bye")
