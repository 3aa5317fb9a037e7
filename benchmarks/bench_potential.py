"""µs per atom per energy+forces call and peak memory vs number of atoms.

Systems: a water box (H/O, cutoff 6.35 Å, ~28 functions per element with
angular ones, 2x25 tanh nets) and fcc Cu (cutoff 6 Å, 30 functions, 2x25).
Each size runs in a fresh subprocess so that peak memory (max RSS) is its own.

    python benchmarks/bench_potential.py                     # default sizes, 1 thread
    python benchmarks/bench_potential.py --sizes 100 1000 --threads 2 --dtype float32
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

SYSTEMS = {
    "water": {"elements": ["H", "O"], "cutoff": 6.35, "hidden_layers": [25, 25], "seed": 0},
    "Cu": {"elements": ["Cu"], "cutoff": 6.0, "hidden_layers": [25, 25], "seed": 0},
}


def water_atoms(n_target: int, seed: int = 0):
    """Liquid-density water (~0.1 atoms/Å^3): molecules on a jittered grid, random orientations."""
    from ase import Atoms
    from scipy.spatial.transform import Rotation
    n_side = max(1, round((n_target / 3) ** (1 / 3)))
    spacing = 3.104  # Å: one molecule per 29.9 Å^3
    rng = np.random.default_rng(seed)
    local = np.array([[0.0, 0, 0], [0.757, 0.586, 0], [-0.757, 0.586, 0]])
    positions = []
    for index in np.ndindex(n_side, n_side, n_side):
        rotation = Rotation.random(random_state=int(rng.integers(1 << 31))).as_matrix()
        centre = (np.array(index) + 0.5) * spacing + rng.uniform(-0.2, 0.2, 3)
        positions += list(local @ rotation.T + centre)
    count = n_side ** 3
    return Atoms("OH2" * count, positions=positions, cell=np.eye(3) * n_side * spacing, pbc=True)


def cu_atoms(n_target: int):
    from ase.build import bulk
    n_side = max(1, round((n_target / 4) ** (1 / 3)))
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(n_side)
    atoms.rattle(0.05, seed=1)
    return atoms


def run_one(system: str, n_target: int, dtype: str, threads: int, repeats: int) -> dict:
    import torch

    from bpnn_ts import parse_model_config
    from bpnn_ts.export import quiet_jit
    torch.set_num_threads(threads)
    config = dict(SYSTEMS[system], dtype=dtype)
    model = parse_model_config(config).build().eval()
    with quiet_jit():
        model = torch.jit.script(model)
    atoms = water_atoms(n_target) if system == "water" else cu_atoms(n_target)
    tdtype = getattr(torch, dtype)
    args = (torch.tensor(atoms.positions, dtype=tdtype), torch.tensor(atoms.numbers),
            torch.tensor(atoms.cell.array, dtype=tdtype), torch.tensor(atoms.pbc))
    times = []
    for _ in range(repeats + 1):  # first call warms up the TorchScript executor
        start = time.perf_counter()
        model(*args)
        times.append(time.perf_counter() - start)
    best = statistics.median(times[1:])
    return {"system": system, "n_atoms": len(atoms), "dtype": dtype, "threads": threads,
            "us_per_atom": 1e6 * best / len(atoms), "seconds": best,
            "functions": list(model.potential.n_functions),
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--systems", nargs="+", default=["water", "Cu"], choices=sorted(SYSTEMS))
    parser.add_argument("--sizes", nargs="+", type=int, default=[100, 1000, 5000, 25000])
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=0, help="timed calls per size (0: 3 below 5,000 atoms, else 1)")
    parser.add_argument("--one", nargs=2, metavar=("SYSTEM", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        n = int(args.one[1])
        repeats = args.repeats or (3 if n < 5000 else 1)
        print(json.dumps(run_one(args.one[0], n, args.dtype, args.threads, repeats)))
        return
    print(f"{'system':8s} {'atoms':>7s} {'dtype':8s} {'threads':>7s} {'µs/atom':>9s} {'s/call':>8s} {'peak GB':>8s}")
    for system in args.systems:
        for size in args.sizes:
            command = [sys.executable, __file__, "--one", system, str(size), "--dtype", args.dtype,
                       "--threads", str(args.threads), "--repeats", str(args.repeats)]
            row = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
            print(f"{row['system']:8s} {row['n_atoms']:7d} {row['dtype']:8s} {row['threads']:7d} "
                  f"{row['us_per_atom']:9.0f} {row['seconds']:8.2f} {row['peak_rss_gb']:8.2f}", flush=True)


if __name__ == "__main__":
    main()
