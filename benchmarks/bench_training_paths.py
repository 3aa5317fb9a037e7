"""One training step per structure through each evaluation path, with the imported n2p2 water
potential (../shared/reference/n2p2/H2O_RPBE-D3, float64, eager, train mode) on the periodic
water cells of its training set (48, 96, 192 atoms). A step: energy, forces and virial with
create_graph, the loss sum (F - F_ref)^2 + (E - E_ref)^2, and its backward to the weights.

    python benchmarks/bench_training_paths.py [--threads 1] [--repeats 5] [--sizes 96 192]
                                              [--paths cached torch fused]

`cached`: descriptors and dG/dr computed once (bpnn_ts/training/batch.py: make_batches(cached=True),
then predict(create_graph=True) per step); `torch`: the model without kernels in train mode
(dense torch blocks, analytic forces, every step); `fused`: the model with the fused C++ kernels
in train mode (their autograd carries the force loss to the weights). Columns: median ms per
step, the cache's memory per structure (the Jacobian tensor; built once, its time not counted)
and the peak RSS of a process that ran only that path and size (each runs in a child process).
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

SHARED = Path(__file__).resolve().parents[2] / "shared" / "reference" / "n2p2"
PATHS = ("cached", "torch", "fused")


def measure(path: str, size: int, repeats: int, threads: int) -> dict:
    """Median seconds of a training step through `path` on the first `size`-atom training cell."""
    from bpnn_ts.io.n2p2 import load_n2p2
    from bpnn_ts.io.n2p2_data import read_input_data
    from bpnn_ts.training.batch import make_batches, predict

    torch.set_num_threads(threads)
    model = load_n2p2(SHARED / "H2O_RPBE-D3", "bohr", "hartree")
    if path == "fused" and not model.use_native_kernels(True):
        raise SystemExit("the C++ kernels cannot be built here")
    train = read_input_data(SHARED / "H2O_RPBE-D3-train" / "input.data", "bohr", "hartree")
    atoms = next(a for a in train if len(a) == size)
    batch = make_batches(model, [atoms], cached=path == "cached")[0]
    cache_bytes = batch.jacobian.numel() * batch.jacobian.element_size() if batch.jacobian is not None else 0
    model.train()
    parameters = [p for p in model.parameters() if p.requires_grad]
    times = []
    for _ in range(repeats + 1):  # one warm-up step
        start = time.perf_counter()
        out = predict(model, batch, create_graph=True)
        loss = ((out["forces"] - batch.forces) ** 2).sum() + ((out["energy"] - batch.energy) ** 2).sum()
        torch.autograd.grad(loss, parameters)
        times.append(time.perf_counter() - start)
    return {"ms": 1e3 * statistics.median(times[1:]), "cache_mb": cache_bytes / 1024 ** 2,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", nargs="+", type=int, default=[96, 192], choices=[48, 96, 192])
    parser.add_argument("--paths", nargs="+", default=list(PATHS), choices=PATHS)
    parser.add_argument("--worker", nargs=2, metavar=("PATH", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not SHARED.is_dir():
        raise SystemExit(f"needs the n2p2 reference data at {SHARED}")
    if args.worker:
        print(json.dumps(measure(args.worker[0], int(args.worker[1]), args.repeats, args.threads)))
        return
    print(f"{'atoms':>5s} {'path':7s} {'threads':>7s} {'ms/step':>9s} {'cache MB':>9s} {'peak RSS MB':>11s}")
    for size in args.sizes:
        for path in args.paths:
            command = [sys.executable, __file__, "--worker", path, str(size), "--repeats", str(args.repeats),
                       "--threads", str(args.threads)]
            result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
            print(f"{size:5d} {path:7s} {args.threads:7d} {result['ms']:9.1f} {result['cache_mb']:9.1f} "
                  f"{result['peak_mb']:11.0f}", flush=True)


if __name__ == "__main__":
    main()
