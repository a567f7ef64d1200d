"""Journey 3: `mdsym serve` as the force provider of a user's own i-PI simulation.

The user writes an i-PI input with an <ffsocket> on a unix socket, starts i-PI (the
venv's `i-pi` script, by its full path) and `mdsym serve`; i-PI runs a few NVE
steps and says EXIT; serve leaves with exit code 0. The energies i-PI printed are
those of the served model, symmetrized as asked: the same model evaluated
in-process (mdsym.load_model + MdsymCalculator) at the positions i-PI printed.
"""

import os
import secrets
import time

import ase.io
import numpy as np
from ase import units

from .conftest import IPI, start, start_mdsym

MODEL = "analytic:vector1=0.05"
SPEC = "o3:1"
STRUCTURE = "cu-cluster-55"
STEPS = 8
BOX_A = 40.0

INPUT = """<simulation verbosity='low' floatformat='%.17e'>
  <output prefix='sim'>
    <properties filename='out' stride='1' flush='1'> [ step, potential{{atomic_unit}} ] </properties>
    <trajectory filename='pos' stride='1' format='ase' flush='1'> positions </trajectory>
  </output>
  <total_steps> {steps} </total_steps>
  <prng><seed> 7 </seed></prng>
  <ffsocket name='mdsym' mode='unix' pbc='false'>
    <address> {socket} </address>
    <latency> 1e-4 </latency>
  </ffsocket>
  <system>
    <initialize nbeads='1'>
      <file mode='xyz' units='angstrom'> start.xyz </file>
      <velocities mode='thermal' units='kelvin'> 300 </velocities>
    </initialize>
    <forces><force forcefield='mdsym'/></forces>
    <motion mode='dynamics'>
      <dynamics mode='nve'><timestep units='femtosecond'> 2.0 </timestep></dynamics>
    </motion>
  </system>
</simulation>
"""


def write_ipi_xyz(path, atoms):
    """The structure in i-PI's own xyz dialect (cell in the comment line)."""
    lines = [str(len(atoms)),
             f"# CELL(abcABC): {BOX_A} {BOX_A} {BOX_A} 90.0 90.0 90.0 positions{{angstrom}} cell{{angstrom}}"]
    lines += [f"{s} {x:.12f} {y:.12f} {z:.12f}" for s, (x, y, z)
              in zip(atoms.get_chemical_symbols(), atoms.positions)]
    path.write_text("\n".join(lines) + "\n")


def test_serve_to_a_real_ipi_server(tmp_path, stop_later):
    from mdsym import MdsymCalculator, load_model
    from mdsym.core.defaults import STRUCTURES

    atoms = ase.io.read(STRUCTURES / f"{STRUCTURE}.xyz")
    write_ipi_xyz(tmp_path / "start.xyz", atoms)
    socket = f"mdsym-journey-{os.getpid()}-{secrets.token_hex(3)}"
    (tmp_path / "input.xml").write_text(INPUT.format(steps=STEPS, socket=socket))

    ipi_log = open(tmp_path / "ipi.log", "w")
    ipi = start([IPI, "input.xml"], tmp_path, stdout=ipi_log, stderr=ipi_log)
    stop_later(ipi)
    serve = start_mdsym("serve", "--model", MODEL, "--structure", STRUCTURE, "--symmetrize", SPEC,
                        "--unix", socket, "--wait", "60", cwd=tmp_path)
    stop_later(serve)
    try:
        _, serve_err = serve.communicate(timeout=180)
    finally:
        ipi_log.close()
        if os.path.exists(f"/tmp/ipi_{socket}"):  # left by an i-PI that did not finish
            os.unlink(f"/tmp/ipi_{socket}")
    deadline = time.monotonic() + 30
    while ipi.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    log = (tmp_path / "ipi.log").read_text()
    assert ipi.returncode == 0, f"i-PI exit code {ipi.returncode}\n{log[-3000:]}"
    assert serve.returncode == 0, f"serve exit code {serve.returncode}\n{serve_err[-3000:]}"
    assert "exit" in serve_err.lower(), serve_err[-3000:]  # it left on i-PI's EXIT

    # i-PI's output: one potential and one configuration per step
    table = np.loadtxt(tmp_path / "sim.out", comments="#", ndmin=2)
    frames = ase.io.read(tmp_path / "sim.pos_0.extxyz", index=":")
    assert list(table[:, 0]) == list(range(STEPS + 1))
    assert len(frames) == STEPS + 1
    moved = np.abs(frames[-1].positions - frames[0].positions).max()
    assert moved > 1e-3, "i-PI's atoms did not move"

    # the same model, evaluated in-process at i-PI's positions
    model = load_model(MODEL)
    symmetrized, raw = [], []
    for frame in frames:
        probe = atoms.copy()
        probe.positions = frame.positions
        probe.calc = MdsymCalculator(model, symmetrize=SPEC)
        symmetrized.append(probe.get_potential_energy())
        probe.calc = MdsymCalculator(model, symmetrize="none")
        raw.append(probe.get_potential_energy())
    # mdsym serve sends energies in atomic units converted with ASE's constants:
    # converted back with them they are the model's to round-off
    potential = table[:, 1] * units.Hartree
    np.testing.assert_allclose(potential, symmetrized, rtol=0, atol=1e-6)
    # and the test can tell: the raw model's energies are far from what i-PI saw
    assert np.abs(potential - np.array(raw)).max() > 1e-2
