"""``mdsym export``: a model symmetrized as a spec says, written as one metatomic ``.pt``
file that LAMMPS, i-PI, metatomic-ase and TorchSim load (``mdsym.serving.export``)."""

import click

from mdsym.cli.options import one_line_errors
from mdsym.core.defaults import DEFAULT_SEED, DTYPE_NAMES


@click.command("export")
@click.argument("model")
@click.option("--symmetrize", required=True,
              help="o3:L, so3:L (mdsym's cheapest grid exact to degree L), o3:L:rotated (the "
                   "grid turned by a fresh rotation each evaluation, drawn inside the model "
                   "from --seed and a call counter) or random.")
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False),
              help="The .pt file to write.")
@click.option("--correction", type=click.Choice(("none", "raw", "direct")), default="none",
              show_default=True,
              help="Export the outer force of multiple time stepping instead: raw: the "
                   "symmetrized energy minus the raw one (forces by autograd); direct: a "
                   "non_conservative_force output, the symmetrized conservative forces minus "
                   "the direct ones (load it with the engine's non-conservative option).")
@click.option("--dtype", type=click.Choice(DTYPE_NAMES), default=None,
              help="Precision of the exported model (default: the model's own; a float32 "
                   "metatomic model can be exported in float64).")
@click.option("--batch-size", default=None, type=click.IntRange(min=1),
              help="Rotated copies per call of the wrapped model (default: 8, or the grid size).")
@click.option("--seed", default=DEFAULT_SEED, show_default=True, type=click.IntRange(min=0),
              help="Seed of the rotations of o3:L:rotated and random.")
@click.option("--force", is_flag=True, help="Replace OUT if it exists.")
@one_line_errors
def export(model, symmetrize, out, correction, dtype, batch_size, seed, force):
    """Write MODEL symmetrized by --symmetrize as a metatomic model file (TorchScript).

    MODEL: a shipped model name, a metatomic or native TorchScript .pt file, or
    analytic[:TERMS]."""
    # start-up time: torch and metatomic load only when the command runs
    from mdsym.serving.export import export_symmetrized

    info = export_symmetrized(model, symmetrize, out, correction=correction, dtype=dtype,
                              batch_size=batch_size, seed=seed, force=force)
    what = "" if correction == "none" else f" minus the raw model ({correction})"
    click.echo(f"wrote {out}: {info['model']} averaged over {info['spec']}{what}, grid "
               f"{info['grid']} ({info['grid-size']} rotations, batches of {info['batch-size']}), "
               f"{info['dtype']}, seed {info['seed']}, mdsym {info['version']}")
