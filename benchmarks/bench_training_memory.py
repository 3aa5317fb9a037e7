"""Training on a large data set: peak memory and time per structure of Kalman-filter training
with the descriptor-Jacobian cache, without it (pure torch), and through the fused kernels.

Data: N structures of 192-atom water from Langevin MD (300-450 K) with the imported n2p2 water
potential (../shared/reference/n2p2/H2O_RPBE-D3) as the labeller, written once to --data.
Each mode runs in its own process (peak RSS is per process) and trains one epoch of
`--updates` energy updates (and a quarter as many force updates of 4 components) on the whole
set, with 5 % of it for validation:

    python benchmarks/bench_training_memory.py [--structures 2000] [--updates 100] [--threads 1]
        [--modes cached torch kernels] [--cached-structures 100] [--data /tmp/bpnn_water_2000.xyz]

`cached` keeps G and dG/dr of every structure (about 15 MB per 192-atom structure), so it runs on
`--cached-structures` of them only and its memory is extrapolated to N in the table.
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
N2P2 = ROOT.parent / "shared" / "reference" / "n2p2"


def make_data(path: Path, count: int, threads: int) -> None:
    """`count` labelled snapshots of MD with the n2p2 water potential, every 10 steps of 0.5 fs."""
    import ase.io
    import torch
    from ase import units
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    from bpnn_ts import BPNNCalculator, export
    from bpnn_ts.io.n2p2 import load_n2p2
    from bpnn_ts.io.n2p2_data import read_input_data
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as folder:
        model = load_n2p2(N2P2 / "H2O_RPBE-D3", "bohr", "hartree")
        model.use_native_kernels(True)
        export(model, Path(folder) / "water.pt")
        calculator = BPNNCalculator(Path(folder) / "water.pt", threads=threads)
        start = next(a for a in read_input_data(N2P2 / "H2O_RPBE-D3-train" / "input.data", "bohr", "hartree")
                     if len(a) == 192)
        snapshots = []
        started = time.perf_counter()
        for temperature in np.linspace(300.0, 450.0, 4):
            atoms = start.copy()
            atoms.calc = calculator
            MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=np.random.default_rng(len(snapshots)))
            dynamics = Langevin(atoms, 0.5 * units.fs, temperature_K=temperature, friction=0.02, fixcm=False,
                                rng=np.random.default_rng(len(snapshots) + 1))
            dynamics.run(200)  # equilibrate
            for _ in range(count // 4):
                dynamics.run(10)
                frame = atoms.copy()
                frame.calc = SinglePointCalculator(frame, energy=atoms.get_potential_energy(),
                                                   forces=atoms.get_forces())
                snapshots.append(frame)
        ase.io.write(path, snapshots)
        print(f"# wrote {len(snapshots)} structures to {path} in {time.perf_counter() - started:.0f} s", flush=True)


def measure(mode: str, data: Path, structures: int, updates: int, threads: int) -> dict:
    """One epoch in this process: {seconds per observed structure, peak RSS GB, ...}."""
    import torch

    from bpnn_ts.training import Trainer, parse_train_config
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as folder:
        files = str(data)
        if structures:  # a prefix of the data set (cached mode)
            import ase.io
            files = str(Path(folder) / "subset.xyz")
            ase.io.write(files, ase.io.read(data, index=f":{structures}"))
        n = structures or len(__import__("ase.io").io.read(data, index=":"))
        energy_fraction = updates / (0.95 * n)
        config = {
            "model": {"symmetry_functions": {"from": str(N2P2 / "H2O_RPBE-D3"), "length_unit": "bohr",
                                             "energy_unit": "hartree", "scaling": True},
                      "hidden_layers": [25, 25], "seed": 0},
            "data": {"train": files, "split": {"validation": 0.05, "test": 0.0}, "stream": mode != "cached",
                     "cache_size": 64},
            "training": {"epochs": 1, "optimizer": "kalman", "progress": False, "cache_descriptors": mode == "cached",
                         "kernels": mode == "kernels",
                         "kalman": {"energy_fraction": energy_fraction, "force_components": 4,
                                    "force_fraction": 4 * max(1, updates // 4) / (0.95 * n * 192 * 3)}},
            "output": str(Path(folder) / "run")}
        started = time.perf_counter()
        trainer = Trainer(parse_train_config(config), log=lambda _line: None)
        setup = time.perf_counter() - started
        epoch_started = time.perf_counter()
        trainer.stepper.run(0)
        epoch = time.perf_counter() - epoch_started
        observed = trainer.stepper.n_energy_updates + trainer.stepper.n_force_updates
    return {"mode": mode, "structures": n, "setup_s": setup, "s_per_update": epoch / observed,
            "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--structures", type=int, default=2000)
    parser.add_argument("--updates", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--modes", nargs="+", default=["cached", "torch", "kernels"],
                        choices=["cached", "torch", "kernels"])
    parser.add_argument("--cached-structures", type=int, default=100)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "bpnn_water_2000.xyz")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: one mode, in a child process
    args = parser.parse_args(argv)
    if not N2P2.is_dir():
        print(f"n2p2 reference data (GPL, ../shared/reference/n2p2) not found at {N2P2}", file=sys.stderr)
        return 1
    if args.measure:
        subset = args.cached_structures if args.measure == "cached" else 0
        print(json.dumps(measure(args.measure, args.data, subset, args.updates, args.threads)))
        return 0
    if not args.data.is_file():
        make_data(args.data, args.structures, args.threads)
    print(f"# {args.data}: Kalman-filter training, one epoch of {args.updates} energy updates "
          f"(+{args.updates // 4} force updates of 4 components), {args.threads} thread(s)")
    print("| mode | structures held | setup s | s per update | peak GB | peak GB for all structures |")
    print("|---|---|---|---|---|---|")
    for mode in args.modes:
        command = [sys.executable, __file__, "--measure", mode, "--data", str(args.data), "--updates",
                   str(args.updates), "--threads", str(args.threads), "--cached-structures", str(args.cached_structures)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            print(f"| {mode} | failed: {result.stderr.strip().splitlines()[-1] if result.stderr else '?'} |||||")
            continue
        row = json.loads(result.stdout.strip().splitlines()[-1])
        total = row["peak_gb"] * (args.structures / row["structures"]) if mode == "cached" else row["peak_gb"]
        print(f"| {mode} | {row['structures']} | {row['setup_s']:.0f} | {row['s_per_update']:.3f} | "
              f"{row['peak_gb']:.2f} | {total:.1f}{' (extrapolated)' if mode == 'cached' else ''} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
