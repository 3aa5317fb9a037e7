"""Active learning on water (`bpnn-ts learn`) against random selection and against a committee
trained on structures sampled from a long MD run (issue 28's bar).

The labeller is n2p2's RPBE-D3 water potential imported from ../shared/reference/n2p2 (a stand-in
for DFT). The loop starts from 5 rattled copies of the sample's 192-atom cell and explores at
300-400 K. Every committee is tested on an independent 350 K MD trajectory of the labeller (never
used in a loop). `--reference N` also trains a committee on N structures sampled every 20 steps
from a labeller MD run at 300-400 K. The same functions (n2p2's), nets (2x25 tanh) and training
settings are used throughout.

    python benchmarks/bench_active_learning.py [--seeds 0 1 2] [--strategies spread random]
        [--budget N] [--reference 500] [--committee 3] [--epochs 20] [--warm-epochs 3] [--final-epochs 40]
        [--rattle 0.05] [--lower 0.1] [--plateau 0.1] [--patience 2] [--workers 2] [--keep DIR]

Prints a row per run: rounds, labels, wall time and the test errors (meV/atom, meV/Å); `random`
runs get the label budget of the `spread` run of the same seed. Long: minutes per round.
"""

import argparse
import csv
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Dict, List

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "reference" / "n2p2"


def labeller_md(model: Path, start, temperatures: List[float], frames: int, every: int, equilibrate: int,
                seed: int) -> list:
    """`frames` labelled snapshots of Langevin MD with the labeller (0.5 fs), `every` steps apart
    after `equilibrate` steps, the temperatures taking turns in equal stretches."""
    from ase import units
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.md.langevin import Langevin

    from bpnn_ts import BPNNCalculator
    atoms = start.copy()
    atoms.calc = BPNNCalculator(str(model), extrapolation="ignore")
    rng = np.random.RandomState(seed)
    snapshots = []
    per_temperature = -(-frames // len(temperatures))
    for temperature in temperatures:
        dynamics = Langevin(atoms, timestep=0.5 * units.fs, temperature_K=temperature, friction=0.02 / units.fs,
                            rng=rng, fixcm=False)
        dynamics.run(equilibrate)
        for _ in range(per_temperature):
            dynamics.run(every)
            snapshot = atoms.copy()
            snapshot.calc = SinglePointCalculator(snapshot, energy=atoms.get_potential_energy(),
                                                  forces=atoms.get_forces().copy(), stress=atoms.get_stress().copy())
            snapshots.append(snapshot)
    return snapshots[:frames]


def train_settings(args: argparse.Namespace) -> Dict:
    functions = {"from": str(SHARED / "H2O_RPBE-D3-train" / "input.nn"), "length_unit": "bohr",
                 "energy_unit": "hartree"}
    warm = {"warm_start": True, "warm_epochs": args.warm_epochs} if args.warm_epochs else {}
    final = {"final_epochs": args.final_epochs} if getattr(args, "final_epochs", 0) else {}
    return {"committee": args.committee, "workers": args.workers, **warm, **final,
            "model": {"symmetry_functions": functions, "hidden_layers": [25, 25], "activation": "tanh"},
            "training": {"epochs": args.epochs}}


def learn(folder: Path, args: argparse.Namespace, strategy: str, seed: int, budget: int) -> Dict:
    from bpnn_ts.learning import ActiveLearning, parse_learn_config
    config = {"output": str(folder), "seed": seed, "labeller": {"model": str(folder.parent / "water.pt"),
                                                                "workers": args.workers},
              "start": {"generate": {"from": str(folder.parent / "cell192.xyz"), "count": 5, "rattle": args.rattle,
                                     "strain": 0.0}},
              "train": train_settings(args),
              "explore": {"temperatures": [300, 400], "steps": args.steps, "every": 10, "trajectories": 2,
                          "timestep": 0.5, "workers": args.workers},
              "select": {"strategy": strategy, "lower": args.lower, "upper": 10 * args.lower, "per_round": args.per_round},
              "stop": {"fraction": args.fraction if strategy == "spread" else 0.0, "max_labels": budget,
                       "max_rounds": args.max_rounds, "plateau": args.plateau if strategy == "spread" else 0.0,
                       "patience": args.patience},
              "test": str(folder.parent / "test.xyz")}
    started = time.perf_counter()
    figures = ActiveLearning(parse_learn_config(config, folder.parent), log=lambda line: None).run()
    return dict(figures, wall=time.perf_counter() - started)


def reference(folder: Path, args: argparse.Namespace, cell, seed: int) -> Dict:
    """A committee trained on `args.reference` labeller MD structures."""
    import ase.io

    from bpnn_ts import load
    from bpnn_ts.training import parse_train_config, train_committee
    from bpnn_ts.training.metrics import evaluate_structures
    started = time.perf_counter()
    structures = labeller_md(folder.parent / "water.pt", cell, [300.0, 400.0], args.reference, 20, 400, seed + 1000)
    ase.io.write(folder.parent / f"reference-{seed}.xyz", structures)
    settings = train_settings(args)
    raw = {"model": settings["model"], "training": dict(settings["training"], progress=False, plots=False, seed=seed),
           "data": {"train": str(folder.parent / f"reference-{seed}.xyz"), "split": {"validation": 0.1, "test": 0.0}},
           "output": str(folder)}
    committee = train_committee(parse_train_config(raw, folder.parent), args.committee, log=lambda line: None,
                                workers=args.workers)
    metrics = evaluate_structures(load(committee), ase.io.read(folder.parent / "test.xyz", ":"))
    return {"labels": len(structures), "rounds": "", "wall": time.perf_counter() - started,
            "test_energy_rmse_mev_atom": metrics["energy_rmse_mev_atom"],
            "test_force_rmse_mev_a": 1000 * metrics["force_rmse"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--strategies", nargs="*", default=["spread", "random"], choices=["spread", "random"],
                        help="none: only the --reference committee")
    parser.add_argument("--reference", type=int, default=0, help="structures of the long-MD committee (0: none)")
    parser.add_argument("--committee", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--warm-epochs", type=int, default=0,
                        help="rounds after the first start warm from the last round's members, this many epochs")
    parser.add_argument("--final-epochs", type=int, default=0,
                        help="train.final_epochs: after the stop, the last labels trained this long (0: no)")
    parser.add_argument("--rattle", type=float, default=0.05, help="Å, of the 5 start copies of the cell")
    parser.add_argument("--steps", type=int, default=200, help="MD steps per trajectory (0.5 fs)")
    parser.add_argument("--lower", type=float, default=0.1, help="select.lower, eV/Å (upper: 10x)")
    parser.add_argument("--fraction", type=float, default=0.1, help="stop.fraction")
    parser.add_argument("--plateau", type=float, default=0.1, help="stop.plateau (0: off)")
    parser.add_argument("--patience", type=int, default=2, help="stop.patience")
    parser.add_argument("--per-round", type=int, default=16)
    parser.add_argument("--max-rounds", type=int, default=12)
    parser.add_argument("--max-labels", type=int, default=400)
    parser.add_argument("--budget", type=int, default=0,
                        help="label budget of `random` runs with no `spread` run before them (0: --max-labels)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", default=None, help="folder for the runs (default: a temporary one)")
    args = parser.parse_args()
    if not SHARED.is_dir():
        raise SystemExit(f"needs the n2p2 reference data at {SHARED}")
    import ase.io
    import torch

    from bpnn_ts import export
    from bpnn_ts.io.n2p2 import load_n2p2
    from bpnn_ts.io.n2p2_data import read_input_data
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bpnn_learn_water_"))
    work.mkdir(parents=True, exist_ok=True)
    export(load_n2p2(SHARED / "H2O_RPBE-D3", "bohr", "hartree"), work / "water.pt")
    cell = next(a for a in read_input_data(SHARED / "H2O_RPBE-D3-train" / "input.data", "bohr", "hartree")
                if len(a) == 192)
    ase.io.write(work / "cell192.xyz", cell)
    started = time.perf_counter()
    test = labeller_md(work / "water.pt", cell, [350.0], 20, 50, 1000, seed=12345)
    ase.io.write(work / "test.xyz", test)
    print(f"labeller: n2p2 water (imported); test set: 20 frames of 350 K labeller MD ({time.perf_counter() - started:.0f} s); "
          f"committee {args.committee}, {args.epochs} epochs, select.lower {args.lower} eV/Å; folder {work}")
    print("| run | seed | rounds | labels | wall min | test E meV/atom | test F meV/Å |")
    print("|---|---|---|---|---|---|---|")
    rows: List[Dict] = []
    for seed in args.seeds:
        budget = args.budget or args.max_labels
        for strategy in args.strategies:
            figures = learn(work / f"{strategy}-{seed}", args, strategy, seed, budget)
            if strategy == "spread":
                budget = figures["labels"]
            rows.append(dict(figures, run=strategy, seed=seed))
            print(f"| {strategy} | {seed} | {figures['round'] + 1} | {figures['labels']} | {figures['wall'] / 60:.1f} | "
                  f"{figures['test_energy_rmse_mev_atom']:.3f} | {figures['test_force_rmse_mev_a']:.1f} |", flush=True)
        if args.reference:
            figures = reference(work / f"reference-{seed}", args, cell, seed)
            rows.append(dict(figures, run="reference", seed=seed))
            print(f"| long-MD reference | {seed} | | {figures['labels']} | {figures['wall'] / 60:.1f} | "
                  f"{figures['test_energy_rmse_mev_atom']:.3f} | {figures['test_force_rmse_mev_a']:.1f} |", flush=True)
    for run in ("spread", "random", "reference"):
        errors = [row["test_force_rmse_mev_a"] for row in rows if row["run"] == run]
        if errors:
            print(f"| {run}: median | | | | | | {statistics.median(errors):.1f} |")
    with open(work / "summary.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["run", "seed", "round", "labels", "wall", "test_energy_rmse_mev_atom",
                                                    "test_force_rmse_mev_a"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
