"""The showcase study: raw vs symmetrized MD of one model, analysed and compared.

    python analysis/study.py --out runs/study [--steps 500] [--seeds 0 1 2]

Runs the model raw, with one random rotation per step, with the net torque
removed, and grid-symmetrized at two degrees, for several seeds; analyses every
run and writes one comparison (comparison.md, comparison.png, study.png) in OUT.
All logic lives in ``mdsym.analysis.study``; this script only parses arguments.
"""

import argparse

from mdsym.analysis.study import DEFAULT_MODEL, DEFAULT_SPECS, run_study


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/study")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--structure", default=None, help="default: mdsym's cu-cluster-55")
    parser.add_argument("--specs", nargs="+", default=list(DEFAULT_SPECS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--timestep-fs", type=float, default=2.0)
    parser.add_argument("--temperature", type=float, default=300.0)
    parser.add_argument("--stride", type=int, default=5)
    parser.add_argument("--every", type=int, default=None)
    args = parser.parse_args()
    result = run_study(args.out, model=args.model, structure=args.structure, specs=args.specs,
                       seeds=args.seeds, steps=args.steps, timestep_fs=args.timestep_fs,
                       temperature_K=args.temperature, stride=args.stride, every=args.every)
    print(f"{len(result['runs'])} runs compared: {args.out}/comparison.md")


if __name__ == "__main__":
    main()
