"""--device and --dtype: where a model runs and in which precision.

Everything here runs on the CPU; the CUDA comparison runs only where CUDA is
available, and the refusal of --device cuda only where it is not.
"""

import json
import subprocess
import sys

import ase.io
import numpy as np
import pytest
import torch

from mdsym import MdsymCalculator, load_model
from mdsym.core.defaults import STRUCTURES
from mdsym.core.errors import MdsymError
from mdsym.core.system import System

from .helpers import random_o3, transformed

CUDA = torch.cuda.is_available()
ANISOTROPIC = "analytic:bond2=0.05,vector1=0.05,vector3-=0.01"
ETHANOL = STRUCTURES / "ethanol.xyz"
#: float32 round-off, relative, with room for sums over a few hundred pairs
FLOAT32_TOLERANCE = 1e-5


def mdsym(*args):
    return subprocess.run([sys.executable, "-m", "mdsym", *args], capture_output=True, text=True,
                          timeout=300)


def one_line_error(result, fragment):
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert fragment in lines[0], lines[0]


def predictions(atoms, model, symmetrize="none"):
    atoms = atoms.copy()
    atoms.calc = MdsymCalculator(model, symmetrize=symmetrize)
    stress = atoms.get_stress(voigt=False) if atoms.pbc.any() else np.zeros((3, 3))
    return atoms.get_potential_energy(), atoms.get_forces(), stress


# --- dtype ----------------------------------------------------------------------------


def test_float64_is_the_default_of_analytic_models():
    model = load_model(ANISOTROPIC)
    assert model.dtype == torch.float64 and model.module.axis.dtype == torch.float64
    assert load_model(ANISOTROPIC, dtype="float32").module.axis.dtype == torch.float32


@pytest.mark.parametrize("system", ["cluster", "small_crystal"])
def test_float32_and_float64_agree_to_float32_precision(system, request):
    """The same model in both precisions: equal to float32 round-off, not closer (so the
    float32 path really computes in float32), results float64 numpy either way."""
    atoms = request.getfixturevalue(system)
    e64, f64, s64 = predictions(atoms, load_model(ANISOTROPIC))
    e32, f32, s32 = predictions(atoms, load_model(ANISOTROPIC, dtype="float32"))
    default = predictions(atoms, load_model(ANISOTROPIC, dtype="float64"))
    assert default[0] == e64 and np.array_equal(default[1], f64)  # float64 is the default
    assert f32.dtype == np.float64 and s32.dtype == np.float64
    assert abs(e32 - e64) < FLOAT32_TOLERANCE * abs(e64)
    assert abs(e32 - e64) > 1e-10 * abs(e64)  # float64 round-off would be ~1e-15
    assert np.abs(f32 - f64).max() < FLOAT32_TOLERANCE * np.abs(f64).max()
    assert np.abs(f32 - f64).max() > 1e-12
    assert np.abs(s32 - s64).max() <= FLOAT32_TOLERANCE * np.abs(s64).max()


def test_direct_forces_in_float32(cluster):
    """The direct-force variant (autograd inside the model) follows the dtype too."""
    spec = "analytic:vector1=0.2,direct1=0.3"
    _, f64, _ = predictions(cluster, load_model(spec))
    _, f32, _ = predictions(cluster, load_model(spec, dtype="float32"))
    assert 1e-12 < np.abs(f32 - f64).max() < FLOAT32_TOLERANCE * np.abs(f64).max()


def test_symmetrized_float32_is_invariant_to_float32_round_off(small_crystal):
    """o3:3 averages away every spurious term of degree <= 3 in float32 as in float64:
    rotated inputs give the same energy and rotated forces and stress, to round-off,
    while the raw float32 model is visibly not invariant."""
    model = load_model(ANISOTROPIC, dtype="float32")
    energy, forces, stress = predictions(small_crystal, model, "o3:3")
    raw_energy = predictions(small_crystal, model)[0]
    for rotation in random_o3(11, 3):
        moved = transformed(small_crystal, rotation)
        e, f, s = predictions(moved, model, "o3:3")
        assert abs(e - energy) < FLOAT32_TOLERANCE * abs(energy)
        assert np.abs(f - forces @ rotation.T).max() < FLOAT32_TOLERANCE * np.abs(forces).max()
        assert np.abs(s - rotation @ stress @ rotation.T).max() < FLOAT32_TOLERANCE * np.abs(stress).max()
        assert abs(predictions(moved, model)[0] - raw_energy) > 1e-3  # raw: not invariant


def test_metatomic_dtype_is_the_declared_one_and_float32_may_run_in_float64():
    """pet-ethanol declares float32: that is its default; float64 is an exact conversion
    of its weights and agrees to float32 precision."""
    system = System.from_atoms(ase.io.read(ETHANOL))
    identity = np.eye(3)[None]
    pet = load_model("pet-ethanol", device="cpu")
    assert pet.dtype == torch.float32
    upcast = load_model("pet-ethanol", device="cpu", dtype="float64")
    assert upcast.dtype == torch.float64
    assert all(p.dtype == torch.float64 for p in upcast.model.parameters())
    e32 = pet.evaluate(system, identity, ("energy", "forces"))
    e64 = upcast.evaluate(system, identity, ("energy", "forces"))
    assert abs(e32["energy"][0] - e64["energy"][0]) < FLOAT32_TOLERANCE * abs(e64["energy"][0])
    assert np.abs(e32["forces"] - e64["forces"]).max() < 1e-3 * np.abs(e64["forces"]).max()


def test_a_float64_metatomic_model_refuses_float32(tmp_path):
    from .metatomic_model import export

    path = tmp_path / "analytic.pt"
    export(path)
    assert load_model(str(path), device="cpu").dtype == torch.float64
    with pytest.raises(MdsymError, match="is float64 .* cannot run in float32"):
        load_model(str(path), dtype="float32")


def test_ase_calculators_and_ready_models_have_no_other_device_or_dtype():
    from ase.calculators.emt import EMT

    assert load_model(EMT(), device="cpu").name == "EMT"
    with pytest.raises(MdsymError, match="is an ASE calculator: it has no device"):
        load_model(EMT(), device="cuda")
    with pytest.raises(MdsymError, match="computes in its own precision"):
        load_model(EMT(), dtype="float32")
    ready = load_model("analytic", device="cpu")
    assert load_model(ready, device="cpu", dtype="float64") is ready
    with pytest.raises(MdsymError, match="is float64, not float32"):
        load_model(ready, dtype="float32")


@pytest.mark.parametrize("device,fragment", [("gpu", "unknown device 'gpu'"),
                                             ("mps", "unknown device 'mps'")])
def test_unknown_devices_are_one_line(device, fragment):
    with pytest.raises(MdsymError, match=fragment):
        load_model("analytic", device=device)


# --- the command line -----------------------------------------------------------------


def test_device_cpu_and_dtype_on_the_command_line():
    """`equivariance --device cpu --dtype float32` measures the float32 model: the same A
    as float64 to float32 precision."""
    common = ["equivariance", "--model", ANISOTROPIC, "--structure", "cu-cluster-55", "--degree", "1",
              "--json"]
    results = {}
    for dtype in ("float32", "float64"):
        done = mdsym(*common, "--device", "cpu", "--dtype", dtype)
        assert done.returncode == 0, done.stderr
        results[dtype] = json.loads(done.stdout)
        assert (results[dtype]["device"], results[dtype]["dtype"]) == ("cpu", dtype)
    a32, a64 = results["float32"]["forces"]["A"], results["float64"]["forces"]["A"]
    assert a64 > 1e-3 and abs(a32 - a64) < 1e-4 * a64


@pytest.mark.skipif(CUDA, reason="CUDA is available here: --device cuda is not refused")
@pytest.mark.parametrize("command", ["equivariance", "run", "serve"])
def test_device_cuda_without_cuda_is_one_line(command, tmp_path):
    out = tmp_path / "run"
    extra = {"equivariance": ["--structure", "ethanol"],
             "run": ["--steps", "2", "--out", str(out)],
             "serve": ["--structure", "ethanol", "--unix", "nobody-listens"]}[command]
    result = mdsym(command, "--model", "analytic", "--device", "cuda", *extra)
    one_line_error(result, "device cuda: CUDA is not available on this machine")
    assert not out.exists()  # refused before the run directory is made


def test_bad_dtype_is_one_line():
    one_line_error(mdsym("equivariance", "--dtype", "float16"), "'--dtype': 'float16' is not one of")


def test_run_records_device_and_dtype_and_resumes_in_them(tmp_path):
    out = tmp_path / "run"
    base = ["run", "--model", "analytic", "--structure", "cu-cluster-55", "--no-progress",
            "--ensemble", "nve"]
    done = mdsym(*base, "--steps", "3", "--device", "cpu", "--dtype", "float32", "--out", str(out))
    assert done.returncode == 0, done.stderr
    info = json.loads((out / "run.json").read_text())
    assert info["config"]["device"] == "cpu" and info["config"]["dtype"] == "float32"
    assert info["segments"][-1]["device"] == "cpu"
    atoms = ase.io.read(out / "structure.xyz")
    first = float(np.loadtxt(out / "thermo.csv", delimiter=",", skiprows=1, max_rows=1,
                             usecols=_column(out, "potential_eV")))
    e32 = predictions(atoms, load_model("analytic", dtype="float32"))[0]
    e64 = predictions(atoms, load_model("analytic"))[0]
    assert abs(first - e32) < 1e-9 < abs(first - e64)  # the run computed in float32
    resumed = mdsym("run", "--resume", str(out), "--steps", "5", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((out / "run.json").read_text())["config"]["dtype"] == "float32"
    default = mdsym(*base, "--steps", "1", "--out", str(tmp_path / "default"))
    assert default.returncode == 0, default.stderr
    config = json.loads((tmp_path / "default" / "run.json").read_text())["config"]
    assert config["device"] == "auto" and config["dtype"] == "float64"  # the model's own


def _column(out, name):
    return (out / "thermo.csv").read_text().splitlines()[0].split(",").index(name)


def test_ipi_engine_serves_in_the_requested_dtype(tmp_path):
    """`run --engine ipi --dtype float32`: the `mdsym serve` client gets --device and
    --dtype, and i-PI's first energy is the float32 model's."""
    from mdsym.md.config import RunConfig
    from mdsym.md.ipi_engine.clients import serve_command
    from mdsym.md.ipi_engine.sockets import Socket

    command = serve_command(RunConfig(model="analytic", device="cpu", dtype="float32"), ETHANOL,
                            Socket("unix", "x"))
    assert command[command.index("--device") + 1] == "cpu"
    assert command[command.index("--dtype") + 1] == "float32"
    out = tmp_path / "run"
    done = mdsym("run", "--engine", "ipi", "--model", "analytic", "--structure", "cu-cluster-55",
                 "--ensemble", "nve", "--steps", "2", "--no-progress", "--dtype", "float32",
                 "--device", "cpu", "--out", str(out))
    assert done.returncode == 0, done.stderr
    first = float(np.loadtxt(out / "thermo.csv", delimiter=",", skiprows=1, max_rows=1,
                             usecols=_column(out, "potential_eV")))
    atoms = ase.io.read(out / "structure.xyz")
    e32 = predictions(atoms, load_model("analytic", dtype="float32"))[0]
    e64 = predictions(atoms, load_model("analytic"))[0]
    assert abs(first - e32) < 1e-7 < abs(first - e64)


# --- CUDA, where there is one -----------------------------------------------------------


@pytest.mark.skipif(not CUDA, reason="needs CUDA")
@pytest.mark.parametrize("spec,dtype,tolerance", [(ANISOTROPIC, "float64", 1e-9),
                                                  (ANISOTROPIC, "float32", FLOAT32_TOLERANCE),
                                                  ("pet-ethanol", None, 1e-4)])
def test_cuda_agrees_with_cpu(spec, dtype, tolerance, small_crystal):
    atoms = ase.io.read(ETHANOL) if spec.startswith("pet") else small_crystal
    on_cpu = load_model(spec, device="cpu", dtype=dtype)
    on_cuda = load_model(spec, device="cuda", dtype=dtype)
    assert on_cuda.device.type == "cuda" and load_model(spec, dtype=dtype).device.type == "cuda"
    for symmetrize in ("none", "o3:3"):
        e_cpu, f_cpu, s_cpu = predictions(atoms, on_cpu, symmetrize)
        e_gpu, f_gpu, s_gpu = predictions(atoms, on_cuda, symmetrize)
        assert abs(e_gpu - e_cpu) < tolerance * abs(e_cpu)
        assert np.abs(f_gpu - f_cpu).max() < tolerance * max(1.0, np.abs(f_cpu).max())
        assert np.abs(s_gpu - s_cpu).max() <= tolerance * max(1.0, np.abs(s_cpu).max())


def test_device_benchmark_runs_and_compares_forces():
    """Smoke test of benchmarks/bench_devices.py on a tiny input (no figure checked but
    the force comparison it makes before timing)."""
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    import bench_devices

    result = bench_devices.run(models=("analytic",), sizes=(9,), symmetrize=("none",), budget_s=0.2,
                               log=lambda line: None)
    rows = {(r["device"], r["dtype"]): r for r in result["rows"]}
    assert ("cpu", "float64") in rows and ("cpu", "float32") in rows
    assert rows[("cpu", "float64")]["reference"] == "cpu/float64"
    assert 0 < rows[("cpu", "float32")]["max_force_difference_eVA"] < 1e-3
    assert all(r["steps_per_s"] > 0 for r in rows.values())
    assert "| analytic | 9 | none | cpu | float32 |" in bench_devices.markdown(result)
