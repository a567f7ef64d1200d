"""What unoptimised TorchScript execution costs (``mdsym.models.base.TorchModel.evaluate``).

    python benchmarks/bench_executor.py [--rounds 10]

mdsym runs TorchScript models with ``torch.jit.optimized_execution(False)``: with
torch's profiling executor the first call runs another graph than later calls, and
PET's forces differ in their last bits between them (the first call of a process is
then not reproducible by the second, and i-PI clients sharing beads diverge).

For each shipped PET model on its structure, raw and ``o3:3``, this times calls with
optimisation off (mdsym's setting) and on (torch's default, after its profiling
runs), interleaved in rounds in one process on one thread, and reports the median
ratio of times off / on (> 1: off is slower). It also reports, in a fresh process
per setting, the largest difference between the first and second call's forces.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CASES = (("pet-ethanol", "ethanol"), ("pet-water", "water-16"))

def first_call_difference(model, structure, optimise: bool) -> float:
    """Max |F(call 1) - F(call 2)| in eV/A in a fresh process, with optimisation on/off
    (on: ``torch.jit.optimized_execution`` forced back on around the model's forward)."""
    script = f"""
import numpy as np, torch
torch.set_num_threads(1)
import mdsym
from mdsym.cli.options import structure_path
from mdsym.core.system import System, read_structure
if {optimise!r}:
    # undo mdsym's switch for this measurement: optimised execution, torch's default
    original = torch.jit.optimized_execution
    torch.jit.optimized_execution = lambda flag: original(True)
model = mdsym.load_model({model!r})
system = System.from_atoms(read_structure(structure_path({structure!r})))
calls = [model.evaluate(system, np.eye(3)[None], ("energy", "forces")) for _ in range(2)]
print(float(np.abs(calls[1]["forces"] - calls[0]["forces"]).max()))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)
    return float(done.stdout.strip().splitlines()[-1])


def time_ratios(model_name, structure, rounds: int) -> dict:
    """Median time ratio off / on for raw and o3:3 calls, interleaved rounds."""
    import torch

    from mdsym.core.defaults import structure_path
    from mdsym.core.system import System, read_structure
    from mdsym.models import load_model
    from mdsym.symmetry.symmetrized import SymmetrizedModel

    torch.set_num_threads(1)
    model = load_model(model_name)
    system = System.from_atoms(read_structure(structure_path(structure)))
    calls = {"raw": SymmetrizedModel(model, "none"), "o3:3": SymmetrizedModel(model, "o3:3")}
    original = torch.jit.optimized_execution

    def timed(call, optimise, repeats):
        # evaluate() asks for optimized_execution(False); to time "on", turn that into True
        torch.jit.optimized_execution = original if not optimise else (lambda flag: original(True))
        try:
            start = time.perf_counter()
            for _ in range(repeats):
                call(system)
            return (time.perf_counter() - start) / repeats
        finally:
            torch.jit.optimized_execution = original

    out = {}
    for label, call in calls.items():
        repeats = 10 if label == "raw" else 1
        for optimise in (True, False, True, False):  # warm-up, and torch's profiling runs
            timed(call, optimise, 2)
        ratios, on, off = [], [], []
        for _ in range(rounds):
            t_on = timed(call, True, repeats)
            t_off = timed(call, False, repeats)
            on.append(t_on)
            off.append(t_off)
            ratios.append(t_off / t_on)
        out[label] = {"ratio_off_over_on": statistics.median(ratios),
                      "ratio_min": min(ratios), "ratio_max": max(ratios),
                      "ms_on": 1000 * statistics.median(on), "ms_off": 1000 * statistics.median(off)}
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    from mdsym.models import shipped

    results = []
    for model, structure in CASES:
        if model not in shipped.names():
            print(f"{model}: not shipped here, skipped")
            continue
        row = {"model": model, "structure": structure,
               "first_call_dF_on_eVA": first_call_difference(model, structure, True),
               "first_call_dF_off_eVA": first_call_difference(model, structure, False)}
        row.update(time_ratios(model, structure, args.rounds))
        results.append(row)
        print(json.dumps(row))
    print("\n| model | first vs second call, max dF (eV/A), optimised / mdsym | "
          "time off/on raw | time off/on o3:3 |")
    print("|---|---|---|---|")
    for r in results:
        print(f"| {r['model']} on {r['structure']} | {r['first_call_dF_on_eVA']:.2g} / "
              f"{r['first_call_dF_off_eVA']:.2g} | {r['raw']['ratio_off_over_on']:.3f} | "
              f"{r['o3:3']['ratio_off_over_on']:.3f} |")


if __name__ == "__main__":
    main()
