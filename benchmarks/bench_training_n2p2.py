"""Training quality and wall time against n2p2's own Kalman-filter run on the same data.

The water sample of ../shared/reference/n2p2/H2O_RPBE-D3-train: n2p2's split (train.data: 19
structures, test.data: 1), its 57 symmetry functions and input scaling (scalecenter to [0, 1]),
2 x 25 tanh nets. Prints one row per run: wall time, RMSE of energies per atom (meV) and force
components (meV/Å) on the training and test structures, with n2p2's 300-epoch figures first.

    python benchmarks/bench_training_n2p2.py [--epochs 300] [--threads 1] [--runs kalman adam]
        [--functions n2p2|select] [--seeds 0] [--track-test]

The test set is one 48-atom structure, so its energy error swings from epoch to epoch (n2p2's
own: 0.002 to 0.8 meV/atom over epochs 201-300). `--track-test` also evaluates it after every
epoch (the run, and the model kept, are unchanged) and prints the median over the second half
of the epochs, beside n2p2's median over the second half of its 300 epochs (its learning curve).
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import List

import torch

ROOT = Path(__file__).resolve().parents[1]
N2P2_RUN = ROOT.parent / "shared" / "reference" / "n2p2" / "H2O_RPBE-D3-train" / "n2p2-training"
N2P2_FIGURES = {"wall_s": 353.0, "train_E": 0.032, "train_F": 61.4, "test_E": 0.205, "test_F": 72.7}

# n2p2's cutoff (12 Bohr), cutoff function (type 2) and scaling, for the selected functions
SELECTED_MODEL = {"elements": ["H", "O"], "cutoff": 12.0 * 0.529177210903, "cutoff_function": 2,
                  "scaling": "scalecenter", "scale_min": 0.0, "scale_max": 1.0}
RUNS = {
    "kalman": {"optimizer": "kalman"},
    "kalman-combined": {"optimizer": "kalman", "kalman": {"blocks": "combined"}},
    "kalman-layer": {"optimizer": "kalman", "kalman": {"blocks": "layer"}},
    "kalman-fading": {"optimizer": "kalman", "kalman": {"kind": "fading"}},
    "kalman-best-epoch": {"optimizer": "kalman", "average_from": 1.0},
    "kalman-epsilon-0.01-best-epoch": {"optimizer": "kalman", "average_from": 1.0, "kalman": {"epsilon": 0.01}},
    "adam": {"optimizer": "adam", "batch_size": 4, "learning_rate": 1e-3},
}


def n2p2_test_energy_median() -> float:
    """Median test energy RMSE (meV/atom) of n2p2's run over epochs 151-300 (learning-curve.out)."""
    rows = [line.split() for line in (N2P2_RUN / "learning-curve.out").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    values = sorted(float(row[2]) * 27211.386 for row in rows if int(row[0]) > 150)
    return statistics.median(values)


def config(run: str, epochs: int, functions, seed: int, output: Path, kalman=None):
    options = dict(RUNS[run])
    if options["optimizer"] == "kalman":
        options["kalman"] = dict(options.get("kalman", {}), **(kalman or {}))
    return {
        "model": dict({"symmetry_functions": functions, "hidden_layers": [25, 25], "activation": "tanh", "seed": seed},
                      **({} if "from" in functions else SELECTED_MODEL)),
        "data": {"train": str(N2P2_RUN / "train.data"), "test": str(N2P2_RUN / "test.data"), "format": "n2p2",
                 "length_unit": "bohr", "energy_unit": "hartree", "split": {"validation": 0.0, "test": 0.0}},
        "training": dict(options, epochs=epochs, early_stopping=0, checkpoint_every=10_000, progress=False,
                         seed=seed),
        "output": str(output)}


def track_test_energy(trainer) -> List[float]:
    """A list that receives the test energy RMSE (meV/atom) after every epoch of `trainer`'s run
    (its end-of-epoch evaluation is wrapped; what it monitors and keeps is unchanged)."""
    values: List[float] = []
    monitored = trainer._monitored

    def with_test():
        values.append(trainer.evaluate("test")["energy_rmse_mev_atom"])
        return monitored()

    trainer._monitored = with_test
    return values


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", nargs="+", default=["kalman"], choices=sorted(RUNS))
    parser.add_argument("--functions", default="n2p2", choices=["n2p2", "select"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--log", action="store_true", help="print the trainer's log")
    parser.add_argument("--kalman", default="{}", help="JSON: training.kalman settings to override")
    parser.add_argument("--select", default="{}", help="JSON: options beside `select: 57` (method, pool)")
    parser.add_argument("--track-test", action="store_true",
                        help="evaluate the test structure after every epoch; print its median over the second half")
    args = parser.parse_args(argv)
    if not N2P2_RUN.is_dir():
        print(f"n2p2 reference run (GPL, ../shared/reference/n2p2) not found at {N2P2_RUN}", file=sys.stderr)
        return 1
    torch.set_num_threads(args.threads)
    from bpnn_ts.training import Trainer, parse_train_config
    functions = {"from": str(N2P2_RUN), "length_unit": "bohr", "energy_unit": "hartree", "scaling": True}
    if args.functions == "select":  # chosen from the training structures; the same kind of scaling
        functions = dict({"select": 57}, **json.loads(args.select))
    print(f"# water sample, n2p2 split (19 train / 1 test), {args.functions} functions, 2x25 tanh, "
          f"{args.epochs} epochs, {args.threads} thread(s)")
    extra = " test E median, 2nd half |" if args.track_test else ""
    print("| run | seed | wall s | train E meV/atom | train F meV/Å | test E meV/atom | test F meV/Å |" + extra)
    print("|---|---|---|---|---|---|---|" + ("---|" if extra else ""))
    f = N2P2_FIGURES
    print(f"| n2p2 Kalman filter (reference) | - | {f['wall_s']:.0f} | {f['train_E']:.3f} | {f['train_F']:.1f} | "
          f"{f['test_E']:.3f} | {f['test_F']:.1f} |" + (f" {n2p2_test_energy_median():.3f} |" if extra else ""),
          flush=True)
    for run in args.runs:
        for seed in args.seeds:
            with tempfile.TemporaryDirectory() as folder:
                started = time.perf_counter()
                trainer = Trainer(parse_train_config(config(run, args.epochs, functions, seed, Path(folder) / "run",
                                                                  json.loads(args.kalman))),
                                  log=print if args.log else (lambda _line: None))
                tracked = track_test_energy(trainer) if args.track_test else []
                results = trainer.run()
                wall = time.perf_counter() - started
            tail = f" {statistics.median(tracked[len(tracked) // 2:]):.3f} |" if args.track_test else ""
            print(f"| {run} | {seed} | {wall:.0f} | {results['train_energy_rmse_mev_atom']:.3f} | "
                  f"{1000 * results['train_force_rmse']:.1f} | {results['test_energy_rmse_mev_atom']:.3f} | "
                  f"{1000 * results['test_force_rmse']:.1f} |" + tail, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
