"""CLI support: what every mdsym command shares: defaults, shipped structure names, threads, and
the one-line error handling. Its own module so that command modules (``serve``,
``analysis.commands``) and ``cli`` import it without importing each other."""

import functools
import sys
from pathlib import Path

import click

from .errors import MdsymError

STRUCTURES = Path(__file__).parent / "data" / "structures"
DEFAULT_STRUCTURE = STRUCTURES / "ethanol.xyz"
DEFAULT_MODEL = "pet-ethanol"
DEFAULT_SYMMETRIZE = "none"
DEFAULT_FORCES = "auto"  # the model's own: direct if it predicts forces, else autograd
DEFAULT_SEED = 0
DEFAULT_THREADS = "auto"  # see configure_threads


def structure_path(text) -> Path:
    """A structure file, or the short name of a shipped one (``cu-fcc-108``)."""
    shipped = STRUCTURES / f"{text}.xyz"
    return shipped if not Path(text).exists() and shipped.exists() else Path(text)


SMALL_SYSTEM_ATOMS = 256


def configure_threads(threads: str, n_atoms: int) -> int:
    """Set torch's intra-op threads: ``auto`` is 1 below SMALL_SYSTEM_ATOMS atoms
    (small tensors gain nothing from threads, and lose a lot when another process
    holds a core), torch's default otherwise; or an explicit number."""
    import torch

    if threads == "auto":
        if n_atoms < SMALL_SYSTEM_ATOMS:
            torch.set_num_threads(1)
    else:
        try:
            count = int(threads)
        except ValueError:
            raise MdsymError(f"--threads must be 'auto' or a number, got {threads!r}") from None
        if count < 1:
            raise MdsymError(f"--threads must be at least 1, got {count}")
        torch.set_num_threads(count)
    return torch.get_num_threads()


THREADS_HELP = f"torch threads: a number, or auto (1 below {SMALL_SYSTEM_ATOMS} atoms)."


#: Above this many model evaluations per step (or per frame), a command asks for --yes.
MAX_EVALUATIONS_WITHOUT_CONSENT = 1000

YES_HELP = (f"Run even when it costs more than {MAX_EVALUATIONS_WITHOUT_CONSENT} model "
            "evaluations per step.")


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
