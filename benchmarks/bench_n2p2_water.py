"""The imported n2p2 water potential (../shared/reference/n2p2/H2O_RPBE-D3), float64,
energy + forces per call, on a 96-atom training cell, the 1080-atom box and 24,000- and
98,304-atom supercells of the 192-atom training structure (n2p2's own figure: ~270
µs/atom/step, 1 thread). Peak memory is the process's (ru_maxrss): run sizes in increasing order.

    python benchmarks/bench_n2p2_water.py [--threads 1] [--dtype float64|float32|mixed] [--kernels native torch]
                                          [--sizes 96 1080 24000 98304]

`native`: the fused C++ descriptor kernels (what exported files use by default);
`torch`: the pure-TorchScript path (dense per-centre blocks, analytic forces).
"""

import argparse
import resource
import statistics
import time
from pathlib import Path

import torch

from bpnn_ts.export import quiet_jit
from bpnn_ts.io.n2p2 import load_n2p2
from bpnn_ts.io.n2p2_data import read_input_data
from bpnn_ts.precision import INPUT_DTYPES, PRECISIONS, set_precision

SHARED = Path(__file__).resolve().parents[2] / "shared" / "reference" / "n2p2"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dtype", default="float64", choices=list(PRECISIONS))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--kernels", nargs="+", default=["native", "torch"], choices=["native", "torch"])
    parser.add_argument("--sizes", nargs="+", default=["1080", "24000"], choices=["96", "1080", "24000", "98304"])
    args = parser.parse_args()
    if not SHARED.is_dir():
        raise SystemExit(f"needs the n2p2 reference data at {SHARED}")
    torch.set_num_threads(args.threads)
    dtype = INPUT_DTYPES[args.dtype]
    models = {}
    for kernels in args.kernels:
        model = set_precision(load_n2p2(SHARED / "H2O_RPBE-D3", "bohr", "hartree"), args.dtype)
        if kernels == "native" and not model.use_native_kernels(True):
            raise SystemExit("the C++ kernels cannot be built here")
        with quiet_jit():
            models[kernels] = torch.jit.script(model)
    box = read_input_data(SHARED / "H2O_RPBE-D3" / "input.data", "bohr", "hartree")[0]
    train = read_input_data(SHARED / "H2O_RPBE-D3-train" / "input.data", "bohr", "hartree")
    cell192 = next(atoms for atoms in train if len(atoms) == 192)
    cell96 = next(atoms for atoms in train if len(atoms) == 96)
    print(f"{'system':22s} {'atoms':>7s} {'kernels':8s} {'dtype':8s} {'threads':>7s} {'µs/atom':>9s} {'peak GB':>8s}")
    systems = {"96": ("96-atom cell", cell96), "1080": ("1080-atom box", box),
               "24000": ("192-atom cell x 5^3", cell192.repeat(5)), "98304": ("192-atom cell x 8^3", cell192.repeat(8))}
    for size in args.sizes:
        name, atoms = systems[size]
        for kernels, model in models.items():
            inputs = (torch.tensor(atoms.positions, dtype=dtype), torch.tensor(atoms.numbers),
                      torch.tensor(atoms.cell.array, dtype=dtype), torch.tensor(atoms.pbc))
            times = []
            for _ in range(max(args.repeats, 20000 // len(atoms)) + 2):  # two warm-up calls: TorchScript's profiling executor
                start = time.perf_counter()
                model(*inputs)
                times.append(time.perf_counter() - start)
            us = 1e6 * statistics.median(times[2:]) / len(atoms)
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
            print(f"{name:22s} {len(atoms):7d} {kernels:8s} {args.dtype:8s} {args.threads:7d} {us:9.0f} {peak:8.2f}",
                  flush=True)


if __name__ == "__main__":
    main()
