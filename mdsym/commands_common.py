"""What every mdsym command shares: defaults, shipped structure names, threads, and
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
            if "--debug" in sys.argv:
                raise
            text = str(error).strip().splitlines()
            click.echo(
                f"mdsym: error: {type(error).__name__}: {text[0] if text else ''} "
                "(rerun with --debug for the traceback)",
                err=True,
            )
            sys.exit(1)

    return wrapper
