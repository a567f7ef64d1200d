"""Every bad input of `mdsym equivariance` is one clear line and a non-zero exit."""

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
    ("degree too large", ["--degree", "80"], "outside what the quadratures provide"),
    ("negative degree", ["--degree", "-1"], "outside what the quadratures provide"),
    ("bad spec", ["--symmetrize", "o3:zz"], "bad degree"),
    ("bad analytic", ["--model", "analytic:bond3=0.1"], "even degree"),
])
def test_bad_inputs(structures, case, args, fragment):
    args = [a.format(**structures) for a in args]
    one_line_error(mdsym("equivariance", *args), fragment)


def test_unknown_species_for_a_metatomic_model(structures, tmp_path):
    from .metatomic_model import export

    model = tmp_path / "pairs.pt"
    export(model)
    one_line_error(
        mdsym("equivariance", "--model", str(model), "--structure", str(structures["oxygen"])),
        "does not know species O",
    )
