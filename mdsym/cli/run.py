"""``mdsym run``: MD with any model, raw or symmetrized, in ASE, i-PI or LAMMPS, into a run directory.

Every option but --out, --resume, --progress and --yes sets the ``RunConfig`` field of its
destination's name, and takes that field's default (``RunConfig.default``): the help shows
what a run does.
"""

import sys

import click

from mdsym.cli.options import check_cost, given, one_line_errors
from mdsym.core.defaults import (
    DEFAULT_RECHECK_CALLS,
    DEFAULT_TOLERANCE_EVA,
    DEVICE_HELP,
    DTYPE_HELP,
    THREADS_HELP,
    VARIANT_HELP,
    YES_HELP,
)
from mdsym.core.errors import MdsymError
from mdsym.core.references import model_reference, structure_reference
from mdsym.md.config import AVERAGE_IN_HELP, EXECUTION_FIELDS, RunConfig

POSITIVE = click.FloatRange(min=0, min_open=True)
NON_NEGATIVE = click.FloatRange(min=0)


def _default(name):
    """The default of ``mdsym run``'s option for RunConfig field ``name``: the field's."""
    return RunConfig.default(name)


def _choice(name):
    return click.Choice(list(RunConfig.choices(name)))


# --no-connectivity sets the field connectivity
@click.command()
@click.option("--model", "-m", default=_default("model"), show_default=True,
              help="Shipped model name, model file (.pt) or analytic[:TERMS].")
@click.option("--structure", "-s", default=_default("structure"), show_default=True,
              help="Initial structure (ASE-readable; velocities used if present), or a shipped name.")
@click.option("--engine", type=_choice("engine"), default=_default("engine"), show_default=True)
@click.option("--ensemble", type=_choice("ensemble"), default=_default("ensemble"), show_default=True)
@click.option("--thermostat", type=_choice("thermostat"), default=_default("thermostat"),
              show_default=True, help="NVT thermostat: stochastic velocity rescaling (Bussi) or Langevin.")
@click.option("--timestep", "timestep_fs", default=_default("timestep_fs"), show_default=True,
              type=POSITIVE, help="fs")
@click.option("--steps", default=_default("steps"), show_default=True, type=click.IntRange(min=1))
@click.option("--temperature", "temperature_K", default=_default("temperature_K"), show_default=True,
              type=NON_NEGATIVE, help="K: thermostat target (nvt) and initial velocities.")
@click.option("--tau", "thermostat_tau_fs", default=_default("thermostat_tau_fs"), show_default=True,
              type=POSITIVE, help="Thermostat time constant, fs.")
@click.option("--seed", default=_default("seed"), show_default=True, type=click.IntRange(min=0))
@click.option("--symmetrize", default=_default("symmetrize"), show_default=True,
              help="none, random, o3:L, so3:L, o3:L:rotated (grid turned at random every step), "
                   f"o3:auto[:TOL[:N]] (lowest degree with predicted force error < TOL, default "
                   f"{DEFAULT_TOLERANCE_EVA} eV/A, re-checked every N = {DEFAULT_RECHECK_CALLS} "
                   "calls), [mts:K[:direct]+] (raw or direct forces every step, the correction to "
                   "the symmetrized or conservative ones every K steps; i-PI engine: i-PI's "
                   "<nmts>, --steps and --stride multiples of K, thermo rows at outer steps), "
                   "[+netforce][+nettorque].")
@click.option("--forces", type=_choice("forces"), default=_default("forces"), show_default=True)
@click.option("--batch-size", default=_default("batch_size"), type=click.IntRange(min=1),
              help="Rotated copies per model call (default: chosen from the model and size).")
@click.option("--stride", default=_default("stride"), show_default=True, type=click.IntRange(min=1),
              help="Steps between frames.")
@click.option("--out", "-o", type=click.Path(file_okay=False), default=None,
              help="Run directory (default runs/run-DATE-TIME).")
@click.option("--resume", type=click.Path(file_okay=False, exists=True), default=None,
              help="Continue the run in this directory (with --steps: extend it).")
@click.option("--socket", type=_choice("socket"), default=_default("socket"), show_default=True,
              help="i-PI engine: socket kind.")
@click.option("--port", type=click.IntRange(1, 65535), default=_default("port"),
              help="i-PI engine: TCP port.")
@click.option("--address", default=_default("address"),
              help="i-PI engine: the unix socket's name, or with --socket tcp the host i-PI "
                   "listens on (0.0.0.0: every interface, for drivers on other hosts).")
@click.option("--drivers", default=_default("drivers"), show_default=True, type=click.IntRange(min=0),
              help="i-PI engine: local 'mdsym serve' clients; i-PI spreads the beads (and with "
                   "--average-in ipi the rotations) over them and over clients started by hand "
                   "on this or other hosts; 0: only those (needs a fixed --port or --address). "
                   "Under mts:K they serve the raw model, and one more client serves the "
                   "correction.")
@click.option("--average-in", type=_choice("average_in"), default=_default("average_in"),
              show_default=True, help=AVERAGE_IN_HELP)
@click.option("--beads", default=_default("beads"), show_default=True, type=click.IntRange(min=1),
              help="i-PI engine: path-integral beads (1: classical MD).")
@click.option("--min-distance", "min_distance_A", default=_default("min_distance_A"), show_default=True,
              type=NON_NEGATIVE, help="Monitor: stop when two atoms come closer (Angstrom; 0 disables).")
@click.option("--max-temperature-factor", default=_default("max_temperature_factor"), show_default=True,
              type=NON_NEGATIVE,
              help="Monitor: stop above this multiple of the target temperature (0 disables).")
@click.option("--no-connectivity", "connectivity", flag_value=False, default=_default("connectivity"),
              help="Monitor: do not watch bonds of molecules.")
@click.option("--threads", default=_default("threads"), show_default=True, help=THREADS_HELP)
@click.option("--device", default=_default("device"), show_default=True, help=DEVICE_HELP)
@click.option("--dtype", type=_choice("dtype"), default=_default("dtype"), help=DTYPE_HELP)
@click.option("--variant", default=_default("variant"), help=VARIANT_HELP)
@click.option("--progress/--no-progress", default=None,
              help="A progress bar [default: only on a terminal].")
@click.option("--yes", "-y", is_flag=True, help=YES_HELP)
@one_line_errors
def run(resume, out, progress, yes, **options):
    """Run MD with any model, raw or symmetrized, in ASE, i-PI or LAMMPS."""
    # start-up time: the engines load only when a run starts
    from mdsym.core.progress import Progress
    from mdsym.md.run import default_out, read_config, resume_md, run_md

    if resume:
        if out is not None:
            raise MdsymError("--resume continues the run in its own directory: drop --out")
        steps = options["steps"] if given("steps") else None
        changes = resumed_changes(read_config(resume), options)
        bar = Progress(steps or read_config(resume).steps, "MD", enabled=progress)
        try:
            info = resume_md(resume, steps=steps, progress=bar, changes=changes)
        finally:
            bar.close()
        out = resume
    else:
        options.update(_whole_outer_step_defaults(options))
        config = RunConfig(**dict(options, structure=structure_reference(options["structure"]),
                                  model=model_reference(options["model"])))
        check_cost(_evaluations_per_step(config), yes, f"--symmetrize {config.symmetrize}")
        out = out or str(default_out())
        bar = Progress(config.steps, "MD", enabled=progress)
        try:
            info = run_md(config, out, progress=bar)
        finally:
            bar.close()
    for note in info.get("notes", []):
        click.echo(f"note: {note}", err=True)
    speed = f"{info['steps_per_s']:.1f} steps/s" if info.get("steps_per_s") else ""
    click.echo(f"{info['status']}: {info.get('steps_done')} steps in {out} {speed}")
    if info["status"] == "failed":
        click.echo(f"mdsym: run failed after {info.get('time_to_failure_fs')} fs: {info['reason']}",
                   err=True)
        sys.exit(3)
    if info["status"] == "interrupted":
        sys.exit(130)


def _evaluations_per_step(config) -> int:
    """Model evaluations per force call: the spec's, or i-PI's grid when i-PI averages."""
    if config.average_in == "ipi":
        from mdsym.md.ipi_engine.rotation_grid import rotation_grid  # start-up time

        return len(rotation_grid(config).quadrature)
    return config.symmetrize.evaluations_per_call()


def _whole_outer_step_defaults(options) -> dict:
    """The i-PI engine runs ``mts:K`` in whole outer steps of K (``RunConfig`` refuses
    --steps and --stride that are not multiples of K): --steps and --stride the user
    did not give are rounded up to the next multiple of K instead of refused."""
    from mdsym.symmetry.spec import SymmetrizeSpec  # start-up time (scipy)

    k = SymmetrizeSpec.parse(options["symmetrize"]).mts_interval
    if options["engine"] != "ipi" or k < 2:
        return {}
    return {name: -(-options[name] // k) * k for name in ("steps", "stride") if not given(name)}


def resumed_changes(config: RunConfig, options: dict) -> dict:
    """The execution settings the user gave anew to ``--resume`` (``EXECUTION_FIELDS``),
    as fields to change; one line for a setting that defines the physics and differs from
    the run's own (those of a resumed run are the run's)."""
    changes = {}
    for name, value in options.items():
        if name == "steps" or not given(name):
            continue
        if name == "structure":
            value = structure_reference(value)
        elif name == "model":
            value = model_reference(value)
        new = config.replace(**{name: value}).to_json()[name]
        old = config.to_json()[name]
        if new == old:
            continue
        if name not in EXECUTION_FIELDS:
            option = RunConfig.option(name)
            raise MdsymError(f"{option} {new} differs from the run's {old}: a resumed run keeps the "
                             f"settings that define its physics; start a new run with --out")
        changes[name] = value
    return changes
