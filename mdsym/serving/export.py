"""``export_symmetrized``: a model and a spec as one metatomic ``.pt`` file (``mdsym export``).

The file is a metatomic ``AtomisticModel`` whose module is
``mdsym.symmetry.exported.ExportedSymmetrizedModel`` around the model's own module
(a metatomic model's, or ``mdsym.models.export.NativeAsMetatomic`` around a native or
analytic model), saved with ``AtomisticModel.save``: LAMMPS, i-PI, metatomic-ase and
TorchSim load it as any metatomic model.

What cannot be exported is refused in one line, before anything is written: a model
that is not TorchScript (an ASE calculator, a Python file's calculator), a model
without an energy, a dtype the model does not support, ``o3:auto``, ``mts:K`` (use
``correction``), ``netforce``/``nettorque`` (the engine's own fixes), an existing
file without ``force``. The file is written next to its destination and renamed,
so a failure leaves an existing file as it was.
"""

import os
from pathlib import Path

import torch

from mdsym.core.errors import MdsymError
from mdsym.models import parse_analytic, shipped
from mdsym.models.devices import dtype_name, resolve_dtype
from mdsym.models.export import DIRECT, NativeAsMetatomic, native_capabilities
from mdsym.symmetry import exported
from mdsym.symmetry import quadrature as quad
from mdsym.symmetry.spec import SymmetrizeSpec

DEFAULT_BATCH_SIZE = 8
CORRECTIONS = ("none", "raw", "direct")
#: the metadata keys ``mdsym export`` writes (``ModelMetadata.extra``)
METADATA_PREFIX = "mdsym-"


def mdsym_version() -> str:
    """The installed mdsym's version (what the metadata records)."""
    from importlib.metadata import PackageNotFoundError, version  # only when writing a file

    try:
        return version("mdsym")
    except PackageNotFoundError:
        return "unknown"


def check_spec(spec) -> SymmetrizeSpec:
    """The spec, or one line saying why an exported model cannot hold it."""
    spec = SymmetrizeSpec.parse(spec)
    if spec.mts_interval:
        raise MdsymError(f"{spec} is multiple time stepping, which the engine integrates: export "
                         f"the outer force with --symmetrize {spec.outer()} --correction "
                         f"{'direct' if spec.mts_direct else 'raw'} and give the engine the raw "
                         "model for the inner steps (i-PI <nmts>, LAMMPS run_style respa)")
    if spec.remove_net_force or spec.remove_net_torque:
        raise MdsymError(f"{spec}: netforce and nettorque act on the whole system's forces, which an "
                         "engine's rank does not see (domain decomposition): drop them and use the "
                         "engine's own, LAMMPS 'fix momentum 1 linear 1 1 1 angular' or i-PI <fixcom>")
    if spec.mode == "auto":
        raise MdsymError(f"{spec} chooses its degree from measurements at run time, which an "
                         "exported model does not make: give the degree, o3:L or o3:L:rotated")
    if spec.mode == "none":
        raise MdsymError("--symmetrize none exports nothing to average: give o3:L, so3:L, "
                         "o3:L:rotated or random")
    return spec


def grid_of(spec: SymmetrizeSpec) -> quad.Quadrature:
    """The rotations the exported model averages over (one element for random)."""
    if spec.mode == "random":
        return quad.Quadrature("random", torch.eye(3, dtype=torch.float64).numpy()[None],
                               torch.ones(1, dtype=torch.float64).numpy(), 0, spec.inversion)
    return quad.by_name(spec.family, spec.degree, spec.inversion)


def load_inner(model, dtype=None) -> tuple:
    """``(module, capabilities, metadata, neighbour lists)`` of a model that can go
    inside an exported one; one line for a model that cannot."""
    from metatomic.torch import ModelMetadata  # start-up time: metatomic loads with the command

    text = str(model)
    if text == "analytic" or text.startswith("analytic:"):
        return _native(parse_analytic(text), text, dtype)
    if text.endswith(".py") or ".py:" in text:
        raise MdsymError(f"{text} is a Python object, not a TorchScript model: it cannot be exported; "
                         "serve it to i-PI with 'mdsym serve' or use it in ASE with mdsym's calculator "
                         "(MdsymCalculator)")
    path = shipped.path(text) if text in shipped.names() else Path(text)
    if not path.is_file():
        raise MdsymError(f"model file not found: {path} (give a .pt file, a shipped model "
                         f"({', '.join(shipped.names())}) or analytic[:TERMS])")
    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except Exception:
        module = None  # not plain TorchScript: a metatomic model with extensions, or no model
    if module is not None and not hasattr(module, "capabilities"):
        if not hasattr(module, "cutoff"):
            raise MdsymError(f"{path} is TorchScript but neither a metatomic model nor an mdsym "
                             "native model (no capabilities, no cutoff): it cannot be exported")
        return _native(module, path.stem, dtype)
    return _metatomic(path, dtype, ModelMetadata)


def _native(module, name, dtype) -> tuple:
    from metatomic.torch import ModelMetadata  # start-up time

    chosen = resolve_dtype(dtype, torch.float64)
    module = module.to(dtype=chosen)
    species = getattr(module, "species", None)
    types = sorted(int(z) for z in species) if species is not None else list(range(1, 119))
    capabilities = native_capabilities(module, types, chosen)
    inner = NativeAsMetatomic(module, float(module.cutoff))
    return inner, capabilities, ModelMetadata(name=name), inner.requested_neighbor_lists()


def _metatomic(path, dtype, ModelMetadata) -> tuple:
    from metatomic.torch import NeighborListOptions, load_atomistic_model  # start-up time

    try:
        atomistic = load_atomistic_model(str(path))
    except Exception as error:
        lines = str(error).strip().splitlines()
        raise MdsymError(f"cannot load {path} as a metatomic model: "
                         f"{lines[0] if lines else type(error).__name__}") from None
    capabilities = atomistic.capabilities()
    if "energy" not in capabilities.outputs:
        raise MdsymError(f"{path} has no 'energy' output: mdsym exports models of an energy")
    if len(atomistic.requested_inputs(use_new_names=True)) > 0:
        raise MdsymError(f"{path} requests inputs ({', '.join(atomistic.requested_inputs(use_new_names=True))}) "
                         "that an exported model does not rotate")
    declared = resolve_dtype(capabilities.dtype, torch.float64)
    chosen = resolve_dtype(dtype, declared)
    # float32 weights are float64 numbers: an exact conversion (mdsym.models.metatomic)
    if chosen not in ((declared, torch.float64) if declared == torch.float32 else (declared,)):
        raise MdsymError(f"{path} is {dtype_name(declared)} (its capabilities.dtype) and cannot be "
                         f"exported in {dtype_name(chosen)}: use --dtype {dtype_name(declared)}")
    inner = atomistic.module.to(dtype=chosen)
    lists = []
    for options in atomistic.requested_neighbor_lists():
        copied = NeighborListOptions(options.cutoff, options.full_list, options.strict)
        for requestor in options.requestors():
            copied.add_requestor(requestor)
        lists.append(copied)
    old = atomistic.metadata()
    metadata = ModelMetadata(name=old.name or Path(path).stem, description=old.description,
                             authors=old.authors, references=old.references, extra=old.extra)
    return inner, capabilities, metadata, lists, dtype_name(chosen)


def export_symmetrized(model, spec, out, correction: str = "none", dtype=None, batch_size=None,
                       seed: int = 0, force: bool = False) -> dict:
    """Write ``model`` symmetrized as ``spec`` says to ``out``; return what was written
    (the metadata ``mdsym equivariance`` shows)."""
    from metatomic.torch import AtomisticModel, ModelCapabilities, ModelMetadata  # start-up time

    __version__ = mdsym_version()
    spec = check_spec(spec)
    if correction not in CORRECTIONS:
        raise MdsymError(f"--correction must be one of {', '.join(CORRECTIONS)}, got {correction!r}")
    if batch_size is not None and int(batch_size) < 1:
        raise MdsymError(f"--batch-size must be at least 1, got {batch_size}")
    loaded = load_inner(model, dtype)
    out = Path(out)
    if out.exists() and not force:
        raise MdsymError(f"{out} exists: give --force to replace it")
    if not out.resolve().parent.is_dir():
        raise MdsymError(f"{out}: its folder does not exist")
    inner, capabilities, old_metadata, lists = loaded[:4]
    chosen = loaded[4] if len(loaded) > 4 else capabilities.dtype
    outputs = capabilities.outputs
    has_direct = DIRECT in outputs or "non_conservative_forces" in outputs
    if correction == "direct" and not has_direct:
        raise MdsymError(f"--correction direct subtracts the model's direct forces, and {model} has "
                         "no non_conservative_force output: use --correction raw")
    grid = grid_of(spec)
    batch = int(batch_size or min(DEFAULT_BATCH_SIZE, len(grid)))
    energy = outputs["energy"]
    module = exported.ExportedSymmetrizedModel(
        inner, grid.rotations.reshape(len(grid), 9).tolist(), grid.weights.tolist(),
        mode="random" if spec.mode == "random" else ("rotated" if spec.rotated else "grid"),
        inversion=spec.inversion, seed=int(seed), batch_size=batch,
        correction="" if correction == "none" else correction, has_direct=has_direct,
        energy_sample_kind=energy.sample_kind, neighbor_lists=lists).eval()
    declared = declared_outputs(energy, has_direct or correction == "direct", spec, correction)
    new_capabilities = ModelCapabilities(
        outputs=declared, atomic_types=capabilities.atomic_types,
        interaction_range=capabilities.interaction_range, length_unit=capabilities.length_unit,
        supported_devices=capabilities.supported_devices, dtype=chosen)
    info = {"version": __version__, "model": str(model), "spec": str(spec),
            "grid": grid.name, "grid-size": str(len(grid)), "seed": str(int(seed)),
            "correction": correction, "batch-size": str(batch), "dtype": chosen}
    extra = dict(old_metadata.extra)
    extra.update({METADATA_PREFIX + key: value for key, value in info.items()})
    suffix = "" if correction == "none" else f", correction {correction}"
    metadata = ModelMetadata(
        name=f"{old_metadata.name} [{spec}{suffix}]",
        description=(f"{old_metadata.description} " if old_metadata.description else "")
        + f"Symmetrized by mdsym {__version__}: {spec} on {grid.name} ({len(grid)} rotations){suffix}.",
        authors=old_metadata.authors, references=old_metadata.references, extra=extra)
    partial = out.with_name(f".{out.name}.{os.getpid()}.partial")
    try:
        AtomisticModel(module, metadata, new_capabilities).save(str(partial))
        os.replace(partial, out)
    finally:
        if partial.exists():
            partial.unlink()
    return info


def declared_outputs(energy, direct: bool, spec, correction: str) -> dict:
    """The outputs an exported model declares, with their units and descriptions."""
    from metatomic.torch import ModelOutput  # start-up time

    what = {"none": "average", "raw": "average minus the raw model's",
            "direct": "average minus the raw model's"}[correction]
    outputs = {"energy": ModelOutput(unit=energy.unit, sample_kind=energy.sample_kind,
                                     description=f"energy: O(3) {what} ({spec}, mdsym)")}
    if direct:
        text = ("averaged conservative forces minus the raw direct forces" if correction == "direct"
                else f"direct forces averaged as vectors ({spec}, mdsym)")
        outputs[DIRECT] = ModelOutput(unit="eV/Angstrom", sample_kind="atom", description=text)
    outputs[exported.ENERGY_STD] = ModelOutput(
        unit=energy.unit, sample_kind="system",
        description="rotational standard deviation of the energy over the copies")
    outputs[exported.FORCES_STD] = ModelOutput(
        unit="eV/Angstrom", sample_kind="atom",
        description="rotational standard deviation of the conservative forces, per component")
    if direct and correction != "direct":
        outputs[exported.DIRECT_STD] = ModelOutput(
            unit="eV/Angstrom", sample_kind="atom",
            description="rotational standard deviation of the direct forces, per component")
    return outputs


def export_metadata(path) -> dict:
    """What ``mdsym export`` wrote into a model file (empty for other files)."""
    from metatomic.torch import load_atomistic_model  # start-up time

    try:
        extra = dict(load_atomistic_model(str(path)).metadata().extra)
    except Exception:
        return {}  # not a metatomic model: nothing mdsym wrote
    return {key[len(METADATA_PREFIX):]: value for key, value in extra.items()
            if key.startswith(METADATA_PREFIX)}
