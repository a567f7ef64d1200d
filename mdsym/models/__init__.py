"""Model adapters behind one interface (``mdsym.models.base.Model``).

``load_model`` accepts:

- an mdsym ``Model``, an ASE calculator or a torch module following the native
  protocol (``mdsym.models.native``);
- ``analytic`` or ``analytic:TERMS`` (``mdsym.models.analytic``), e.g.
  ``analytic:bond2=0.05,vector3-=0.01,direct1=0.02,axis=1/0/0``: terms are
  ``<kind><degree>[-]=<strength in eV>`` with kind ``bond`` / ``vector`` (energy,
  ``-`` for a pseudo-tensor term) or ``direct`` (a non-conservative force term);
- the short name of a model shipped with mdsym (``mdsym.models.shipped``);
- ``path/to/file.py:Name``: the object ``Name`` of a Python file (what i-PI users
  pass as ``-P file.py``): an ASE calculator, a torch module or an mdsym model, or
  a class or function that returns one when called without arguments;
- a path to a ``.pt`` file: a metatomic model, or a TorchScript native model.

``device`` and ``dtype`` say where the model runs and in which precision
(``mdsym.models.devices``): ``device`` cpu, cuda, cuda:N or auto (None: auto),
``dtype`` float32 or float64 (None: the model's own). An mdsym ``Model`` passed in
is used as it is: it must already be where they say. ASE calculators have neither.
``variant`` picks a metatomic model's energy variant ``energy/NAME``
(``mdsym.models.outputs``); other models have none and refuse one.
"""

import importlib.util
import re
import zipfile
from pathlib import Path

import torch
from ase.calculators.calculator import BaseCalculator

from mdsym.core.errors import MdsymError
from mdsym.models import shipped
from mdsym.models.analytic import AnalyticModel, SpuriousTerm
from mdsym.models.ase_calculator import ASECalculatorModel
from mdsym.models.base import Model, TorchModel
from mdsym.models.devices import dtype_name, resolve_device, resolve_dtype
from mdsym.models.native import NativeModel, load_torchscript
from mdsym.models.outputs import normalise_variant

DEFAULT_ANALYTIC = "analytic:bond2=0.05,vector1=0.05"

_TERM = re.compile(r"^(bond|vector|direct)(\d+)(-?)$")


def parse_analytic(spec: str) -> AnalyticModel:
    """Build an ``AnalyticModel`` from ``analytic[:key=value,...]``."""
    _, _, body = spec.partition(":")
    if not body:
        return parse_analytic(DEFAULT_ANALYTIC)
    terms, direct_terms, options = [], [], {}
    for item in body.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise MdsymError(f"bad analytic model option {item!r}: expected key=value")
        try:
            match = _TERM.match(key)
            if match:
                kind, degree, minus = match.group(1), int(match.group(2)), match.group(3)
                if kind == "direct":
                    direct_terms.append(SpuriousTerm(degree, 1, float(value), "vector"))
                else:
                    terms.append(SpuriousTerm(degree, -1 if minus else 1, float(value), kind))
            elif key == "axis":
                options["axis"] = tuple(float(x) for x in value.split("/"))
                if len(options["axis"]) != 3:
                    raise ValueError("axis needs three components x/y/z")
            elif key in ("cutoff", "depth", "stiffness", "equilibrium"):
                options[key] = float(value)
            else:
                raise ValueError(f"unknown option {key!r}")
        except ValueError as error:
            raise MdsymError(f"bad analytic model option {item!r}: {error}") from None
    return AnalyticModel(terms=tuple(terms), direct_terms=tuple(direct_terms), **options)


def load_model(spec, forces: str = "auto", device=None, dtype=None, variant=None) -> Model:
    """Any supported model as an mdsym ``Model`` (see the module docstring)."""
    model = _load(spec, forces, device, dtype, variant)
    if normalise_variant(variant) is not None and model.variant is None:
        raise MdsymError(f"model {model.name} declares no energy variants (only metatomic "
                         f"models do): drop --variant {variant}")
    return model


def _load(spec, forces, device, dtype, variant) -> Model:
    if isinstance(spec, Model):
        _check_placed(spec, device, dtype)
        return spec
    if isinstance(spec, BaseCalculator):
        model = ASECalculatorModel(spec)
        _check_placed(model, device, dtype)
        return model
    placement = {"forces": forces, "device": device, "dtype": dtype}
    if isinstance(spec, torch.nn.Module):
        return NativeModel(spec, name=type(spec).__name__, **placement)
    text = str(spec)
    if text == "analytic" or text.startswith("analytic:"):
        return NativeModel(parse_analytic(text), name=text, **placement)
    python = _PYTHON_OBJECT.match(text)
    if python:
        return load_python(python["path"], python["name"], **placement)

    if text in shipped.names():
        return load_file(shipped.path(text), name=text, variant=variant, **placement)
    path = Path(text)
    if path.suffix or "/" in text:
        return load_file(path, variant=variant, **placement)
    raise MdsymError(
        f"unknown model {text!r}: give a file, 'analytic[:...]' or one of the shipped "
        f"models: {', '.join(shipped.names()) or '(none installed)'}"
    )


_PYTHON_OBJECT = re.compile(r"^(?P<path>.+\.py)(?::(?P<name>[A-Za-z_][A-Za-z0-9_]*))?$")


def load_python(path, name, forces: str = "auto", device=None, dtype=None) -> Model:
    """The object ``name`` of the Python file ``path`` as an mdsym model."""


    path = Path(path)
    if not path.is_file():
        raise MdsymError(f"model file not found: {path}")
    if not name:
        raise MdsymError(f"name the object to load from {path}: {path}:NAME "
                         "(an ASE calculator, a torch module, or a class or function returning one)")
    spec = importlib.util.spec_from_file_location(f"mdsym_user_model_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        raise MdsymError(f"cannot import {path}: {type(error).__name__}: {error}") from None
    if not hasattr(module, name):
        raise MdsymError(f"{path} defines no {name!r}")
    found = getattr(module, name)
    if not isinstance(found, (Model, BaseCalculator, torch.nn.Module)) and callable(found):
        try:
            found = found()
        except Exception as error:
            raise MdsymError(f"{path}:{name}() failed: {type(error).__name__}: {error}") from None
    if isinstance(found, BaseCalculator):
        model = ASECalculatorModel(found, name=f"{path.name}:{name}")
        _check_placed(model, device, dtype)
        return model
    if isinstance(found, torch.nn.Module):
        return NativeModel(found, name=f"{path.name}:{name}", forces=forces, device=device,
                           dtype=dtype)
    if isinstance(found, Model):
        _check_placed(found, device, dtype)
        return found
    raise MdsymError(f"{path}:{name} is a {type(found).__name__}, not an ASE calculator, a torch module "
                     "or an mdsym model")


def load_file(path, name=None, forces: str = "auto", device=None, dtype=None, variant=None) -> Model:
    """A ``.pt`` file: a metatomic model (with its ``variant``), or native TorchScript."""
    path = Path(path)
    if not path.is_file():
        raise MdsymError(f"model file not found: {path}")
    if not zipfile.is_zipfile(path):  # TorchScript and metatomic files are zip archives
        raise MdsymError(f"cannot load {path}: not a model file (a metatomic or TorchScript .pt "
                         "is a zip archive written by torch: AtomisticModel.save, torch.jit.save)")
    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except Exception:
        module = None  # not plain TorchScript: maybe a metatomic model with extensions
    if module is None or hasattr(module, "capabilities"):
        from mdsym.models.metatomic import MetatomicModel  # metatomic-torch loads for its files only

        return MetatomicModel(path, name=name, forces=forces, device=device, dtype=dtype,
                              variant=variant)
    return NativeModel(module, name=name or path.stem, forces=forces, device=device, dtype=dtype)


def _check_placed(model: Model, device, dtype) -> None:
    """A ready-made model (or an ASE calculator) stays where it is: one line if asked
    for another device or dtype than it has (None and auto ask for nothing)."""
    if model.dtype is None:  # not a torch model: no device, its own precision
        what = "an ASE calculator" if isinstance(model, ASECalculatorModel) else "not a torch model"
        if device is not None and str(device).strip().lower() not in ("auto", "cpu"):
            raise MdsymError(f"model {model.name} is {what}: it has no device; drop --device {device}")
        if dtype is not None:
            raise MdsymError(f"model {model.name} is {what}: it computes in its own precision; "
                             f"drop --dtype {dtype}")
        return
    if device is not None and str(device).strip().lower() != "auto":
        if resolve_device(device) != model.device:
            raise MdsymError(f"model {model.name} is on {model.device}, not {device}: build it there")
    if dtype is not None and resolve_dtype(dtype, model.dtype) != model.dtype:
        raise MdsymError(f"model {model.name} is {dtype_name(model.dtype)}, not {dtype}: "
                         "build it in that dtype")


__all__ = ["Model", "TorchModel", "NativeModel", "AnalyticModel", "SpuriousTerm",
           "load_model", "load_python", "load_torchscript", "parse_analytic"]
