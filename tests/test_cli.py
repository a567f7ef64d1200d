"""Every bad input of `mdsym equivariance` is one clear line and a non-zero exit."""

import json
import subprocess
import sys

import numpy as np
import pytest


def mdsym(*args):
    return subprocess.run([sys.executable, "-m", "mdsym", *args], capture_output=True, text=True, timeout=120)


def one_line_error(result, fragment):
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert fragment in lines[0], lines[0]


@pytest.fixture
def structures(tmp_path, cluster):
    paths = {}
    paths["good"] = tmp_path / "good.xyz"
    cluster.write(paths["good"])
    bad = cluster.copy()
    bad.positions[3] = np.nan
    paths["nan"] = tmp_path / "nan.xyz"
    bad.write(paths["nan"])
    oxygen = cluster.copy()
    oxygen.numbers[0] = 8
    paths["oxygen"] = tmp_path / "oxygen.xyz"
    oxygen.write(paths["oxygen"])
    paths["garbage"] = tmp_path / "garbage.xyz"
    paths["garbage"].write_text("three\nnot a structure\nCu 0 0\n")
    paths["corrupt_model"] = tmp_path / "corrupt.pt"
    paths["corrupt_model"].write_bytes(b"\x00\x01 not a model")
    return paths


def test_defaults_run(structures):
    result = mdsym("equivariance", "--degree", "1")
    assert result.returncode == 0, result.stderr
    assert "energy" in result.stdout and "forces" in result.stdout


@pytest.mark.parametrize("case,args,fragment", [
    ("missing model", ["--model", "nowhere/model.pt"], "model file not found"),
    ("corrupt model", ["--model", "{corrupt_model}"], "cannot load"),
    ("unknown name", ["--model", "pet-nothing"], "unknown model"),
    ("missing structure", ["--structure", "nowhere.xyz"], "structure file not found"),
    ("unreadable structure", ["--structure", "{garbage}"], "cannot read structure file"),
    ("nan positions", ["--structure", "{nan}"], "NaN"),
    ("degree too large", ["--degree", "80"], "not in the range 0<=x<=65"),
    ("negative degree", ["--degree", "-1"], "not in the range 0<=x<=65"),
    ("costly degree", ["--degree", "40"], "costs 386056 model evaluations per structure"),
    ("costly spec", ["--degree", "1", "--symmetrize", "o3:30"], "add --yes"),
    ("batch size", ["--batch-size", "0"], "'--batch-size': 0 is not in the range x>=1"),
    ("bad spec", ["--symmetrize", "o3:zz"], "bad degree"),
    ("bad analytic", ["--model", "analytic:bond3=0.1"], "even degree"),
])
def test_bad_inputs(structures, case, args, fragment):
    args = [a.format(**structures) for a in args]
    one_line_error(mdsym("equivariance", *args), fragment)


@pytest.mark.parametrize("case,args,fragment", [
    ("negative temperature", ["--temperature", "-10"], "'--temperature': -10.0 is not in the range x>=0"),
    ("no steps", ["--steps", "0"], "'--steps': 0 is not in the range x>=1"),
    ("zero timestep", ["--timestep", "0"], "'--timestep': 0.0 is not in the range x>0"),
    ("negative seed", ["--seed", "-3"], "'--seed': -3 is not in the range x>=0"),
    ("costly spec", ["--symmetrize", "o3:99"], "costs 694000 model evaluations per step"),
    ("unknown option", ["--temprature", "3"], "No such option"),
    ("nvt at 0 K", ["--temperature", "0"], "nvt needs a positive --temperature"),
])
def test_bad_run_inputs(tmp_path, case, args, fragment):
    """Out-of-range options are refused before anything runs: nothing written."""
    out = tmp_path / "run"
    one_line_error(mdsym("run", "--model", "analytic", "--structure", "cu-cluster-55",
                         "--steps", "5", "--out", str(out), *args), fragment)
    assert not out.exists()


def test_resume_reads_steps_from_the_command_line_not_argv(tmp_path):
    """``--resume DIR`` without --steps finishes the recorded run; ``--steps N`` extends it
    (click's parameter source decides, whatever else is on the command line)."""
    out = tmp_path / "run"
    base = ["--model", "analytic", "--structure", "cu-cluster-55", "--no-progress"]
    assert mdsym("run", *base, "--steps", "4", "--stride", "2", "--out", str(out)).returncode == 0
    assert mdsym("run", "--resume", str(out), "--no-progress").returncode == 0
    assert json.loads((out / "run.json").read_text())["steps_done"] == 4
    done = mdsym("run", "--resume", str(out), "--steps", "8", "--no-progress")
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "run.json").read_text())["steps_done"] == 8
    assert len((out / "thermo.csv").read_text().splitlines()) == 1 + 9


def test_an_existing_directory_with_run_files_is_never_overwritten(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thermo.csv").write_text("my precious data\n")
    one_line_error(mdsym("run", "--model", "analytic", "--structure", "cu-cluster-55", "--steps", "2",
                         "--out", str(out)), "already holds thermo.csv")
    assert (out / "thermo.csv").read_text() == "my precious data\n"


def test_unknown_species_for_a_metatomic_model(structures, tmp_path):
    from .metatomic_model import export

    model = tmp_path / "pairs.pt"
    export(model)
    one_line_error(
        mdsym("equivariance", "--model", str(model), "--structure", str(structures["oxygen"])),
        "does not know species O",
    )
