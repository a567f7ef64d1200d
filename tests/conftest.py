import ase.build
import ase.io
import pytest

from mdsym.core.defaults import STRUCTURES


@pytest.fixture
def cluster():
    """55-atom copper cluster (isolated), slightly rattled."""
    return ase.io.read(STRUCTURES / "cu-cluster-55.xyz")


@pytest.fixture
def small_crystal():
    """32-atom periodic copper cell, rattled off the lattice."""
    atoms = ase.build.bulk("Cu", "fcc", a=3.61, cubic=True) * (2, 2, 2)
    atoms.rattle(0.08, seed=3)
    return atoms


@pytest.fixture(scope="module")
def one_torch_thread():
    """Torch on one thread for a module's in-process model calls (as mdsym's
    ``--threads auto`` below 256 atoms), restored afterwards."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
