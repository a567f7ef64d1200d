"""``mdsym equivariance``: A and B of a model (raw or symmetrized) on one structure."""

import json
from pathlib import Path

import click

from mdsym.cli.options import check_cost, one_line_errors
from mdsym.core.defaults import (
    DEFAULT_CONTENT_DEGREE,
    DEFAULT_DEVICE,
    DEFAULT_FORCES,
    DEFAULT_MODEL,
    DEFAULT_STRUCTURE,
    DEFAULT_SYMMETRIZE,
    DEFAULT_THREADS,
    DEVICE_HELP,
    DTYPE_HELP,
    DTYPE_NAMES,
    FORCES,
    MAX_CONTENT_DEGREE,
    THREADS_HELP,
    VARIANT_HELP,
    YES_HELP,
    structure_path,
)
from mdsym.core.errors import MdsymError


@click.command()
@click.option("--model", "-m", default=DEFAULT_MODEL, show_default=True,
              help="Shipped model name, model file (.pt) or analytic[:TERMS].")
@click.option("--structure", "-s", default=DEFAULT_STRUCTURE, show_default=True,
              help="Structure file readable by ASE, or a shipped structure name.")
@click.option("--degree", "-L", default=DEFAULT_CONTENT_DEGREE, show_default=True,
              type=click.IntRange(0, MAX_CONTENT_DEGREE),
              help="Largest lambda of the symmetry content B.")
@click.option("--symmetrize", default=DEFAULT_SYMMETRIZE, show_default=True,
              help="Measure the model symmetrized by this spec (none, random, o3:L, so3:L...).")
@click.option("--so3", is_flag=True, help="Integrate over SO(3) only (no parity sectors).")
@click.option("--forces", type=click.Choice(FORCES), default=DEFAULT_FORCES,
              show_default=True, help="Conservative (autograd) or direct forces.")
@click.option("--batch-size", default=None, type=click.IntRange(min=1),
              help="Rotated copies per model call (default: chosen from the model and size).")
@click.option("--threads", default=DEFAULT_THREADS, show_default=True, help=THREADS_HELP)
@click.option("--device", default=DEFAULT_DEVICE, show_default=True, help=DEVICE_HELP)
@click.option("--dtype", type=click.Choice(DTYPE_NAMES), default=None, help=DTYPE_HELP)
@click.option("--variant", default=None, help=VARIANT_HELP)
@click.option("--layers", is_flag=True,
              help="Also B per sector of every hidden layer of the (raw) model, in forward order.")
@click.option("--layers-plot", type=click.Path(dir_okay=False), default=None,
              help="Write the layer x sector heatmap to this PNG (implies --layers).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--yes", "-y", is_flag=True, help=YES_HELP)
@one_line_errors
def equivariance(model, structure, degree, symmetrize, so3, forces, batch_size, threads, device,
                 dtype, variant, layers, layers_plot, as_json, yes):
    """Equivariance error A and symmetry content B of a model on one structure."""
    # start-up time: the models, the metrics and ASE load only when the command runs
    from mdsym.core.system import System, read_structure
    from mdsym.core.threads import configure_threads
    from mdsym.models import load_model
    from mdsym.models.devices import dtype_name
    from mdsym.models.memory import check_fits
    from mdsym.models.outputs import own_figures
    from mdsym.symmetry.metrics import measure, metrics_quadrature
    from mdsym.symmetry.spec import SymmetrizeSpec
    from mdsym.symmetry.symmetrized import SymmetrizedModel

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
    the_model = load_model(model, forces=forces, device=device, dtype=dtype, variant=variant)
    the_model.check_system(system)
    check_fits(the_model, system, batch_size, evaluations)
    symmetrized = SymmetrizedModel(the_model, symmetrize, batch_size=batch_size)
    raw_model = the_model
    if str(symmetrized.spec) != "none":
        the_model = symmetrized
    report = measure(the_model, system, degree, inversion=not so3, batch_size=batch_size)
    report["model"] = the_model.name
    report["structure"] = str(structure)
    report["symmetrize"] = str(symmetrized.spec)
    report["device"], report["dtype"] = str(raw_model.device), dtype_name(raw_model.dtype)
    if str(model).endswith(".pt"):
        from mdsym.serving.export import export_metadata  # start-up time

        report["export"] = export_metadata(model) or None
    report.update(own_figures(raw_model, system))  # its variant, its own uncertainty
    if layers or layers_plot:
        from mdsym.analysis.hidden_layers import layers_or_reason  # start-up time
        from mdsym.reports.plots import plot_heatmap

        report["layers"] = layers_or_reason(raw_model, system, degree, not so3, batch_size)
        if layers_plot and "layers" in report["layers"]:
            plot_heatmap(report["layers"]["layers"], layers_plot,
                         f"Symmetry content of the layers of {raw_model.name}")
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    quadrature = report["quadrature"]
    if report.get("export"):
        made = report["export"]
        click.echo(f"exported by mdsym {made['version']}: {made['model']} symmetrized by {made['spec']} "
                   f"on {made['grid']} ({made['grid-size']} rotations), seed {made['seed']}, "
                   f"correction {made['correction']}, {made['dtype']}")
    echo_model(report, structure)
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
        from mdsym.analysis.hidden_layers import summary_lines  # start-up time

        click.echo("\n".join(summary_lines(report["layers"])))
        if layers_plot and "layers" in report["layers"]:
            click.echo(f"heatmap: {layers_plot}")


def echo_model(report, structure) -> None:
    """The report's first lines: model, structure, spec, device, dtype, variant, and the
    model's own energy uncertainty when it has one."""
    variant = f", energy/{report['variant']}" if report.get("variant") else ""
    click.echo(f"model {report['model']}  structure {structure}  symmetrize {report['symmetrize']}"
               f"  ({report['device']}, {report['dtype']}{variant})")
    if "energy_uncertainty_eV" in report:
        click.echo(f"energy uncertainty (the model's own estimate): "
                   f"{report['energy_uncertainty_eV']:.4g} eV")
