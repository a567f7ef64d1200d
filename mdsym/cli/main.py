"""The ``mdsym`` group: one command per module of ``mdsym.cli``, registered here.

Every bad input is one line and exit 2 (``mdsym.cli.options``). The command modules
import only click and ``mdsym.core.defaults`` at load time, so ``mdsym --help`` and
``mdsym COMMAND --help`` start without torch or ASE.
"""

import click

from mdsym.cli.analyze import analyze
from mdsym.cli.audit import audit
from mdsym.cli.compare import compare
from mdsym.cli.equivariance import equivariance
from mdsym.cli.export import export
from mdsym.cli.options import OneLineGroup
from mdsym.cli.run import run
from mdsym.cli.serve import serve
from mdsym.cli.study import study


@click.group(cls=OneLineGroup)
@click.version_option(package_name="mdsym")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
def main(debug):
    """Serve unconstrained ML potentials to MD engines, symmetrize them on the fly,
    and measure their physical fidelity."""


for command in (equivariance, run, serve, analyze, compare, study, audit, export):
    main.add_command(command)
