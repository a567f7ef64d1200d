"""Stability of a shipped molecular model: NVT MD of ethanol at 300 K, as `mdsym run`.

    python analysis/stability_ethanol.py [--model pet-ethanol] [--ps 20] [--timestep 0.5]

Runs ``mdsym run``'s own engine (``mdsym.md.run.run_md``: ASE, Bussi thermostat,
the stability monitors, which watch the bonded connectivity of molecules with
``mdsym.core.molecules``' rule) on the raw model from the shipped ``ethanol.xyz``, into
``runs/stability-<model>``. The verdict is the run's: ``intact`` when it completes,
``broken`` with the monitor's reason otherwise. Writes
``analysis/results/stability-<model>.json`` and, with ``--card``, the result into the
model's machine-readable card ``mdsym/models/data/<model>.json`` under ``stability``.
"""

import argparse
import json
from pathlib import Path

import numpy as np

from mdsym.core.defaults import DEFAULT_STRUCTURE
from mdsym.md.run import run_md
from mdsym.md.rundir import RunDirectory
from mdsym.models import shipped

ROOT = Path(__file__).resolve().parents[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="pet-ethanol")
    parser.add_argument("--structure", default=str(DEFAULT_STRUCTURE))
    parser.add_argument("--ps", type=float, default=20.0, help="length of the run, ps")
    parser.add_argument("--timestep", type=float, default=0.5, help="fs")
    parser.add_argument("--temperature", type=float, default=300.0, help="K")
    parser.add_argument("--tau", type=float, default=100.0, help="thermostat time constant, fs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--card", action="store_true", help="write the result on the model card")
    args = parser.parse_args()

    steps = int(round(args.ps * 1000 / args.timestep))
    out = ROOT / "runs" / f"stability-{Path(args.model).stem}"
    info = run_md({"model": args.model, "structure": args.structure, "engine": "ase",
                   "ensemble": "nvt", "thermostat": "svr", "timestep_fs": args.timestep,
                   "steps": steps, "temperature_K": args.temperature,
                   "thermostat_tau_fs": args.tau, "seed": args.seed, "stride": 100}, out)
    thermo = RunDirectory(out).read_thermo()
    result = {
        "model": args.model, "structure": Path(args.structure).name, "run": str(out),
        "thermostat": f"Bussi (mdsym run --thermostat svr), tau {args.tau} fs",
        "temperature_K": args.temperature, "timestep_fs": args.timestep, "seed": args.seed,
        "steps_requested": steps, "steps_done": info.get("steps_done"),
        "ps_done": (info.get("steps_done") or 0) * args.timestep / 1000,
        "status": "intact" if info["status"] == "completed" else "broken",
        "reason": info.get("reason"),
        "mean_temperature_K": float(np.mean(thermo["temperature_K"])),
        "max_temperature_K": float(np.max(thermo["temperature_K"])),
        "potential_energy_range_eV": [float(np.min(thermo["potential_eV"])),
                                      float(np.max(thermo["potential_eV"]))],
        "wall_s": info.get("wall_time_s"),
        "command": f"python analysis/stability_ethanol.py --model {args.model} --ps {args.ps} "
                   f"--timestep {args.timestep}",
    }
    path = ROOT / "analysis" / "results" / f"stability-{Path(args.model).stem}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    if args.card:
        card_path = shipped.DATA / f"{args.model}.json"
        card = json.loads(card_path.read_text()) if card_path.exists() else {}
        card["stability"] = result
        card_path.write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
