"""How much memory one model call needs, and whether it fits: measured, not guessed.

A torch model's peak memory grows with what one copy holds per atom (node features)
and per neighbour pair (edge features, the pair vectors and their gradients), times
the copies of a batch. mdsym measures both on small evaluations of the model itself
and scales them to the system:

- the probes: the system itself when it has at most ``PROBE_ATOMS`` atoms (one
  probe, all of its peak counted per pair); else its ``PROBE_ATOMS / 2`` and
  ``PROBE_ATOMS`` atoms nearest to atom 0 (through the cell's images when periodic) or
  to its centroid (isolated), as isolated balls, and the larger ball's atoms in a
  periodic cube of its volume: atoms seen with fewer and with bulk-like pairs per atom.
  ``peak = c + a atoms + b pairs`` through the three points gives what a call holds
  whatever its size ``c`` (counted once per call), the bytes per atom ``a`` and per pair ``b``
  (all non-negative: when noise makes one negative, ``c`` is dropped, then all is
  counted per pair);
- each measured call: one copy, energy and forces (and stress when periodic), after a
  warm-up call, and the memory above what was in use before it: on CUDA,
  ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats`` (torch's own
  allocator); on the CPU, the process's peak resident set (``VmHWM`` of
  ``/proc/self/status``, reset by writing 5 to ``/proc/self/clear_refs``) above its
  resident set before the call, taken after ``malloc_trim(0)`` has handed freed heap
  pages back to the system, so the call must fault in all it uses (measured on a PET
  of PET-MAD-XS size, periodic water, one copy: 7.1-8.4 kB per pair in-process at 96
  and 384 atoms and batches of 1 and 2, against 6.6-6.9 kB in a fresh process);
- a batch of ``B`` copies of a system of ``N`` atoms and ``P`` pairs needs
  ``c + B (a N + b P)``. The estimate errs on the large side: for that PET it predicts
  1.6 and 3.9-4.9 GiB per copy at 1008 and 3024 atoms of water (the split between ``a``
  and ``b`` moves from one measurement to the next, their sum much less), where one raw
  call peaks at 1.2 and 2.6 GiB (``benchmarks/bench_scale.py``): atoms at a probe's
  surface hold more than atoms in the bulk.

Memory available: on CUDA ``torch.cuda.mem_get_info`` (free bytes on the device); on the
CPU ``MemAvailable`` of ``/proc/meminfo``, or the cgroup's ``memory.max`` minus
``memory.current`` when that is smaller; or ``MDSYM_MEMORY`` (bytes, or a number with
``KB``, ``MB``, ``GB``, ``KiB``, ``MiB``, ``GiB``) when set and smaller: what mdsym may use
on a shared machine. A batch may use ``USABLE_FRACTION`` of it.

Measuring costs four probe calls, so it is done only for work that could come close
to the memory there is: when ``B (N PRIOR_BYTES_PER_ATOM + P PRIOR_BYTES_PER_PAIR)``
(generous bounds) exceeds the usable memory; it is done once per model and size.
Where nothing can be measured (not Linux, not a torch model), nothing is refused.
"""

import ctypes
import os
import re
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mdsym.core.errors import MdsymError
from mdsym.core.system import System

PROBE_ATOMS = 256
#: bounds above the bytes per atom and per pair of one copy of the models measured
#: here (a PET of PET-MAD-XS size: about 1.3 MB per atom and 2-11 kB per pair): work
#: below them needs no measurement
PRIOR_BYTES_PER_ATOM = 2 * 2**20
PRIOR_BYTES_PER_PAIR = 64 * 2**10
#: the share of the available memory one batch may take (the rest: the process,
#: the trajectory, the other programs of the machine)
USABLE_FRACTION = 0.8


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes per atom and per neighbour pair of one copy, measured on probes."""

    bytes_per_atom: float
    bytes_per_pair: float
    probe_atoms: int
    probes: tuple  # (atoms, pairs, peak bytes) of each probe
    device: str
    how: str  # what was measured
    bytes_fixed: float = 0.0  # what a call holds whatever its size and batch

    @classmethod
    def fit(cls, points, device, how) -> "MemoryEstimate":
        """``peak = c + a atoms + b pairs`` through the probes' points (``probe_of``:
        two balls and a box; one probe: all of it per pair); ``c``, what a call holds
        whatever its size, is counted once per call. Every term non-negative: when the three do not
        fit so, ``c`` is dropped, then ``a`` (all per pair, the largest per-pair figure)."""
        n, p, m = (np.array(column, dtype=float) for column in zip(*points))
        for columns in ((np.ones_like(n), n, p), (n, p)):
            if len(points) < len(columns):
                continue
            coefficients = np.linalg.lstsq(np.column_stack(columns), m, rcond=None)[0]
            if np.all(coefficients >= 0):
                fixed = float(coefficients[0]) if len(coefficients) == 3 else 0.0
                per_atom, per_pair = coefficients[-2:]
                return cls(float(per_atom), float(per_pair), int(n.max()), tuple(points), device, how,
                           fixed)
        return cls(0.0, float(np.max(m / np.maximum(p, 1))), int(n.max()), tuple(points), device, how)

    def bytes_for(self, atoms: int, pairs: int, copies: int = 1) -> float:
        one = self.bytes_per_atom * max(int(atoms), 1) + self.bytes_per_pair * max(int(pairs), 0)
        return self.bytes_fixed + float(one) * max(int(copies), 1)

    def describe(self) -> str:
        return (f"{self.bytes_per_pair / 1024:.1f} kB per pair + {self.bytes_per_atom / 1024:.1f} kB "
                f"per atom, measured on a {self.probe_atoms}-atom probe")


def gib(value) -> str:
    """Bytes as GiB, or MiB below one GiB."""
    return f"{value / 2**30:.1f} GiB" if value >= 2**30 else f"{value / 2**20:.0f} MiB"


def parse_bytes(text) -> int:
    """``12e9``, ``500MB``, ``16 GiB``... as bytes; one line for anything else."""
    match = re.fullmatch(r"\s*([0-9.eE+]+)\s*([KMGT]?i?B)?\s*", str(text), re.IGNORECASE)
    try:
        value = float(match[1])
    except (TypeError, ValueError):
        raise MdsymError(f"MDSYM_MEMORY={text!r}: give bytes, or a number with MB, GB, MiB, GiB") from None
    unit = (match[2] or "B").upper()
    scale = 1024 if "I" in unit else 1000
    return int(value * scale ** "BKMGT".index(unit[0]))


def available_bytes(device) -> int | None:
    """Free memory where ``device`` computes, or ``MDSYM_MEMORY`` when smaller; None
    where it cannot be read."""
    found = [parse_bytes(os.environ["MDSYM_MEMORY"])] if os.environ.get("MDSYM_MEMORY") else []
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return min([int(free)] + found)
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except OSError:
        return None
    cgroup = Path("/sys/fs/cgroup")
    try:
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            found.append(int(limit) - int((cgroup / "memory.current").read_text()))
    except (OSError, ValueError):
        pass  # no cgroup v2 limit
    return min(found) if found else None


def available_text(device) -> str:
    """What ``available_bytes`` found, for messages: how much, where, and whether
    ``MDSYM_MEMORY`` set it."""
    limited = " (MDSYM_MEMORY)" if os.environ.get("MDSYM_MEMORY") else ""
    return f"{gib(available_bytes(device))} is available on {device}{limited}"


def probe_of(system: System, atoms: int = PROBE_ATOMS) -> tuple:
    """The probes of ``system``: ``(system,)`` when it is small, else its ``atoms // 2``
    and ``atoms`` atoms nearest to atom 0 (periodic: through the cell's images) or to
    its centroid (isolated) as isolated balls, and the larger ball's atoms in a periodic
    cube of its volume, whose pairs per atom are those of the bulk."""
    if len(system) <= atoms:
        return (system,)
    centre = system.positions[0] if system.periodic else system.positions.mean(axis=0)
    offsets = system.positions - centre
    if system.periodic:
        fractional = offsets @ np.linalg.inv(system.cell)
        offsets = (fractional - np.round(fractional)) @ system.cell
    distance = np.linalg.norm(offsets, axis=1)
    order = np.argsort(distance, kind="stable")
    probes = []
    for count in (atoms // 2, atoms):
        keep = np.sort(order[:count])
        probes.append(System(offsets[keep], system.numbers[keep], np.zeros((3, 3)),
                             np.zeros(3, dtype=bool), system.masses[keep]))
    ball = probes[-1]
    side = distance[order[atoms - 1]] * (4 * np.pi / 3) ** (1 / 3)
    boxed = System(ball.positions % side, ball.numbers, side * np.eye(3), np.ones(3, dtype=bool),
                   ball.masses)
    return (*probes, boxed)


def _resident():
    """(resident set, peak resident set) of this process, bytes."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines()
                  if ":" in line)
    return int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024


def peak_bytes(call, device) -> tuple:
    """(bytes above the memory in use before, what was measured) for ``call()``."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        call()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before, "torch.cuda.max_memory_allocated"
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        Path("/proc/self/clear_refs").write_text("5")
        before, _ = _resident()
    except (OSError, AttributeError, KeyError):
        return None, "no /proc or glibc: not measured"
    call()
    _, peak = _resident()
    return max(peak - before, 0), "peak resident set (VmHWM) after malloc_trim"


def measure(model, system: System) -> MemoryEstimate | None:
    """Bytes per atom and per pair of ``model``, measured on the probes of ``system``
    (see the module docstring)."""
    if not hasattr(model, "cutoff"):
        return None  # not a torch model of pairs
    device = torch.device(model.device)
    points = []
    for k, probe in enumerate(probe_of(system)):
        pairs = _pairs(model, probe)
        properties = ("energy", "forces", "stress") if probe.periodic else ("energy", "forces")
        identity = np.eye(3)[None]
        if k == 0:  # warm-up: TorchScript compiles and profiles its first call
            model.evaluate(probe, identity, properties)
        peak, how = peak_bytes(lambda: model.evaluate(probe, identity, properties), device)
        if peak is None:
            return None
        points.append((len(probe), pairs, peak))
    return MemoryEstimate.fit(points, str(device), how)


#: model -> {(atoms, periodic): MemoryEstimate, ("batch", atoms, periodic, wanted): the
#: batch that fits}: measured and decided once per model and size
_ESTIMATES = weakref.WeakKeyDictionary()


def estimate(model, system: System) -> MemoryEstimate | None:
    """``measure``, once per model and system size (atoms and periodicity: the pairs of a
    system change a little from step to step, its bytes per pair do not)."""
    key = (len(system), system.periodic)
    cache = _ESTIMATES.setdefault(model, {})
    if key not in cache:
        cache[key] = measure(model, system)
    return cache[key]


def _pairs(model, system) -> int:
    return len(system.neighbours(model.cutoff, model.full_neighbour_list).first)


def fitting_batch(model, system: System, wanted: int) -> int | None:
    """The largest batch up to ``wanted`` copies that fits in memory (None: no limit
    known or needed); one clear line when not even one copy fits. Decided once per
    model, system size and ``wanted`` (the pairs of its first call; ``USABLE_FRACTION``
    leaves room for the few percent they change along a run), so a run keeps one
    batch size."""
    if not hasattr(model, "cutoff"):
        return None
    cache = _ESTIMATES.setdefault(model, {})
    key = ("batch", len(system), system.periodic, int(wanted))
    if key not in cache:
        cache[key] = _fitting_batch(model, system, int(wanted))
    return cache[key]


def _fitting_batch(model, system: System, wanted: int) -> int | None:
    available = available_bytes(model.device)
    if available is None:
        return None
    usable = USABLE_FRACTION * available
    pairs = _pairs(model, system)
    if wanted * (len(system) * PRIOR_BYTES_PER_ATOM + pairs * PRIOR_BYTES_PER_PAIR) <= usable:
        return None  # fits under any model measured so far: no probe needed
    found = estimate(model, system)
    if found is None:
        return None
    per_copy = found.bytes_for(len(system), pairs)
    if per_copy > usable:
        raise MdsymError(
            f"{len(system)} atoms do not fit in memory for model {model.name}: one copy needs "
            f"about {gib(per_copy)} ({pairs} pairs; {found.describe()}), and "
            f"{available_text(model.device)} (a batch may use {USABLE_FRACTION:.0%}): use a "
            "smaller system, or a device with more memory")
    each = per_copy - found.bytes_fixed  # what one more copy adds
    return max(1, int((usable - found.bytes_fixed) // max(each, 1.0)))


def check_fits(model, system: System, batch_size=None, evaluations: int = 1) -> None:
    """Refuse, in one line, work whose model calls do not fit in memory: not even one
    copy, or a ``batch_size`` (``--batch-size``) larger than what fits, for a call of
    ``evaluations`` rotated copies (the automatic batch is sized to fit by
    ``TorchModel.batch_size_for``). Before anything is written."""
    wanted = int(batch_size) if batch_size is not None else model.batch_size_for(system)
    copies = max(1, min(wanted, int(evaluations)))
    fits = fitting_batch(model, system, copies)
    if fits is not None and fits < copies:
        need = estimate(model, system).bytes_for(len(system), _pairs(model, system), copies)
        raise MdsymError(
            f"--batch-size {batch_size} does not fit in memory for {len(system)} atoms: "
            f"{copies} copies need about {gib(need)}, and {available_text(model.device)}: use "
            f"--batch-size {fits} (fits), or leave it out (chosen to fit)")
