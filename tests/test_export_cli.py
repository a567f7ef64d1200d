"""The README's ``mdsym export`` commands, run as a user runs them (the installed
``mdsym`` by its full path, in a fresh folder), and the metatomic-ase snippet on what
they wrote, against mdsym's own calculator."""

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MDSYM = Path(sys.executable).parent / "mdsym"

pytestmark = pytest.mark.timeout(300)


def readme_commands():
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### In every metatomic engine: `mdsym export`"):]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.startswith("mdsym ")]


def test_readme_export_commands_as_a_user_runs_them(tmp_path):
    assert MDSYM.is_file(), f"mdsym is not installed beside {sys.executable}"
    commands = readme_commands()
    assert len(commands) == 4 and commands[0].startswith("mdsym export pet-ethanol")
    outputs = []
    for command in commands:
        argv = shlex.split(command)
        finished = subprocess.run([str(MDSYM), *argv[1:]], cwd=tmp_path, capture_output=True,
                                  text=True, timeout=240)
        assert finished.returncode == 0, (command, finished.stderr)
        outputs.append(finished.stdout)
    assert "48 rotations" in outputs[0] and "o3:3:rotated" in outputs[1] and "(raw)" in outputs[2]
    assert "exported by mdsym" in outputs[3] and "symmetrized by o3:3 on lebedev" in outputs[3]
    # the README's Python snippet, on the file the first command wrote
    script = """
import json, ase.io
from metatomic_ase import MetatomicCalculator
from metatomic.torch import ModelOutput
from mdsym import MdsymCalculator, load_model
from mdsym.core.defaults import STRUCTURES
atoms = ase.io.read(STRUCTURES / "ethanol.xyz")
atoms.calc = MetatomicCalculator("pet-ethanol-o3-3.pt", additional_outputs={
    "mdsym::energy_rot_std": ModelOutput(unit="eV", sample_kind="system")})
forces = atoms.get_forces()
std = atoms.calc.additional_outputs["mdsym::energy_rot_std"].block().values.item()
mine = MdsymCalculator(load_model("pet-ethanol"), symmetrize="o3:3")
mine.calculate(atoms.copy(), ["energy", "forces"], ["positions"])
print(json.dumps({"energy": atoms.get_potential_energy() - mine.results["energy"],
                  "forces": float(abs(forces - mine.results["forces"]).max()),
                  "std": std - mine.results["energy_rot_std"]}))
"""
    finished = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                              text=True, timeout=240)
    assert finished.returncode == 0, finished.stderr[-2000:]
    differences = json.loads(finished.stdout.strip().splitlines()[-1])
    assert abs(differences["energy"]) < 1e-3 and differences["forces"] < 1e-4
    assert abs(differences["std"]) < 1e-4
