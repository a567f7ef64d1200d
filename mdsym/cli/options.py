"""What every mdsym command shares: the one-line error handling, the cost check, and
the options several commands take. Defaults come from ``mdsym.core.defaults``, so the
help shows what the code uses; nothing here imports torch or ASE."""

import functools
import signal
import sys

import click

from mdsym.core.defaults import (
    MAX_CONTENT_DEGREE,
    MAX_EVALUATIONS_WITHOUT_CONSENT,
    TRAJECTORY_FORMATS,
    YES_HELP,
)
from mdsym.core.errors import MdsymError


def check_cost(evaluations: int, yes: bool, what: str, per: str = "step") -> None:
    """Refuse, in one line, work of more than MAX_EVALUATIONS_WITHOUT_CONSENT model
    evaluations per step unless the user said --yes."""
    if evaluations > MAX_EVALUATIONS_WITHOUT_CONSENT and not yes:
        raise MdsymError(
            f"{what} costs {evaluations} model evaluations per {per} (more than "
            f"{MAX_EVALUATIONS_WITHOUT_CONSENT}): add --yes to run it anyway"
        )


def _debug_requested() -> bool:
    """``mdsym --debug ...``, read from click's context (the group's own parameter)."""
    context = click.get_current_context(silent=True)
    return bool(context is not None and context.find_root().params.get("debug"))


class OneLineGroup(click.Group):
    """A click group whose usage errors (a bad value, a missing argument, an unknown
    option) are one line on stderr and exit 2, like mdsym's own errors; click's
    standalone mode would print the usage block too."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        # a batch scheduler's SIGTERM ends a command as Ctrl-C does: runs record "interrupted"
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.Abort:
            click.echo("mdsym: interrupted", err=True)
            sys.exit(130)
        except click.ClickException as error:
            if isinstance(error, getattr(click.exceptions, "NoArgsIsHelpError", ())):
                click.echo(error.format_message())  # plain ``mdsym``: the help, as click does
                sys.exit(0)
            hint = ""
            context = getattr(error, "ctx", None)
            if context is not None:
                hint = f" (see '{context.command_path} --help')"
            click.echo(f"mdsym: error: {error.format_message()}{hint}", err=True)
            sys.exit(error.exit_code)
        sys.exit(code if isinstance(code, int) else 0)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def one_line_errors(command):
    """Turn every failure into one line on stderr and a non-zero exit."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except MdsymError as error:
            click.echo(f"mdsym: error: {error}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("mdsym: interrupted", err=True)
            sys.exit(130)
        except Exception as error:  # a bug or an unexpected library failure
            if _debug_requested():
                raise
            text = str(error).strip().splitlines()
            click.echo(
                f"mdsym: error: {type(error).__name__}: {text[0] if text else ''} "
                "(rerun with --debug for the traceback)",
                err=True,
            )
            sys.exit(1)

    return wrapper


def given(parameter) -> bool:
    """Whether the user gave ``parameter`` (click's parameter source, not its default)."""
    source = click.get_current_context().get_parameter_source(parameter)
    return source not in (None, click.core.ParameterSource.DEFAULT)


def check_analysis_cost(degree, yes):
    """A is measured on every analysed frame over the quadrature of ``degree``."""
    from mdsym.symmetry.metrics import metrics_quadrature  # start-up time: numpy, scipy

    check_cost(len(metrics_quadrature(degree)), yes, f"the equivariance error at --degree {degree}",
               per="analysed frame")


ANALYSIS_OPTIONS = [
    click.option("--every", type=click.IntRange(min=1), default=None,
                 help="Measure the equivariance error every N frames [default: about 20 frames]."),
    click.option("--degree", "-L", default=2, show_default=True, type=click.IntRange(0, MAX_CONTENT_DEGREE),
                 help="Largest lambda of A's quadrature and of the symmetry content B."),
    click.option("--content", is_flag=True, help="Also the symmetry content B per sector along the run (heavier)."),
    click.option("--no-equivariance", is_flag=True, help="Skip the equivariance error (no model evaluation)."),
    click.option("--model", "-m", default=None,
                 help="Model to measure, when run.json's model cannot be loaded here; for a "
                      "foreign trajectory, the model that drove it (A along it, and the potential "
                      "energy when the file has none)."),
    click.option("--batch-size", default=None, type=click.IntRange(min=1),
                 help="Rotated copies per model call (default: chosen from the model and size)."),
    click.option("--yes", "-y", is_flag=True, help=YES_HELP),
]


def analysis_options(function):
    for option in reversed(ANALYSIS_OPTIONS):
        function = option(function)
    return function


#: what a foreign trajectory needs said when its files do not say it (``mdsym analyze``,
#: and ``PATH::key=value`` items of ``mdsym compare``)
SOURCE_OPTIONS = [
    click.option("--format", "source_format", type=click.Choice(TRAJECTORY_FORMATS), default=None,
                 help="Format of PATH [default: from its extension and content]."),
    click.option("--log", type=click.Path(dir_okay=False, exists=True), default=None,
                 help="Energies per step: an ASE MDLogger log or a LAMMPS log.lammps."),
    click.option("--topology", type=click.Path(dir_okay=False, exists=True), default=None,
                 help="Topology of an MDAnalysis trajectory (PDB, GRO, extended XYZ, TPR...)."),
    click.option("--timestep", "timestep_fs", type=click.FloatRange(min=0, min_open=True),
                 default=None, help="MD time step (fs), when the file does not say."),
    click.option("--stride", type=click.IntRange(min=1), default=None,
                 help="Steps between frames, when the file does not say [default: 1]."),
    click.option("--units", type=click.Choice(["metal", "real"]), default=None,
                 help="LAMMPS units style, when the log does not say."),
    click.option("--elements", default=None,
                 help="LAMMPS: the element of atom types 1, 2, ... (e.g. O,H), when the dump "
                      "has no element column."),
]


def source_options(function):
    for option in reversed(SOURCE_OPTIONS):
        function = option(function)
    return function
