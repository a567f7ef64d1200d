"""mdsym: serve unconstrained ML potentials to MD engines, symmetrize them on the fly,
and measure what their lack of symmetry does to the dynamics.

The public names are loaded on first use (PEP 562), so ``import mdsym`` (and the
command line) loads neither torch nor ASE until a model or a calculator is asked for.
"""

__version__ = "0.1.0"

#: public name -> the module that defines it
_PUBLIC = {
    "MdsymCalculator": "mdsym.serving.ase_calculator",
    "MdsymError": "mdsym.core.errors",
    "SymmetrizedModel": "mdsym.symmetry.symmetrized",
    "SymmetrizeSpec": "mdsym.symmetry.spec",
    "System": "mdsym.core.system",
    "load_model": "mdsym.models",
    "read_structure": "mdsym.core.system",
}

__all__ = sorted(_PUBLIC) + ["__version__"]


def __getattr__(name):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'mdsym' has no attribute {name!r}")
    import importlib  # PEP 562: the defining module is imported on first use

    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
