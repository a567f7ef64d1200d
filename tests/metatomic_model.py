"""A small metatomic model made inside the tests: the analytic model with a P_2 bond
term on a generic axis, exported with ``mdsym.models.export``."""

from mdsym.models import AnalyticModel, SpuriousTerm
from mdsym.models.export import export_metatomic


def export(path, strength: float = 0.05) -> None:
    model = AnalyticModel(terms=(SpuriousTerm(2, 1, strength),), axis=(0.31, 0.52, 0.79), cutoff=5.0)
    export_metatomic(model, path, atomic_types=[29], name="anisotropic pairs")
