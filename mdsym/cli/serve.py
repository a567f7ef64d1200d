"""``mdsym serve``: an i-PI socket client serving any mdsym model (``mdsym.serving.serve``)."""

import click

from mdsym.cli.options import check_cost, one_line_errors
from mdsym.core.defaults import (
    CORRECTIONS,
    DEFAULT_CORRECTION,
    DEFAULT_DEVICE,
    DEFAULT_FIRST_MESSAGE_TIMEOUT_S,
    DEFAULT_FORCES,
    DEFAULT_MODEL,
    DEFAULT_SEED,
    DEFAULT_SOCKETS_PREFIX,
    DEFAULT_STRUCTURE,
    DEFAULT_SYMMETRIZE,
    DEFAULT_THREADS,
    DEVICE_HELP,
    DTYPE_HELP,
    DTYPE_NAMES,
    FORCES,
    THREADS_HELP,
    VARIANT_HELP,
    YES_HELP,
)
from mdsym.core.errors import MdsymError


@click.command()
@click.option("--model", "-m", default=DEFAULT_MODEL, show_default=True,
              help="Shipped model name, model file (.pt) or analytic[:TERMS].")
@click.option("--structure", "-s", default=DEFAULT_STRUCTURE, show_default=True,
              help="The structure i-PI simulates (i-PI sends no species): a file readable "
                   "by ASE or a shipped structure name.")
@click.option("--symmetrize", default=DEFAULT_SYMMETRIZE, show_default=True,
              help="Symmetrization spec: none, random, o3:L, so3:L, +netforce, +nettorque.")
@click.option("--quadrature", type=click.Path(dir_okay=False),
              help="Average over this explicit grid instead (.npz with rotations (G,3,3) "
                   "acting as r' = r R^T, and weights (G,)), e.g. the grid of an i-PI "
                   "<ffrotations> block; --symmetrize may then only add netforce/nettorque.")
@click.option("--forces", type=click.Choice(FORCES),
              default=DEFAULT_FORCES, show_default=True,
              help="Conservative (autograd) or direct forces.")
@click.option("--correction", type=click.Choice(CORRECTIONS), default=DEFAULT_CORRECTION,
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
@click.option("--sockets-prefix", default=DEFAULT_SOCKETS_PREFIX, show_default=True,
              help="i-PI's <simulation sockets_prefix> for unix socket names.")
@click.option("--batch-size", default=None, type=click.IntRange(min=1),
              help="Rotated copies evaluated per model call when symmetrizing (default: "
                   "chosen from the model and size; i-PI's own <batch_size> is read "
                   "from its INIT message).")
@click.option("--seed", default=DEFAULT_SEED, show_default=True, type=click.IntRange(min=0),
              help="Seed of the random rotations (--symmetrize random).")
@click.option("--wait", default=0.0, show_default=True, type=click.FloatRange(min=0),
              help="Keep trying to connect for this many seconds.")
@click.option("--first-message-timeout", default=DEFAULT_FIRST_MESSAGE_TIMEOUT_S, show_default=True,
              type=click.FloatRange(min=0, min_open=True),
              help="Seconds to wait for the server's first message after connecting (a listener "
                   "that never speaks is not i-PI); waits between requests are not limited.")
@click.option("--threads", default=DEFAULT_THREADS, show_default=True, help=THREADS_HELP)
@click.option("--device", default=DEFAULT_DEVICE, show_default=True, help=DEVICE_HELP)
@click.option("--dtype", type=click.Choice(DTYPE_NAMES), default=None, help=DTYPE_HELP)
@click.option("--variant", default=None, help=VARIANT_HELP)
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
@click.option("--yes", "-y", is_flag=True, help=YES_HELP)
@one_line_errors
def serve(model, structure, symmetrize, quadrature, forces, correction, unix, address, port,
          sockets_prefix, batch_size, seed, wait, first_message_timeout, threads, device, dtype,
          variant, quiet, yes):
    """Serve a model to an i-PI server over a socket (unix or TCP) until it says EXIT.

    Exits 0 after i-PI's EXIT; non-zero, with one line, when i-PI closes the
    connection without it (killed, crashed, or refusing the client before INIT)."""
    # start-up time: the model and its client load only when the command runs
    from mdsym.serving.ipi_client import Client, log_to_stderr
    from mdsym.serving.serve import describe, serving_potential
    from mdsym.symmetry.spec import SymmetrizeSpec

    if unix and port is not None:
        raise MdsymError("give either --unix NAME or --port PORT, not both")
    if not unix and port is None:
        raise MdsymError("give --unix NAME, or --port PORT (and --address HOST) to reach i-PI")
    check_cost(SymmetrizeSpec.parse(symmetrize).evaluations_per_call(), yes,
               f"--symmetrize {symmetrize}")
    potential = serving_potential(model, structure, symmetrize, forces, batch_size, seed,
                                  threads, quadrature, device=device, dtype=dtype,
                                  correction=correction, variant=variant)
    log = (lambda message: None) if quiet else log_to_stderr()
    client = Client(potential, unix=unix, address=address, port=port,
                    sockets_prefix=sockets_prefix, wait=wait, log=log,
                    first_message_timeout=first_message_timeout)
    log(f"connected; {describe(potential, structure, quadrature)}")
    client.serve()  # i-PI closing without EXIT: ServerClosed, one line, exit 2
    log(f"i-PI said EXIT after {potential.calls} evaluations; bye")
