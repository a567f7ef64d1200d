"""The i-PI input of each segment of a run (the XML itself: ``mdsym.md.ipi_engine.input``).

The first segment starts from the run's structure with the velocities the ASE
engine would start from (``initial_velocities``); a restart (resume or stall) is
i-PI's newest checkpoint with a new output prefix and run length and the run's
sockets put back (``restart_input``; with ``<ffrotations>``, its inner socket
whole). Under ``mts:K`` both are i-PI's ``<nmts>`` over the raw and correction
forcefields (``mts_first_input``, ``mts_restart_input``), and i-PI counts outer
steps: its run length and checkpoint stride are divided by K.
"""

from pathlib import Path

import numpy as np

from mdsym.md.ase_engine import initial_velocities as start_velocities
from mdsym.md.config import RunConfig
from mdsym.md.ipi_engine import input as ipi_input
from mdsym.md.ipi_engine.prepare import IpiRun


def initial_velocities(atoms, temperature_K, seed) -> np.ndarray:
    """The velocities the ASE engine would start from (``mdsym.md.ase_engine.initial_velocities``):
    the structure's own if it has any, else Maxwell-Boltzmann at ``temperature_K``
    from ``seed``, without net momentum (nor rotation if isolated)."""
    copy = atoms.copy()
    start_velocities(copy, temperature_K, seed)
    velocities = copy.get_velocities()
    return np.zeros((len(atoms), 3)) if velocities is None else velocities


def dynamics(config: RunConfig) -> ipi_input.Dynamics:
    return ipi_input.Dynamics.of(config)


def first_input(run: IpiRun, prefix: str) -> str:
    if run.correction is not None:
        return mts_first_input(run, prefix)
    velocities = initial_velocities(run.atoms, run.config.temperature_K, run.config.seed)
    forcefield = run.socket.forcefield(run.periodic, run.config.latency_s)
    extras_names = ipi_input.ROTATION_STD
    if run.grid is not None:  # i-PI averages over raw clients and returns the grid's energies
        forcefield = run.grid.forcefield(forcefield.get("name"), forcefield)
        extras_names = ipi_input.IPI_GRID_ENERGIES
    outputs = ipi_input.Outputs(prefix=prefix, extras=run.extras, extras_names=extras_names,
                                checkpoint_stride=run.config.checkpoint_stride)
    root = ipi_input.simulation(run.atoms, velocities, forcefield, run.total,
                                dynamics(run.config), outputs)
    return ipi_input.to_text(root)


def restart_input(run: IpiRun, checkpoint: Path, prefix: str) -> str:
    if run.correction is not None:
        return mts_restart_input(run, checkpoint, prefix)
    inner = run.socket.forcefield(run.periodic, run.config.latency_s) if run.grid else None
    root = ipi_input.restarted(checkpoint.read_text(), prefix, run.total,
                               address=run.socket.address, port=run.socket.port,
                               rotations_socket=inner)
    return ipi_input.to_text(root)


def mts_first_input(run: IpiRun, prefix: str) -> str:
    """The input of an ``mts:K`` run: i-PI's ``<nmts>`` over the raw and correction
    forcefields; i-PI counts outer steps (its checkpoints too)."""
    velocities = initial_velocities(run.atoms, run.config.temperature_K, run.config.seed)
    latency = run.config.latency_s
    outputs = ipi_input.Outputs(prefix=prefix, extras=run.extras,
                                checkpoint_stride=max(1, run.config.checkpoint_stride // run.interval))
    root = ipi_input.multiple_time_step(
        run.atoms, velocities, run.socket.forcefield(run.periodic, latency),
        run.correction.forcefield(run.periodic, latency), run.interval, run.total,
        dynamics(run.config), outputs)
    return ipi_input.to_text(root)


def mts_restart_input(run: IpiRun, checkpoint: Path, prefix: str) -> str:
    root = ipi_input.restarted(checkpoint.read_text(), prefix, run.total // run.interval)
    ipi_input.readdressed(root, {s.name: (s.address, s.port) for s in (run.socket, run.correction)})
    return ipi_input.to_text(root)
