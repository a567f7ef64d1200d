"""The ``mdsym`` command line (click). Every bad input is one line and exit 2."""

import json
import sys

import click

from .cli_support import (  # noqa: F401  (re-exported: tests and benchmarks use them)
    DEFAULT_MODEL,
    DEFAULT_STRUCTURE,
    STRUCTURES,
    THREADS_HELP,
    YES_HELP,
    OneLineGroup,
    check_cost,
    configure_threads,
    one_line_errors,
    structure_path,
)
from .auto_degree import DEFAULT_RECHECK_CALLS, DEFAULT_TOLERANCE_EVA
from .errors import MdsymError
from .models.devices import DEFAULT_DEVICE, DEVICE_HELP, DTYPE_HELP, DTYPES, dtype_name
from .metrics import MAX_CONTENT_DEGREE
from .run_config import AVERAGE_IN_HELP, RunConfig

POSITIVE = click.FloatRange(min=0, min_open=True)
NON_NEGATIVE = click.FloatRange(min=0)


@click.group(cls=OneLineGroup)
@click.version_option(package_name="mdsym")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
def main(debug):
    """Serve unconstrained ML potentials to MD engines, symmetrize them on the fly,
    and measure their physical fidelity."""


@main.command()
@click.option("--model", "-m", default=DEFAULT_MODEL, show_default=True,
              help="Shipped model name, model file (.pt) or analytic[:TERMS].")
@click.option("--structure", "-s", default=str(DEFAULT_STRUCTURE), show_default=True,
              help="Structure file readable by ASE, or a shipped structure name.")
@click.option("--degree", "-L", default=3, show_default=True,
              type=click.IntRange(0, MAX_CONTENT_DEGREE),
              help="Largest lambda of the symmetry content B.")
@click.option("--symmetrize", default="none", show_default=True,
              help="Measure the model symmetrized by this spec (none, random, o3:L, so3:L...).")
@click.option("--so3", is_flag=True, help="Integrate over SO(3) only (no parity sectors).")
@click.option("--forces", type=click.Choice(["auto", "conservative", "direct"]), default="auto",
              show_default=True, help="Conservative (autograd) or direct forces.")
@click.option("--batch-size", default=None, type=click.IntRange(min=1),
              help="Rotated copies per model call (default: chosen from the model and size).")
@click.option("--threads", default="auto", show_default=True, help=THREADS_HELP)
@click.option("--device", default=DEFAULT_DEVICE, show_default=True, help=DEVICE_HELP)
@click.option("--dtype", type=click.Choice(list(DTYPES)), default=None, help=DTYPE_HELP)
@click.option("--layers", is_flag=True,
              help="Also B per sector of every hidden layer of the (raw) model, in forward order.")
@click.option("--layers-plot", type=click.Path(dir_okay=False), default=None,
              help="Write the layer x sector heatmap to this PNG (implies --layers).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--yes", "-y", is_flag=True, help=YES_HELP)
@one_line_errors
def equivariance(model, structure, degree, symmetrize, so3, forces, batch_size, threads, device,
                 dtype, layers, layers_plot, as_json, yes):
    """Equivariance error A and symmetry content B of a model on one structure."""
    from pathlib import Path

    from .metrics import measure, metrics_quadrature
    from .models import load_model
    from .models.symmetrized import QuadratureAveragedModel
    from .symmetrize import Symmetrizer, SymmetrizeSpec
    from .system import System, read_structure

    evaluations = (len(metrics_quadrature(degree, inversion=not so3))
                   * SymmetrizeSpec.parse(symmetrize).evaluations_per_call())
    what = f"--degree {degree}" + (f" with --symmetrize {symmetrize}" if symmetrize != "none" else "")
    check_cost(evaluations, yes, what, per="structure")
    if layers_plot and Path(layers_plot).exists():
        raise MdsymError(f"--layers-plot {layers_plot} exists: mdsym does not overwrite it")
    if layers_plot and not Path(layers_plot).resolve().parent.is_dir():
        raise MdsymError(f"--layers-plot {layers_plot}: its folder does not exist")
    system = System.from_atoms(read_structure(structure_path(structure)))
    configure_threads(threads, len(system))
    the_model = load_model(model, forces=forces, device=device, dtype=dtype)
    the_model.check_system(system)
    symmetrizer = Symmetrizer(the_model, symmetrize, batch_size=batch_size)
    raw_model = the_model
    if symmetrizer.spec.mode != "none" or str(symmetrizer.spec) != "none":
        the_model = QuadratureAveragedModel(symmetrizer)
    report = measure(the_model, system, degree, inversion=not so3, batch_size=batch_size)
    report["model"] = the_model.name
    report["structure"] = str(structure)
    report["symmetrize"] = str(symmetrizer.spec)
    report["device"], report["dtype"] = str(raw_model.device), dtype_name(raw_model.dtype)
    if layers or layers_plot:
        from .analysis.hidden_layers import layers_or_reason, plot_heatmap

        report["layers"] = layers_or_reason(raw_model, system, degree, not so3, batch_size)
        if layers_plot and "layers" in report["layers"]:
            plot_heatmap(report["layers"]["layers"], layers_plot,
                         f"Symmetry content of the layers of {raw_model.name}")
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    quadrature = report["quadrature"]
    click.echo(f"model {report['model']}  structure {structure}  symmetrize {report['symmetrize']}"
               f"  ({report['device']}, {report['dtype']})")
    click.echo(f"quadrature {quadrature['name']} over {quadrature['group']}: "
               f"{quadrature['size']} elements, exact to degree {quadrature['degree']}")
    units = {"energy": "eV", "forces": "eV/A", "stress": "eV/A^3"}
    for key in ("energy", "forces", "stress"):
        if key not in report:
            continue
        item = report[key]
        sectors = "  ".join(
            f"({b['lambda']},{'+' if b['sigma'] > 0 else '-'}) {b['fraction']:.3g}"
            for b in item["B"] if b["fraction"] >= 1e-6
        )
        click.echo(f"{key:7s} A = {item['A']:.4g} {units[key]}   B: {sectors}"
                   f"   above L: {item['residual']:.2g}")
    if "layers" in report:
        from .analysis.hidden_layers import summary_lines

        click.echo("\n".join(summary_lines(report["layers"])))
        if layers_plot and "layers" in report["layers"]:
            click.echo(f"heatmap: {layers_plot}")


def _default(name):
    """The default of ``mdsym run``'s option for RunConfig field ``name``: the field's."""
    return RunConfig.default(name)


def _choice(name):
    return click.Choice(list(RunConfig.choices(name)))


# Every option of ``mdsym run`` but --out, --resume, --progress and --yes sets the
# RunConfig field of its destination's name (--no-connectivity: connectivity).
@main.command()
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
                   "the symmetrized or conservative ones every K steps), "
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
                   "on this or other hosts; 0: only those (needs a fixed --port or --address).")
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
@click.option("--progress/--no-progress", default=True, show_default=True)
@click.option("--yes", "-y", is_flag=True, help=YES_HELP)
@one_line_errors
def run(resume, out, progress, yes, **options):
    """Run MD with any model, raw or symmetrized, in ASE or i-PI."""
    from .engines.run import Progress, default_out, read_config, resume_md, run_md

    if resume:
        if out is not None:
            raise MdsymError("--resume continues the run in its own directory: drop --out")
        steps = options["steps"] if _given("steps") else None
        bar = Progress(steps or read_config(resume).steps, start=0, enabled=progress)
        try:
            info = resume_md(resume, steps=steps, progress=bar)
        finally:
            bar.close()
        out = resume
    else:
        config = RunConfig(**dict(options, structure=str(structure_path(options["structure"]))))
        check_cost(_evaluations_per_step(config), yes, f"--symmetrize {config.symmetrize}")
        out = out or str(default_out())
        bar = Progress(config.steps, enabled=progress)
        try:
            info = run_md(config, out, progress=bar)
        finally:
            bar.close()
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
        from .engines.ipi_md import rotation_grid

        return len(rotation_grid(config).quadrature)
    return config.symmetrize.evaluations_per_call()


def _given(parameter) -> bool:
    """Whether the user gave ``parameter`` (click's parameter source, not its default)."""
    source = click.get_current_context().get_parameter_source(parameter)
    return source not in (None, click.core.ParameterSource.DEFAULT)


from .serve import serve  # noqa: E402
main.add_command(serve)

from .analysis.commands import analyze, compare  # noqa: E402
main.add_command(analyze)
main.add_command(compare)
from .analysis.commands import study  # noqa: E402
main.add_command(study)
from .audit import audit  # noqa: E402
main.add_command(audit)
