"""Cost of committees: the imported n2p2 water potential (../shared/reference/n2p2) as member
0 and copies with perturbed weights as the others, on the 1080-atom box, float64, fused
kernels, energy + forces per call. For K = 1 (the single potential), 2, 4 and 8: the mean
only (what MD runs every step) and with the spreads (`compute_uncertainty`, every member).

    python benchmarks/bench_committee.py [--threads 1] [--sizes 2 4 8] [--rounds 3]

Rows interleave the variants in each round; the table gives each variant's median over rounds.
"""

import argparse
import statistics
import time
from pathlib import Path

import torch

from bpnn_ts.committee_merge import build_committee
from bpnn_ts.export import quiet_jit
from bpnn_ts.io.n2p2 import load_n2p2
from bpnn_ts.io.n2p2_data import read_input_data

SHARED = Path(__file__).resolve().parents[2] / "shared" / "reference" / "n2p2"


def perturbed(model, seed: int):
    """A copy of `model` with 1% noise on every weight: a stand-in for another member."""
    copy = load_n2p2(SHARED / "H2O_RPBE-D3", "bohr", "hartree")
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in copy.parameters():
            p.mul_(1 + 0.01 * torch.randn(p.shape, generator=generator, dtype=p.dtype))
    return copy


def per_atom_us(model, inputs, n_atoms: int, calls: int, **options) -> float:
    model(*inputs, **options)
    model(*inputs, **options)  # two warm-up calls: TorchScript's profiling executor
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        model(*inputs, **options)
        times.append(time.perf_counter() - start)
    return 1e6 * statistics.median(times) / n_atoms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sizes", nargs="+", type=int, default=[2, 4, 8])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=10)
    args = parser.parse_args()
    if not SHARED.is_dir():
        raise SystemExit(f"needs the n2p2 reference data at {SHARED}")
    torch.set_num_threads(args.threads)
    base = load_n2p2(SHARED / "H2O_RPBE-D3", "bohr", "hartree")
    members = [base] + [perturbed(base, seed) for seed in range(1, max(args.sizes))]
    models = {1: base}
    for k in args.sizes:
        models[k] = build_committee(members[:k])
    scripted = {}
    for k, model in models.items():
        if not model.use_native_kernels(True):
            raise SystemExit("the C++ kernels cannot be built here")
        with quiet_jit():
            scripted[k] = torch.jit.script(model.eval())
    atoms = read_input_data(SHARED / "H2O_RPBE-D3" / "input.data", "bohr", "hartree")[0]
    inputs = (torch.tensor(atoms.positions), torch.tensor(atoms.numbers), torch.tensor(atoms.cell.array),
              torch.tensor(atoms.pbc))
    variants = [(k, False) for k in scripted] + [(k, True) for k in scripted if k > 1]
    timings = {v: [] for v in variants}
    for _ in range(args.rounds):
        for k, spreads in variants:
            options = {"compute_uncertainty": True} if spreads else {}
            timings[(k, spreads)].append(per_atom_us(scripted[k], inputs, len(atoms), args.calls, **options))
    single = statistics.median(timings[(1, False)])
    print(f"{len(atoms)}-atom water box, float64, fused kernels, {args.threads} thread(s), "
          f"median of {args.rounds} rounds x {args.calls} calls")
    print(f"{'members':>7s} {'output':18s} {'µs/atom':>8s} {'x single':>8s}")
    for k, spreads in variants:
        us = statistics.median(timings[(k, spreads)])
        print(f"{k:7d} {'mean + spreads' if spreads else 'mean':18s} {us:8.0f} {us / single:8.2f}")


if __name__ == "__main__":
    main()
