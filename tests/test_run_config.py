"""RunConfig: one typed configuration, one set of defaults, run.json round trips,
versions refused in one line, and a resumed run that equals the uninterrupted one."""

import dataclasses
import json
import re
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import mdsym.md.run as engine_run
from mdsym.cli.main import main
from mdsym.cli.run import run as run_command
from mdsym.core.defaults import structure_path
from mdsym.core.errors import MdsymError
from mdsym.md.config import CONFIG_VERSION, LEGACY_FIELDS, RunConfig
from mdsym.md.run import read_config, resume_md, run_md
from mdsym.md.rundir import RunDirectory

CLUSTER = str(structure_path("cu-cluster-55"))
#: mdsym run's options that are not part of a run's configuration
NOT_CONFIG = {"out", "resume", "progress", "yes", "help"}


def run_options():
    return [p for p in run_command.params if p.name not in NOT_CONFIG]


# --- the dataclass -----------------------------------------------------------------


def every_field_changed() -> RunConfig:
    """A valid configuration in which every field differs from its default."""
    config = RunConfig(
        model="analytic:bond2=0.05", structure=CLUSTER, symmetrize="o3:2:rotated",
        forces="conservative", batch_size=7, threads="2", device="cpu", dtype="float32", variant="pbe",
        engine="ipi", ensemble="nve",
        thermostat="langevin", timestep_fs=1.25, steps=17, temperature_K=123.0,
        thermostat_tau_fs=55.0, seed=9, stride=3, checkpoint_stride=6, socket="tcp",
        port=31415, address="0.0.0.0", drivers=2, beads=4, latency_s=2e-3, average_in="ipi",
        min_distance_A=0.7, max_temperature_factor=8.0, connectivity=False)
    default = RunConfig()
    same = [f.name for f in dataclasses.fields(RunConfig)
            if getattr(config, f.name) == getattr(default, f.name)]
    assert same == [], same
    return config


def test_run_json_round_trips_every_field(tmp_path):
    config = every_field_changed()
    rundir = RunDirectory(tmp_path)
    rundir.write_info({"config": config.to_json()})
    written = json.loads(rundir.info.read_text())["config"]
    assert written["config_version"] == CONFIG_VERSION
    assert set(written) == {"config_version"} | {f.name for f in dataclasses.fields(RunConfig)}
    assert written["symmetrize"] == "o3:2:rotated"
    assert read_config(tmp_path) == config


@pytest.mark.parametrize("change,fragment", [
    (dict(timestep_fs=0), "--timestep must be positive"),
    (dict(steps=-1), "--steps must be >= 0"),
    (dict(stride=1.5), "--stride must be a whole number"),
    (dict(engine="gromacs"), "--engine must be one of ase, ipi"),
    (dict(ensemble="nvt", temperature_K=0.0), "nvt needs a positive --temperature"),
    (dict(beads=4), "--beads and --drivers are options of the i-PI engine"),
    (dict(symmetrize="o3:nope"), "bad degree 'nope'"),
    (dict(threads="many"), "--threads must be 'auto' or a number"),
    (dict(port=70000), "--port must be <= 65535"),
    (dict(connectivity="yes"), "must be true or false"),
])
def test_every_bad_setting_is_one_line(change, fragment):
    with pytest.raises(MdsymError) as error:
        RunConfig(**change)
    assert fragment in str(error.value) and "\n" not in str(error.value)


def test_an_unknown_setting_is_one_line():
    with pytest.raises(MdsymError, match="unknown run setting 'timestep'"):
        RunConfig.coerce({"timestep": 1.0})


# --- the CLI -------------------------------------------------------------------------


def _skip_md(monkeypatch):
    """run_md builds the context and writes run.json, then stops before the engine."""
    def no_md(rundir, info, context, resume, progress):
        info.update(status="completed", steps_done=0)
        rundir.write_info(info)
        return info

    monkeypatch.setattr(engine_run, "_run_segment", no_md)


#: a value for every option of ``mdsym run`` (none its default) and what the
#: configuration must hold then; the i-PI engine takes them all
GIVEN = {
    "model": ("analytic:vector1=0.02", "analytic:vector1=0.02"),
    "structure": ("cu-cluster-55", "cu-cluster-55"),  # a shipped structure is recorded by its name
    "engine": ("ipi", "ipi"),
    "ensemble": ("nve", "nve"),
    "thermostat": ("langevin", "langevin"),
    "timestep_fs": ("1.5", 1.5),
    "steps": ("12", 12),
    "temperature_K": ("250", 250.0),
    "thermostat_tau_fs": ("40", 40.0),
    "seed": ("5", 5),
    "symmetrize": ("O3:1:Rotated", "o3:1:rotated"),  # i-PI averages it: no fixes
    "average_in": ("ipi", "ipi"),
    "forces": ("conservative", "conservative"),
    "batch_size": ("8", 8),
    "stride": ("4", 4),
    "socket": ("tcp", "tcp"),
    "port": ("31234", 31234),
    "address": ("127.0.0.1", "127.0.0.1"),
    "drivers": ("2", 2),
    "beads": ("3", 3),
    "min_distance_A": ("0.8", 0.8),
    "max_temperature_factor": ("7", 7.0),
    "connectivity": (None, False),  # --no-connectivity
    "threads": ("1", "1"),
    "device": ("cpu", "cpu"),
    "dtype": ("float32", "float32"),
    "variant": ("pbe", "pbe"),  # with a metatomic model that declares it (the test makes one)
}


def test_every_run_option_lands_in_run_json(tmp_path, monkeypatch):
    _skip_md(monkeypatch)
    from .user_models import export_foundation_like  # --variant needs a model with variants

    model = tmp_path / "variants.pt"
    export_foundation_like(model, types=(29,))
    GIVEN = dict(globals()["GIVEN"], model=(str(model), str(model)))
    options = {p.name: p for p in run_options()}
    assert set(options) == set(GIVEN), "a new option of mdsym run: add it to GIVEN"
    args = []
    for name, (text, expected) in GIVEN.items():
        assert expected != RunConfig.default(name), name
        flag = max(options[name].opts, key=len)
        args += [flag] if text is None else [flag, text]
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["run", *args, "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    written = json.loads((out / "run.json").read_text())["config"]
    for name, (_, expected) in GIVEN.items():
        assert written[name] == expected, name


def test_a_default_only_run_has_the_dataclass_defaults(tmp_path, monkeypatch):
    _skip_md(monkeypatch)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["run", "--no-progress"])
    assert result.exit_code == 0, result.output
    (run_json,) = (tmp_path / "runs").glob("run-*/run.json")
    written = json.loads(run_json.read_text())["config"]
    # --dtype left open is recorded as the precision the model runs in, its own
    assert written.pop("dtype") == "float32" and RunConfig.default("dtype") is None
    assert written == {k: v for k, v in RunConfig().to_json().items() if k != "dtype"}


def test_run_help_shows_the_dataclass_defaults():
    text = subprocess.run([sys.executable, "-m", "mdsym", "run", "--help"], capture_output=True,
                          text=True, timeout=120, check=True).stdout
    # click wraps the help: an option's entry runs until the next line that starts an option
    entries = re.split(r"\n(?=  (?:-\w, )?--)", text.split("Options:", 1)[1])
    defaults = RunConfig()
    for option in run_options():
        flag = max(option.opts, key=len)
        (entry,) = [e for e in entries if re.match(rf"\s*(-\w, )?{flag}[ \n]", e)]
        shown = re.search(r"\[default:\s*(.*?)\s*[;\]]", entry, re.S)
        value = getattr(defaults, option.name)
        if value is None or option.is_flag:
            assert shown is None, flag
            continue
        assert shown is not None, flag
        assert "".join(shown.group(1).split()) == "".join(str(value).split()), flag
    assert defaults.connectivity is True  # what --no-connectivity turns off


# --- run.json of this and other versions ------------------------------------------------


def ase_config(**changes) -> RunConfig:
    """NVE velocity Verlet on the 55-atom copper cluster with an anisotropic analytic model."""
    return RunConfig(model="analytic:bond2=0.05,vector1=0.02", structure=CLUSTER, engine="ase",
                     ensemble="nve", timestep_fs=2.0, steps=40, temperature_K=300.0, seed=3,
                     stride=5, threads="1").replace(**changes)


def frames(rundir):
    universe = rundir.universe()
    return [(ts.frame, ts.positions.copy(), ts.velocities.copy(), ts.forces.copy())
            for ts in universe.trajectory]


def test_a_resumed_run_equals_the_uninterrupted_one(tmp_path):
    """20 steps, then --resume to 40: the same thermo rows and frames, to round-off,
    as 40 steps in one go (the checkpoint keeps full precision)."""
    straight = RunDirectory(tmp_path / "straight")
    assert run_md(ase_config(), straight.path)["status"] == "completed"
    resumed = RunDirectory(tmp_path / "resumed")
    assert run_md(ase_config(steps=20), resumed.path)["status"] == "completed"
    info = resume_md(resumed.path, steps=40)
    assert info["status"] == "completed" and len(info["segments"]) == 2
    assert read_config(resumed.path) == ase_config(dtype="float64")  # the analytic model's own

    a, b = straight.read_thermo(), resumed.read_thermo()
    assert list(b["step"]) == list(range(41))
    for column in a:
        scale = max(np.abs(a[column]).max(), 1e-300)
        np.testing.assert_allclose(b[column], a[column], rtol=0, atol=1e-12 * scale, err_msg=column)
    # the dynamics moved: the comparison is not of two constant series
    assert np.ptp(a["kinetic_eV"]) > 1e-3
    fa, fb = frames(straight), frames(resumed)
    assert len(fa) == len(fb) == 9
    for x, y in zip(fa, fb):
        for u, v in zip(x[1:], y[1:]):
            np.testing.assert_allclose(v, u, rtol=1e-6, atol=1e-6 * np.abs(u).max())


@pytest.fixture
def short_run(tmp_path):
    rundir = RunDirectory(tmp_path / "run")
    run_md(ase_config(steps=10), rundir.path)
    return rundir


def _rewrite_config(rundir, change):
    info = json.loads(rundir.info.read_text())
    change(info["config"])
    rundir.info.write_text(json.dumps(info))


@pytest.mark.parametrize("change,fragment", [
    (lambda c: c.update(config_version=CONFIG_VERSION + 1),
     f"was written by mdsym config version {CONFIG_VERSION + 1}; this mdsym reads version {CONFIG_VERSION}"),
    (lambda c: c.update(spin_orbit=True), "fields it does not know: spin_orbit"),
    (lambda c: c.pop("beads"), "missing: beads"),
    (lambda c: (c.pop("config_version"), c.update(mystery=1)),
     f"was written by no config version; this mdsym reads version {CONFIG_VERSION}"),
])
def test_a_run_json_of_another_version_is_refused_in_one_line(short_run, change, fragment):
    _rewrite_config(short_run, change)
    result = subprocess.run([sys.executable, "-m", "mdsym", "run", "--resume", str(short_run.path),
                             "--steps", "20", "--no-progress"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and str(short_run.info) in lines[0], result.stderr
    assert short_run.read_thermo()["step"].max() == 10  # nothing ran


def test_analyze_says_why_it_skips_what_needs_the_model(short_run):
    from mdsym.workflows.analyze import analyze_run

    _rewrite_config(short_run, lambda c: c.update(config_version=CONFIG_VERSION + 1))
    report = analyze_run(short_run.path, plots=False)
    assert "skipped" in report["equivariance"]
    assert any(f"config version {CONFIG_VERSION + 1}" in note for note in report["notes"])
    assert report["drift"]["slope_meV_atom_ps"] is not None  # the rest is analysed


def test_a_version_less_run_json_of_today_is_read_as_the_current_version(short_run):
    """run.json files written before config_version: ``structure`` named the run
    directory's copy, ``source_structure`` the file given."""
    config = read_config(short_run.path)

    def legacy(c):
        for key in set(c) - LEGACY_FIELDS:
            c.pop(key)
        c.update(structure=str(short_run.structure), source_structure=CLUSTER)

    _rewrite_config(short_run, legacy)
    # the fields it lacks are at their defaults (dtype: the model's own, recorded on resume)
    assert read_config(short_run.path) == config.replace(dtype=None)
    info = resume_md(short_run.path, steps=20)
    assert info["status"] == "completed" and info["config"]["config_version"] == CONFIG_VERSION
    from mdsym.workflows.analyze import analyze_run

    assert "A_forces" in analyze_run(short_run.path, plots=False)["equivariance"]
