"""mdsym: serve unconstrained ML potentials to MD engines, symmetrize them on the fly,
and measure what their lack of symmetry does to the dynamics."""

from .calculator import MdsymCalculator
from .errors import MdsymError
from .models import load_model
from .symmetrize import Symmetrizer, SymmetrizeSpec
from .system import System, read_structure

__version__ = "0.1.0"

__all__ = ["MdsymCalculator", "MdsymError", "Symmetrizer", "SymmetrizeSpec", "System",
           "load_model", "read_structure", "__version__"]
