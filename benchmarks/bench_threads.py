"""Threads on a quiet and on a busy machine: the ASE calculator's MD step and a training epoch
with torch's default threads, 1 thread, and 2 threads with OpenMP waiting actively or passively.

On a machine whose cores are taken by other jobs, OpenMP threads that spin while they wait for
each other can make a step 10-30x slower; this table is what the defaults (1 thread in the
calculator, `bpnn-ts train/eval/demo --threads 1`) were chosen from.

    python benchmarks/bench_threads.py [--rounds 3] [--steps 20] [--hogs N]

"busy": N processes (default: one per core) spin while the row runs. Each cell is one process
(OMP_WAIT_POLICY must be set before torch starts), rows of a round alternate settings, and the
table gives each cell's median over rounds. System: fcc Cu, 576 atoms (6x6x4 cubic cells),
a random-weight model with the fused kernels, float64.
"""

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time

SETTINGS = {  # name: (threads for the calculator/training, OMP_WAIT_POLICY or None)
    "torch default": (None, None),
    "1 thread": (1, None),
    "2 threads": (2, None),
    "2 threads, passive": (2, "PASSIVE"),
}


def measure(threads, steps: int) -> dict:
    """One process: µs/atom per MD step through the calculator, and seconds per training epoch."""
    import warnings

    import numpy as np
    import torch
    from ase.build import bulk

    import bpnn_ts
    from bpnn_ts.demo_data import md_snapshots
    from bpnn_ts.training import Trainer, parse_train_config
    warnings.simplefilter("ignore")
    folder = os.environ["BENCH_FOLDER"]
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((6, 6, 4))
    atoms.rattle(0.05, seed=1)
    model = bpnn_ts.parse_model_config({"elements": ["Cu"], "cutoff": 5.0, "hidden_layers": [25, 25],
                                        "seed": 1}).build().eval()
    path = bpnn_ts.export(model, os.path.join(folder, "cu.pt"))
    atoms.calc = bpnn_ts.BPNNCalculator(path, threads=threads, extrapolation="ignore")
    times = []
    for step in range(steps + 2):
        atoms.positions += np.random.default_rng(step).normal(0, 1e-3, atoms.positions.shape)
        start = time.perf_counter()
        atoms.get_forces()
        times.append(time.perf_counter() - start)
    step_us = 1e6 * statistics.median(times[2:]) / len(atoms)
    data = os.path.join(folder, "train.xyz")
    if not os.path.exists(data):
        import ase.io
        ase.io.write(data, md_snapshots(bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2), 600, 16, 5, seed=2))
    if threads is not None:
        torch.set_num_threads(threads)
    config = parse_train_config({
        "model": {"elements": ["Cu"], "cutoff": 4.5, "hidden_layers": [16, 16], "seed": 0},
        "data": {"train": data, "split": {"validation": 0.25, "test": 0.0}},
        "training": {"epochs": 3, "batch_size": 4, "progress": False},
        "output": os.path.join(folder, f"run-{os.getpid()}")})
    trainer = Trainer(config, log=lambda line: None, overwrite=True)
    start = time.perf_counter()
    trainer.run()
    return {"step_us_per_atom": step_us, "epoch_s": (time.perf_counter() - start) / 3}


def hog() -> None:
    while True:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--hogs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        threads = None if args.one == "none" else int(args.one)
        print(json.dumps(measure(threads, args.steps)))
        return
    import tempfile
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(args.rounds):
            for machine in ("quiet", "busy"):
                hogs = [multiprocessing.Process(target=hog, daemon=True) for _ in range(args.hogs if machine == "busy" else 0)]
                for process in hogs:
                    process.start()
                try:
                    for name, (threads, policy) in SETTINGS.items():
                        env = dict(os.environ, BENCH_FOLDER=folder)
                        env.pop("OMP_WAIT_POLICY", None)
                        if policy:
                            env["OMP_WAIT_POLICY"] = policy
                        command = [sys.executable, __file__, "--one", str(threads or "none"), "--steps", str(args.steps)]
                        out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
                        results.setdefault((machine, name), []).append(json.loads(out.strip().splitlines()[-1]))
                        print(f"round {round_ + 1} {machine:5s} {name:20s} {results[(machine, name)][-1]}", file=sys.stderr,
                              flush=True)
                finally:
                    for process in hogs:
                        process.terminate()
    print(f"{'machine':8s} {'setting':20s} {'MD step µs/atom':>16s} {'training s/epoch':>17s}")
    for (machine, name), rows in results.items():
        step = statistics.median(r["step_us_per_atom"] for r in rows)
        epoch = statistics.median(r["epoch_s"] for r in rows)
        print(f"{machine:8s} {name:20s} {step:16.0f} {epoch:17.2f}")


if __name__ == "__main__":
    main()
