"""The GPU check: one script, within 10 minutes on a lent GPU, of what the CPU cannot show.

    python benchmarks/gpu_check.py --device cuda            # on a GPU (PET-MAD-S stand-in)
    python benchmarks/gpu_check.py --device cpu --tiny      # CI: the same steps, tiny

For each dtype (float32, float64), on the stand-in of ``scale_standin.py`` (PET-MAD-S
by default; ``--tiny``: a tiny PET and tiny sizes):

1. **the benchmark's rows** at 10^3 and 10^4 atoms of periodic water
   (``bench_scale.size_row``: the batch mdsym chooses on this device, its memory
   estimate, raw and batch timings, the measured peak memory, which on CUDA is
   ``torch.cuda.max_memory_allocated``), and every spec's ms/step and hours per ns;
2. **CUDA against CPU**: the forces of the raw model (10^3 atoms) and of ``o3:3``
   (10^2 atoms: 48 copies on the CPU) on the device and on the CPU in the same dtype,
   max |dF| against ``TOLERANCE`` x max |F| (float32 round-off of sums over many terms;
   float64: ``TOLERANCE_64``); a failure makes the exit code 1;
3. **peak GPU memory** over the whole check (``torch.cuda.max_memory_allocated``);
4. **a 200-step NVE** with ``mts:8+o3:3`` on the 10^3-atom droplet (``--tiny``: 16 steps on
   48 atoms): steps/s, drift, max|dL| at outer steps (``bench_scale.run_spec``).

Results: ``OUT.json`` and ``OUT.md`` (default ``benchmarks/results/gpu-check``).
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scale_standin
from bench_scale import SPECS, run_spec, size_row, spec_costs
from common import RESULTS, environment

TOLERANCE = 1e-4  # float32: relative to max |F|
TOLERANCE_64 = 1e-9
FULL = {"sizes": (1000, 10000), "o3_size": 100, "md_atoms": 1000, "md_steps": 200, "budget_s": 5.0}
TINY = {"sizes": (48, 96), "o3_size": 48, "md_atoms": 48, "md_steps": 16, "budget_s": 0.2}


def forces(model, atoms, spec):
    from mdsym.core.system import System
    from mdsym.symmetry.symmetrized import SymmetrizedModel

    return SymmetrizedModel(model, spec)(System.from_atoms(atoms), ("energy", "forces"))["forces"]


def agreement(here_model, cpu_model, dtype, atoms, spec) -> dict:
    """max |dF| between the model on its device and on the CPU, same dtype, for ``spec``."""
    here = forces(here_model, atoms, spec)
    cpu = forces(cpu_model, atoms, spec)
    scale = float(np.abs(cpu).max())
    difference = float(np.abs(here - cpu).max())
    tolerance = (TOLERANCE if dtype == "float32" else TOLERANCE_64) * scale
    return {"spec": spec, "atoms": len(atoms), "dtype": dtype, "max_dF": difference, "max_F": scale,
            "tolerance": tolerance, "agrees": difference <= tolerance, "devices": [str(here_model.device), "cpu"]}


def peak_gpu(device):
    import torch

    return torch.cuda.max_memory_allocated(device) if str(device).startswith("cuda") else None


def check(device, dtype, setting, path, scratch, log) -> dict:
    from mdsym.models import load_model

    model = load_model(path, forces="conservative", device=device, dtype=dtype)
    rows = []
    for n in setting["sizes"]:
        log(f"[{dtype}] rows at {n} atoms")
        row = size_row(model, n, [_threads()], log=log, budget_s=setting["budget_s"])
        row["costs"] = spec_costs(row, SPECS, None)
        rows.append(row)
    log(f"[{dtype}] {device} against the CPU: raw and o3:3")
    cpu = model if model.device.type == "cpu" else load_model(path, forces="conservative", device="cpu",
                                                               dtype=dtype)
    agree = [agreement(model, cpu, dtype, scale_standin.water_box(setting["sizes"][0]), "none"),
             agreement(model, cpu, dtype, scale_standin.water_box(setting["o3_size"]), "o3:3")]
    log(f"[{dtype}] NVE, mts:8+o3:3, {setting['md_steps']} steps")
    atoms = scale_standin.droplet(setting["md_atoms"])
    structure = Path(scratch) / f"droplet-{dtype}.xyz"
    atoms.write(structure)
    started = time.perf_counter()
    md = run_spec(path, structure, "mts:8+o3:3", setting["md_steps"], 0, Path(scratch) / f"nve-{dtype}",
                  dtype=dtype, device=device)
    md["wall_s"] = time.perf_counter() - started
    md["atoms"] = len(atoms)
    return {"dtype": dtype, "rows": rows, "agreement": agree, "nve": md, "peak_gpu_bytes": peak_gpu(device)}


def _threads():
    import torch

    return torch.get_num_threads()


def markdown(result) -> str:
    lines = [f"# GPU check ({result['environment']['date']}, {result['device']})", "",
             f"Model: {result['model']['label']}.", f"Command: `{result['command']}`; {result['wall_s']:.0f} s.", ""]
    for part in result["checks"]:
        lines += [f"## {part['dtype']}", "", "| atoms | batch | est. GiB/copy | peak GiB raw | peak GiB batch | raw ms "
                  "| ms/rotation | o3:3 ms/step | mts:8+o3:3 ms/step | o3:3 h/ns |", "|---|---|---|---|---|---|---|---|---|---|"]
        for row in part["rows"]:
            t = (row.get("timings") or [{}])[0]
            costs = {c["spec"]: c for c in row.get("costs", [])}

            def gib(x):
                return "-" if x is None else f"{x / 2**30:.2f}"

            def ms(spec, key="ms_per_step"):
                return f"{costs[spec][key]:.4g}" if spec in costs else "-"

            lines.append(f"| {row['atoms']} | {row.get('batch', '-')} | {gib(row.get('estimate', {}).get('per_copy_bytes'))} "
                         f"| {gib(t.get('peak_raw_bytes'))} | {gib(t.get('peak_batch_bytes'))} | "
                         f"{1e3 * t['raw_s']:.4g} | {1e3 * t['batch_s'] / t['batch']:.4g} | {ms('o3:3')} | "
                         f"{ms('mts:8+o3:3')} | {ms('o3:3', 'hours_per_ns')} |" if t else
                         f"| {row['atoms']} | - | - | - | - | - | - | - | - | {row.get('refused', '')} |")
        lines += ["", "| agreement | atoms | max dF (eV/A) | tolerance | agrees |", "|---|---|---|---|---|"]
        for a in part["agreement"]:
            lines.append(f"| {a['spec']} | {a['atoms']} | {a['max_dF']:.3g} | {a['tolerance']:.3g} | {a['agrees']} |")
        nve = part["nve"]
        lines += ["", f"NVE `mts:8+o3:3`, {nve['steps']} steps on {nve['atoms']} atoms: {nve['status']}, "
                      f"{nve['ms_per_step_measured']:.4g} ms/step, drift {nve['drift_meV_atom_ps']:.3g} meV/atom/ps, "
                      f"max|dL| {nve['max_dL']:.3g} amu A^2/ps; peak GPU memory "
                      + ("-" if part["peak_gpu_bytes"] is None else f"{part['peak_gpu_bytes'] / 2**30:.2f} GiB"), ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="tiny model and sizes (CI, on the CPU)")
    parser.add_argument("--stand-in", default=None, help="xs, s or m [default: s; tiny with --tiny]")
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--out", default=str(RESULTS / "gpu-check"))
    args = parser.parse_args(argv)
    from mdsym.models.devices import resolve_device

    device = str(resolve_device(args.device))  # cuda without CUDA: one line, exit 2
    setting = TINY if args.tiny else FULL
    if args.tiny:  # CI on a shared machine: one thread, as mdsym runs small systems
        from common import pin_threads

        pin_threads(1)
    standin = scale_standin.standin(args.stand_in or ("tiny" if args.tiny else "s"))
    started = time.time()
    checks = []
    with tempfile.TemporaryDirectory(prefix="mdsym-gpu-check-") as scratch:
        for dtype in args.dtypes.split(","):
            checks.append(check(device, dtype, setting, standin["path"], scratch,
                                lambda text: print(text, flush=True)))
    result = {"device": device, "model": standin, "checks": checks, "environment": environment(),
              "wall_s": time.time() - started, "tiny": args.tiny,
              "command": "python benchmarks/gpu_check.py " + " ".join(sys.argv[1:] if argv is None else argv)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1, default=float))
    out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    return 0 if all(a["agrees"] for c in checks for a in c["agreement"]) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as error:  # one line, as mdsym's commands (MdsymError: a bad input)
        from mdsym.core.errors import MdsymError

        print(f"gpu_check: error: {error}", file=sys.stderr)
        sys.exit(2 if isinstance(error, MdsymError) else 1)
