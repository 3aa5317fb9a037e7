"""The neighbour list against the number of atoms, on one device: the C++/CUDA op
(torch.ops.bpnn.neighbor_list), the TorchScript files' route (images in torch, then
torch.ops.bpnn.cell_list: `native_neighbor_list`) and the pure-torch cell list.

    python benchmarks/bench_neighbors_gpu.py --device cuda [--sizes 1000,10000,100000,1000000]
    python benchmarks/bench_neighbors_gpu.py --device cpu --sizes 1000,10000 [--emulation]

Systems: uniform random atoms at the density of water's atoms (0.1003 Å^-3) in a periodic cube,
cutoff 6.35 Å (about 107 neighbours per atom), float64. Each cell is the median of `--repeats`
calls after one warm-up, synchronized on CUDA. `--emulation` (CPU only) also times the device
code run on the host (bpnn_emulation.neighbor_list: one loop iteration per would-be thread).
Sizes whose torch cell list would take too long are skipped (`--torch-max`).
"""

import argparse
import statistics
import time

import numpy as np
import torch

from bpnn_ts.model.neighbors import native_neighbor_list, neighbor_list
from bpnn_ts.native import load_error, load_ops

DENSITY = 0.1003  # atoms per Å^3 (water: 33.4 molecules per nm^3)


def system(n_atoms: int, device: torch.device, seed: int = 0):
    box = (n_atoms / DENSITY) ** (1.0 / 3.0)
    rng = np.random.default_rng(seed)
    positions = torch.tensor(rng.uniform(0.0, box, (n_atoms, 3)), device=device)
    cell = torch.eye(3, dtype=torch.float64, device=device) * box
    return positions, cell, torch.ones(3, dtype=torch.bool, device=device)


def timed(function, inputs: tuple, repeats: int, device: torch.device):
    """(median seconds, result) of function(*inputs) over `repeats` calls after one warm-up."""
    result = function(*inputs)
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        result = function(*inputs)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sizes", default="1000,10000,100000,1000000", help="numbers of atoms, comma-separated")
    parser.add_argument("--cutoff", type=float, default=6.35)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--torch-max", type=int, default=100_000, help="largest size for the pure-torch list")
    parser.add_argument("--emulation", action="store_true", help="(CPU) also time the host emulation of the device code")
    parser.add_argument("--emulation-library", default="build/cpp_loader/libbpnn_emulation.so",
                        help="the test-only library of the emulation (CMake target bpnn_emulation)")
    args = parser.parse_args()
    device = torch.device(args.device)
    if not load_ops():
        raise SystemExit(f"the C++ ops cannot be built here: {load_error()}")
    if device.type == "cuda" and not torch.ops.bpnn.cuda_kernels():
        print("note: this op library has no CUDA kernels; the ops below fall back or fail on CUDA")
    routes = {
        "op neighbor_list": lambda p, c, b: torch.ops.bpnn.neighbor_list(p, c, b, args.cutoff),
        "torch images + cell_list": lambda p, c, b: native_neighbor_list(p, c, b, args.cutoff),
        "torch cell list": lambda p, c, b: neighbor_list(p, c, b, args.cutoff),
    }
    if args.emulation and device.type == "cpu":
        torch.ops.load_library(args.emulation_library)
        routes["emulation (host)"] = lambda p, c, b: torch.ops.bpnn_emulation.neighbor_list(p, c, b, args.cutoff)
    print(f"device {device}, cutoff {args.cutoff} Å, density {DENSITY} Å^-3, median of {args.repeats}")
    print(f"{'atoms':>9} {'pairs':>12} " + " ".join(f"{name + ' ms':>27}" for name in routes) + f" {'op ns/pair':>11}")
    for n_atoms in (int(size) for size in args.sizes.split(",")):
        positions, cell, pbc = system(n_atoms, device)
        cells, n_pairs, op_seconds = [], 0, 0.0
        for name, route in routes.items():
            if name == "torch cell list" and n_atoms > args.torch_max:
                cells.append(f"{'skipped':>27}")
                continue
            seconds, (pairs, _) = timed(route, (positions, cell, pbc), args.repeats, device)
            if name == "op neighbor_list":
                n_pairs, op_seconds = pairs.shape[1], seconds
            elif pairs.shape[1] != n_pairs:
                raise SystemExit(f"{name} found {pairs.shape[1]} pairs, the op {n_pairs}")
            cells.append(f"{1e3 * seconds:27.2f}")
        print(f"{n_atoms:9d} {n_pairs:12d} " + " ".join(cells) + f" {1e9 * op_seconds / max(n_pairs, 1):11.2f}")


if __name__ == "__main__":
    main()
