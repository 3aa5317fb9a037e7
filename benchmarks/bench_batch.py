"""Many small systems per call: 1,000 non-periodic water clusters (7 molecules, 21 atoms each;
`--molecules 1`: single water molecules, as path-integral beads or molecular MD)
through an exported H/O model (float64, fused kernels where they build), energy + forces, one
`forward` call per cluster vs `forward_batch` calls of several batch sizes (bpnn_ts.many_structures
builds the inputs; building them is included in the time).

    python benchmarks/bench_batch.py [--threads 1] [--clusters 1000] [--molecules 7] [--sizes 10 100 1000]
        [--rounds 3]

Rows interleave the variants in each round; the table gives each variant's median over rounds.
"""

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable, Dict, List

import numpy as np
import torch
from ase import Atoms

from bpnn_ts import export, load, parse_model_config
from bpnn_ts.errors import UntrainedModelWarning
from bpnn_ts.many_structures import batch_inputs


def water_cluster(rng: np.random.Generator, n_molecules: int = 7, box: float = 6.0) -> Atoms:
    """`n_molecules` waters at random in a `box` Å cube, oxygens at least 2.6 Å apart, not periodic."""
    oxygens: List[np.ndarray] = []
    while len(oxygens) < n_molecules:
        candidate = rng.uniform(0, box, 3)
        if all(np.linalg.norm(candidate - o) >= 2.6 for o in oxygens):
            oxygens.append(candidate)
    positions = []
    for o in oxygens:
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        other = np.cross(axis, rng.normal(size=3))
        other /= np.linalg.norm(other)
        positions += [o, o + 0.96 * axis, o + 0.96 * (np.cos(1.82) * axis + np.sin(1.82) * other)]
    return Atoms("OH2" * n_molecules, positions=positions)


def model_file(folder: Path) -> Path:
    """A random-weight H/O model (4 radial and 8 angular functions per element pair, 2x16 tanh)."""
    config = parse_model_config({"elements": ["H", "O"], "cutoff": 5.0, "cutoff_function": "cos",
                                 "symmetry_functions": {"auto": {"n_radial": 6, "angular_eta": [0.02],
                                                                 "zetas": [1.0, 4.0]}},
                                 "hidden_layers": [16, 16], "activation": "tanh", "seed": 1,
                                 "atomic_energies": {"H": -1.5, "O": -4.0}})
    model = config.build().eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=generator, dtype=p.dtype) * 0.3)
    return export(model, folder / "model.pt")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--molecules", type=int, default=7, help="water molecules per cluster")
    parser.add_argument("--sizes", nargs="+", type=int, default=[10, 100, 1000])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    clusters = [water_cluster(rng, args.molecules) for _ in range(args.clusters)]
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore", UntrainedModelWarning)  # random weights on purpose: a timing
        model = load(model_file(Path(folder)))
    singles = [(torch.tensor(a.positions), torch.tensor(a.numbers)) for a in clusters]

    def one_call_each() -> None:
        for positions, numbers in singles:
            model(positions, numbers)

    def batched(size: int) -> Callable[[], None]:
        def run() -> None:
            for start in range(0, len(clusters), size):
                model.forward_batch(*batch_inputs(clusters[start:start + size], torch.float64))
        return run

    variants: Dict[str, Callable[[], None]] = {"one call per system": one_call_each}
    for size in args.sizes:
        variants[f"forward_batch, {size} per call"] = batched(size)
    for run in variants.values():  # warm-up: TorchScript's profiling executor
        run()
        run()
    times: Dict[str, List[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, run in variants.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    n_atoms = sum(len(a) for a in clusters)
    print(f"{args.clusters} clusters of {n_atoms // args.clusters} atoms; float64; fused kernels: "
          f"{model.uses_native_kernels()}; {args.threads} thread(s); median of {args.rounds} rounds; "
          f"energy + forces\n")
    base = statistics.median(times["one call per system"])
    print(f"| {'variant':32s} | µs / structure | µs / atom | speed-up |")
    print(f"|{'-' * 34}|---------------:|----------:|---------:|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name:32s} | {1e6 * median / args.clusters:14.1f} | {1e6 * median / n_atoms:9.2f} | "
              f"{base / median:7.2f}x |")


if __name__ == "__main__":
    main()
