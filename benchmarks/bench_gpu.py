"""The imported n2p2 water potential (../shared/reference/n2p2/H2O_RPBE-D3) on a GPU (or, for
a check of this script, the CPU): energy + forces per call of the scripted model on cubic
supercells of the 192-atom training structure, ~1,000 to ~1,000,000 atoms, float64 and float32.
Prints and writes (--out, JSON lines) µs/atom/step, atom-steps/s, the GPU memory peak
(torch.cuda.max_memory_allocated) and whether the fused CUDA kernels ran
(torch.ops.bpnn.cuda_kernels(); else CUDA tensors take the dense torch path).

    python benchmarks/bench_gpu.py [--device cuda|cpu] [--dtypes float64 float32] [--kernels native torch]
                                   [--atoms 1000 10000 100000 1000000] [--repeats 3] [--out results.jsonl]
                                   [--data ../shared/reference/n2p2]

A size that runs out of memory is reported as such and the next size is tried.
"""

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Dict, List

import torch

from bpnn_ts.export import quiet_jit
from bpnn_ts.io.n2p2 import load_n2p2
from bpnn_ts.io.n2p2_data import read_input_data
from bpnn_ts.precision import INPUT_DTYPES, set_precision

DATA = Path(__file__).resolve().parents[2] / "shared" / "reference" / "n2p2"


def supercell(atoms, target: int):
    """The 192-atom cell repeated r x r x r times, r the nearest to `target` atoms (at least 1)."""
    r = max(1, round((target / len(atoms)) ** (1.0 / 3.0)))
    return atoms.repeat(r)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(model, inputs, device: torch.device, repeats: int) -> List[float]:
    """Seconds per call, after two warm-up calls (TorchScript's profiling executor)."""
    times = []
    for _ in range(repeats + 2):
        synchronize(device)
        start = time.perf_counter()
        out = model(*inputs)
        out["energy"].item()  # waits for the forces too (one stream)
        synchronize(device)
        times.append(time.perf_counter() - start)
    return times[2:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtypes", nargs="+", default=["float64", "float32"], choices=["float64", "float32", "mixed"])
    parser.add_argument("--kernels", nargs="+", default=["native"], choices=["native", "torch"])
    parser.add_argument("--atoms", nargs="+", type=int, default=[1000, 10000, 100000, 1000000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    parser.add_argument("--out", type=Path, default=None, help="append one JSON line per result")
    parser.add_argument("--data", type=Path, default=DATA, help="folder holding H2O_RPBE-D3 and H2O_RPBE-D3-train")
    args = parser.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"needs the n2p2 reference data at {args.data}")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    train = read_input_data(args.data / "H2O_RPBE-D3-train" / "input.data", "bohr", "hartree")
    cell192 = next(atoms for atoms in train if len(atoms) == 192)
    print(f"{'atoms':>8s} {'kernels':8s} {'dtype':8s} {'µs/atom':>9s} {'atom-steps/s':>13s} {'GPU GB':>7s} fused_cuda")
    for dtype_name in args.dtypes:
        for kernels in args.kernels:
            model = set_precision(load_n2p2(args.data / "H2O_RPBE-D3", "bohr", "hartree"), dtype_name)
            if kernels == "native" and not model.use_native_kernels(True):
                raise SystemExit("the C++ kernels cannot be built here")
            fused_cuda = kernels == "native" and bool(torch.ops.bpnn.cuda_kernels())
            with quiet_jit():
                scripted = torch.jit.script(model.to(device))
            dtype = INPUT_DTYPES[dtype_name]
            for target in args.atoms:
                atoms = supercell(cell192, target)
                inputs = (torch.tensor(atoms.positions, dtype=dtype, device=device),
                          torch.tensor(atoms.numbers, device=device),
                          torch.tensor(atoms.cell.array, dtype=dtype, device=device),
                          torch.tensor(atoms.pbc, device=device))
                row: Dict[str, object] = {"device": str(device), "atoms": len(atoms), "kernels": kernels,
                                          "dtype": dtype_name, "fused_cuda": fused_cuda and device.type == "cuda"}
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                    torch.cuda.reset_peak_memory_stats(device)
                try:
                    seconds = statistics.median(time_calls(scripted, inputs, device, args.repeats))
                except torch.OutOfMemoryError as error:
                    row["error"] = f"out of memory: {str(error).splitlines()[0]}"
                    print(f"{len(atoms):8d} {kernels:8s} {dtype_name:8s} out of memory", flush=True)
                    del inputs
                    if args.out:
                        with open(args.out, "a") as out:
                            out.write(json.dumps(row) + "\n")
                    continue
                gb = torch.cuda.max_memory_allocated(device) / 1024 ** 3 if device.type == "cuda" else 0.0
                row.update(us_per_atom=1e6 * seconds / len(atoms), atom_steps_per_s=len(atoms) / seconds,
                           seconds=seconds, gpu_gb=gb)
                print(f"{len(atoms):8d} {kernels:8s} {dtype_name:8s} {row['us_per_atom']:9.3f} "
                      f"{row['atom_steps_per_s']:13.4g} {gb:7.2f} {row['fused_cuda']}", flush=True)
                if args.out:
                    with open(args.out, "a") as out:
                        out.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
