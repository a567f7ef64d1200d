"""Where a model runs and in which precision: ``--device`` and ``--dtype``.

Every torch model of mdsym builds its tensors on one device in one dtype, and hands
its predictions back as float64 numpy arrays on the CPU, so the symmetrizer's
averaging and everything downstream is the same whatever the device and dtype.

- device: ``auto`` (CUDA when ``torch.cuda.is_available()``, else the CPU), ``cpu``,
  ``cuda`` or ``cuda:N``;
- dtype: ``float32`` or ``float64``; ``None`` keeps the model's own (float64 for the
  analytic and native models, the declared ``capabilities.dtype`` of a metatomic model).
"""

import torch

from mdsym.core.errors import MdsymError

DEFAULT_DEVICE = "auto"
DEVICE_HELP = "Where the model runs: cpu, cuda, cuda:N or auto (CUDA when available)."
DTYPES = {"float32": torch.float32, "float64": torch.float64}
DTYPE_HELP = ("Precision of the model: float32 or float64 (default: the model's own, float64 for "
              "analytic and native models, the declared dtype of a metatomic model).")


def resolve_device(name=None) -> torch.device:
    """The torch device for ``name`` (None: DEFAULT_DEVICE); one line when it cannot be used."""
    if isinstance(name, torch.device):
        name = str(name)
    text = DEFAULT_DEVICE if name is None else str(name).strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(text)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise MdsymError(f"unknown device {name!r}: use cpu, cuda, cuda:N or auto")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            cuda = torch.version.cuda
            build = "a CPU-only build" if cuda is None else f"built for CUDA {cuda}"
            raise MdsymError(f"device {text}: CUDA is not available on this machine (torch "
                             f"{torch.__version__}, {build}); use --device cpu or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise MdsymError(f"device {text}: this machine has {torch.cuda.device_count()} "
                             "CUDA device(s), numbered from 0")
    return device


def resolve_dtype(name, default: torch.dtype) -> torch.dtype:
    """The torch dtype for ``name`` (``float32``, ``float64`` or a torch dtype; None: ``default``)."""
    if name is None:
        return default
    if isinstance(name, torch.dtype):
        name = str(name).removeprefix("torch.")
    dtype = DTYPES.get(str(name).strip().lower())
    if dtype is None:
        raise MdsymError(f"unknown dtype {name!r}: use float32 or float64")
    return dtype


def dtype_name(dtype) -> str:
    """``float32`` / ``float64``, as run.json and the CLI spell it."""
    return str(dtype).removeprefix("torch.")
