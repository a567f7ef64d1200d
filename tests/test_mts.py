"""Multiple time stepping (``mts:K``): raw model inside, symmetrization as an impulse."""

import json

import ase.io
import numpy as np
import pytest
from ase import units
from ase.md.verlet import VelocityVerlet

from mdsym import MdsymCalculator, MdsymError, SymmetrizedModel, SymmetrizeSpec, System, load_model
from mdsym.analysis.trajectory import EV_IN_AMU_A2_PS2
from mdsym.core.defaults import STRUCTURES
from mdsym.md.ase_engine import initial_velocities
from mdsym.md.checkpoint import CHECKPOINT
from mdsym.md.mts import MultipleTimeStepVerlet
from mdsym.md.run import resume_md, run_md
from mdsym.md.rundir import RunDirectory

DT_FS = 2.0  # copper: vibrational periods of ~200 fs
ANISOTROPIC = "analytic:vector1=0.01"  # spurious degree 1: o3:1 is exact


def cluster(seed=1):
    atoms = ase.io.read(STRUCTURES / "cu-cluster-55.xyz")
    initial_velocities(atoms, 300.0, seed)
    return atoms


def trajectory(dynamics, atoms, steps, extra=lambda: None):
    """Positions, momenta and whatever ``extra`` returns at every step, step 0 included."""
    positions, momenta, extras = [], [], []

    def observe():
        positions.append(atoms.positions.copy())
        momenta.append(atoms.get_momenta())
        extras.append(extra())

    dynamics.attach(observe, interval=1)
    dynamics.run(steps)
    return np.array(positions), np.array(momenta), extras


def mts(atoms, model, spec, interval):
    atoms.calc = MdsymCalculator(model, "none")
    return MultipleTimeStepVerlet(atoms, DT_FS * units.fs, SymmetrizedModel(model, spec), interval)


def test_zero_correction_is_plain_velocity_verlet_step_for_step():
    """An exactly invariant model: symmetrized = raw, so MTS must be velocity Verlet."""
    model = load_model("analytic:cutoff=5.5")  # Morse only: no spurious term
    a = cluster()
    a.calc = MdsymCalculator(model, "none")
    plain = trajectory(VelocityVerlet(a, DT_FS * units.fs), a, 60)
    b = cluster()
    multiple = trajectory(mts(b, model, "o3:2", 4), b, 60)
    assert np.abs(plain[0][-1] - plain[0][0]).max() > 0.05  # the atoms moved
    assert np.abs(plain[0] - multiple[0]).max() < 1e-10
    assert np.abs(plain[1] - multiple[1]).max() < 1e-10


def test_one_inner_step_is_full_symmetrization_step_for_step():
    model = load_model(ANISOTROPIC)
    a = cluster()
    a.calc = MdsymCalculator(model, "o3:1")
    full = trajectory(VelocityVerlet(a, DT_FS * units.fs), a, 40)
    b = cluster()
    multiple = trajectory(mts(b, model, "o3:1", 1), b, 40)
    c = cluster()
    c.calc = MdsymCalculator(model, "none")
    raw = trajectory(VelocityVerlet(c, DT_FS * units.fs), c, 40)
    assert np.abs(full[0] - raw[0]).max() > 1e-4  # the symmetrization matters here
    assert np.abs(full[0] - multiple[0]).max() < 1e-10
    assert np.abs(full[1] - multiple[1]).max() < 1e-10


def angular_momentum(atoms):
    """About the centre of mass, amu Angstrom^2 / ps."""
    masses = atoms.get_masses()
    centred = atoms.positions - masses @ atoms.positions / masses.sum()
    return np.cross(centred, atoms.get_velocities() * 1000 * units.fs).T @ masses


def torque(atoms, forces):
    masses = atoms.get_masses()
    centred = atoms.positions - masses @ atoms.positions / masses.sum()
    return np.cross(centred, forces).sum(axis=0)


def test_mts_over_an_exact_grid_conserves_angular_momentum_without_drift():
    """Bound. The symmetrized forces carry no torque, so L changes only by the raw
    torque tau of every inner step (velocity Verlet: dt/2 (tau_j + tau_j+1)) and
    the kicks' -K dt/2 (tau_0 + tau_K): per outer step, the difference of two
    trapezoid rules for the integral of tau, ``-(K^3 - K) dt^3 / 12 tau''`` to
    leading order. Summed over outer steps it telescopes:
    ``L(t_n) - L(0) = -(K^2 - 1) dt^2 / 12 (tau'(t_n) - tau'(0))``, bounded by
    ``(K^2 - 1) dt^2 / 6 max|tau'|`` at every outer step: no drift. Between outer
    steps L is off by at most about ``(K dt / 2) max|tau|``, here twice that.
    """
    model = load_model(ANISOTROPIC)
    K, steps = 4, 200
    atoms = cluster()
    dynamics = mts(atoms, model, "o3:1", K)
    _, _, extras = trajectory(dynamics, atoms, steps, lambda: (
        angular_momentum(atoms), torque(atoms, atoms.calc.results["forces"])))
    L = np.array([e[0] for e in extras])
    tau = np.array([e[1] for e in extras]) * EV_IN_AMU_A2_PS2  # amu A^2 / ps^2
    dt = DT_FS / 1000  # ps
    dL = np.linalg.norm(L - L[0], axis=1)
    tau_rate = np.linalg.norm(np.gradient(tau, dt, axis=0), axis=1)
    outer_bound = (K**2 - 1) * dt**2 / 6 * tau_rate.max()
    assert dL[::K].max() < outer_bound
    assert dL.max() < 2 * (K * dt / 2) * np.linalg.norm(tau, axis=1).max() + outer_bound
    # not a small effect: raw MD from the same start drifts far beyond the bound
    raw_atoms = cluster()
    raw_atoms.calc = MdsymCalculator(model, "none")
    _, _, raw = trajectory(VelocityVerlet(raw_atoms, DT_FS * units.fs), raw_atoms, steps,
                           lambda: angular_momentum(raw_atoms))
    assert np.linalg.norm(raw[-1] - raw[0]) > 20 * outer_bound


def rows(out):
    return RunDirectory(out).read_thermo()


def config(**changes):
    base = dict(model=ANISOTROPIC, structure=str(STRUCTURES / "cu-cluster-55.xyz"), engine="ase",
                ensemble="nve", thermostat="svr", timestep_fs=DT_FS, steps=120,
                temperature_K=300.0, seed=1, symmetrize="mts:4+o3:1", forces="auto",
                batch_size=None, stride=20, connectivity=True)
    base.update(changes)
    return base


@pytest.mark.parametrize("ensemble,thermostat", [("nve", "svr"), ("nvt", "svr"), ("nvt", "langevin")])
def test_mts_run_conserves_the_symmetrized_total_energy_at_outer_steps(tmp_path, ensemble, thermostat):
    """thermo.csv: on rows with step % K == 0, conserved_eV is the symmetrized model's
    total energy (minus what the outer thermostat exchanged), conserved like velocity
    Verlet's 1e-4 eV/atom at 2 fs; potential_eV there is the symmetrized energy."""
    out = tmp_path / "run"
    info = run_md(config(ensemble=ensemble, thermostat=thermostat), out)
    assert info["status"] == "completed"
    thermo = rows(out)
    outer = thermo["step"] % 4 == 0
    energy = thermo["conserved_eV"][outer]
    assert np.abs(energy - energy[0]).max() / 55 < 1e-4
    total = thermo["potential_eV"] + thermo["kinetic_eV"]
    assert np.ptp(total) > 10 * np.abs(energy - energy[0]).max() or ensemble == "nve"
    # the potential at an outer row is the symmetrized model's energy there (the
    # checkpoint holds the last step's positions)
    frame = ase.io.read(out / CHECKPOINT)
    symmetrized = SymmetrizedModel(load_model(ANISOTROPIC), "o3:1")
    assert thermo["step"][-1] == 120
    assert thermo["potential_eV"][-1] == pytest.approx(symmetrized(System.from_atoms(frame))["energy"], abs=1e-6)
    assert np.all(thermo["symmetrize_degree"] == 1)


def test_mts_resumes_mid_outer_step_as_if_never_stopped(tmp_path):
    straight = tmp_path / "straight"
    run_md(config(steps=30, stride=5), straight)
    stopped = tmp_path / "stopped"
    run_md(config(steps=10, stride=5), stopped)  # 10 % 4 = 2: stops mid outer step
    resume_md(stopped, steps=30)
    a, b = rows(straight), rows(stopped)
    assert list(b["step"]) == list(range(31))
    # the checkpoint holds positions and momenta to 8 decimals (extended XYZ)
    for column, tolerance in (("potential_eV", 1e-6), ("kinetic_eV", 1e-6), ("Lx", 1e-4), ("fnet_x", 1e-6)):
        assert np.abs(a[column] - b[column]).max() < tolerance, column


def test_mts_needs_a_symmetrization_and_whole_outer_steps_in_ipi(tmp_path):
    with pytest.raises(MdsymError, match="needs a symmetrization"):
        SymmetrizeSpec.parse("mts:4")
    with pytest.raises(MdsymError, match="whole number"):
        SymmetrizeSpec.parse("mts:0+o3:1")
    with pytest.raises(MdsymError, match="way to integrate"):
        SymmetrizedModel(load_model(ANISOTROPIC), "mts:4+o3:1")
    # the i-PI engine runs mts:K (tests/test_ipi_mts.py), in whole outer steps
    with pytest.raises(MdsymError, match="not a multiple of K = 4"):
        run_md(config(engine="ipi", steps=5), tmp_path / "ipi")


def test_nettorque_with_mts_conserves_angular_momentum_at_every_step(tmp_path):
    """The fix applies to the raw force of every step and to the symmetrized one:
    no kick carries a torque, and the drift of velocity Verlet keeps L exactly."""
    out = tmp_path / "run"
    run_md(config(symmetrize="mts:8+o3:1+nettorque", steps=80), out)
    thermo = rows(out)
    L = np.stack([thermo["Lx"], thermo["Ly"], thermo["Lz"]], axis=1)
    assert np.abs(L - L[0]).max() < 1e-8 * (1 + np.abs(L).max())
    plain = tmp_path / "plain"
    run_md(config(symmetrize="mts:8+o3:1", steps=80), plain)
    thermo = rows(plain)
    L = np.stack([thermo["Lx"], thermo["Ly"], thermo["Lz"]], axis=1)
    assert np.abs(L - L[0]).max() > 1e-3


def test_auto_degree_under_mts_is_logged_in_run_json_and_thermo(tmp_path):
    out = tmp_path / "run"
    info = run_md(config(model="analytic:bond2=0.02", symmetrize="mts:4+o3:auto:0.001:100",
                         steps=20), out)
    log = info["segments"][0]["degree_log"]
    assert log[0]["step"] == 0 and log[0]["degree"] == 2 and log[0]["previous"] is None
    assert json.loads((out / "run.json").read_text())["segments"][0]["degree_log"] == log
    assert np.all(rows(out)["symmetrize_degree"] == 2)


def test_stress_correction_is_symmetrized_minus_raw(small_crystal):
    model = load_model("analytic:bond2=0.05")
    small_crystal.calc = MdsymCalculator(model, "none")
    dynamics = MultipleTimeStepVerlet(small_crystal, units.fs, SymmetrizedModel(model, "o3:2"), 4,
                                      with_stress=True)
    correction = dynamics.evaluate_correction()
    symmetrized = MdsymCalculator(model, "o3:2")
    symmetrized.calculate(small_crystal, ["stress"])
    small_crystal.get_stress()
    raw = small_crystal.calc.results["stress_3x3"]
    assert np.abs(correction["stress"] - (symmetrized.results["stress_3x3"] - raw)).max() < 1e-12
    assert np.abs(correction["stress"]).max() > 1e-5


def test_direct_forces_inside_conservative_correction_outside(tmp_path):
    """mts:K:direct (Bigi, Langer, Ceriotti 2024): the analytic direct1 term is a
    non-conservative force. Driven by it alone, NVE does not conserve energy; with
    the correction to the conservative forces every K steps the conservative
    model's total energy is conserved at outer steps, and K = 1 is the conservative
    model step for step."""
    spec = "analytic:direct1=0.3"
    direct, conservative = load_model(spec, forces="direct"), load_model(spec, forces="conservative")
    a = cluster()
    a.calc = MdsymCalculator(conservative, "none")
    plain = trajectory(VelocityVerlet(a, DT_FS * units.fs), a, 30)
    b = cluster()
    b.calc = MdsymCalculator(direct, "none")
    multiple = trajectory(MultipleTimeStepVerlet(b, DT_FS * units.fs, SymmetrizedModel(conservative), 1), b, 30)
    assert np.abs(plain[0] - multiple[0]).max() < 1e-10

    raw = tmp_path / "raw"
    run_md(config(model=spec, symmetrize="none", forces="direct"), raw)
    drift = np.abs(rows(raw)["conserved_eV"] - rows(raw)["conserved_eV"][0]).max()
    out = tmp_path / "mts"
    run_md(config(model=spec, symmetrize="mts:4:direct"), out)
    thermo = rows(out)
    energy = thermo["conserved_eV"][thermo["step"] % 4 == 0]
    assert np.abs(energy - energy[0]).max() / 55 < 1e-4
    assert drift > 10 * np.abs(energy - energy[0]).max()
    with pytest.raises(MdsymError, match="drop --forces conservative"):
        run_md(config(model=spec, symmetrize="mts:4:direct", forces="conservative"), tmp_path / "bad")


def test_analyze_fits_the_drift_of_an_mts_run_on_its_outer_steps(tmp_path):
    """Between outer steps conserved_eV carries the held correction's unpaid work, so
    analyze's drift (and the field figures) must use the rows with step % K == 0: the
    largest excursion it reports is that of those rows, which is well below the
    excursion over every row for this strongly anisotropic model."""
    from mdsym.workflows.analyze import analyze_run

    out = tmp_path / "run"
    run_md(config(steps=120, stride=20), out)
    thermo = rows(out)
    outer = thermo["step"] % 4 == 0
    report = analyze_run(out, equivariance=False, plots=False)
    drift = report["drift"]
    assert drift["points"] == outer.sum() == 31
    assert drift["rows"].startswith("outer")
    energy = thermo["conserved_eV"]
    assert drift["max_deviation_meV_atom"] == pytest.approx(
        np.abs(energy[outer] - energy[0]).max() * 1000 / 55, rel=1e-9)
    assert np.abs(energy - energy[0]).max() > 3 * np.abs(energy[outer] - energy[0]).max()
    assert report["field"]["nvalchemi"]["num_samples"] == 31
    plain = tmp_path / "plain"
    run_md(config(symmetrize="o3:1", steps=8, stride=4), plain)
    assert analyze_run(plain, equivariance=False, plots=False)["drift"]["points"] == 9
