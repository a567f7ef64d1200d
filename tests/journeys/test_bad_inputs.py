"""Journey 9: bad inputs. Each is ONE line on stderr (`mdsym: error: ...`) naming
what is wrong, exit code 2, and nothing the user had is deleted or changed; a
rejected `mdsym run` starts no run. Requests that would evaluate the model a huge
number of times say how many evaluations (per step) they need and ask for `--yes`
instead of running for minutes in silence."""

import re

import pytest

from .conftest import assert_one_line_error, mdsym, snapshot

FAST_RUN = ("--model", "analytic", "--structure", "cu-cluster-55", "--steps", "2")

# (name, arguments, words the error line must contain, --out of a rejected run)
CASES = [
    ("negative temperature", ("run", "--temperature", "-10", "--out", "r"), ("temperature",), "r"),
    ("zero steps", ("run", "--steps", "0", "--out", "r"), ("steps",), "r"),
    ("zero timestep", ("run", "--timestep", "0", "--out", "r"), ("timestep",), "r"),
    ("missing structure", ("run", "--structure", "missing.xyz", "--out", "r"), ("missing.xyz",), "r"),
    ("unknown model", ("run", "--model", "no-such-model", "--out", "r"), ("no-such-model",), "r"),
    ("bad symmetrization", ("run", "--symmetrize", "o3:x", "--out", "r"), ("o3:x",), "r"),
    ("analyze a missing folder", ("analyze", "missing-run"), ("missing-run",), None),
    ("analyze a folder without run.json", ("analyze", "not-a-run"), ("run.json",), None),
]


@pytest.fixture
def workspace(tmp_path):
    """A user's folder: a file of theirs, and a folder that is not a run."""
    (tmp_path / "notes.txt").write_text("my notes\n")
    (tmp_path / "not-a-run").mkdir()
    (tmp_path / "not-a-run" / "data.csv").write_text("a,b\n1,2\n")
    return tmp_path


@pytest.mark.parametrize("name, args, mentions, out", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_exit_2(workspace, name, args, mentions, out):
    before = snapshot(workspace)
    result = mdsym(*args, cwd=workspace, timeout=120, check=False)
    assert_one_line_error(result, 2, mentions)
    assert snapshot(workspace).items() >= before.items(), "a file of the user's was deleted or changed"
    if out is not None:
        assert not (workspace / out / "run.json").exists(), "a rejected run left a run directory"


def test_run_onto_an_existing_run_loses_nothing(workspace):
    mdsym("run", *FAST_RUN, "--out", "existing", cwd=workspace)
    before = snapshot(workspace)
    assert "existing/run.json" in before and "existing/trajectory.trr" in before
    result = mdsym("run", *FAST_RUN, "--out", "existing", cwd=workspace, check=False)
    assert_one_line_error(result, 2, ("existing",))
    assert snapshot(workspace) == before, "the existing run was changed"


def evaluation_counts(line) -> set:
    return {int(n.replace(",", "").replace("_", "")) for n in re.findall(r"\d[\d,_]*", line)}


@pytest.mark.parametrize("args, quadrature_degree", [
    (("equivariance", "--degree", "40"), 2 * 40 + 1),  # A and B need a rule exact to 2L + 1
    (("run", "--symmetrize", "o3:99", "--steps", "2", "--out", "r"), 99),
], ids=["equivariance --degree 40", "run --symmetrize o3:99"])
def test_huge_quadratures_ask_for_yes(workspace, args, quadrature_degree):
    from mdsym.symmetry.quadrature import cheapest

    evaluations = len(cheapest(quadrature_degree, inversion=True))
    before = snapshot(workspace)
    result = mdsym(*args, cwd=workspace, timeout=45, check=False)
    assert_one_line_error(result, 2, ("--yes",))
    assert evaluations in evaluation_counts(result.stderr_lines[0]), \
        f"the error should give the {evaluations} evaluations\n{result.describe()}"
    assert snapshot(workspace).items() >= before.items()
    assert not (workspace / "r" / "run.json").exists()
