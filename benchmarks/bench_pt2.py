"""`.pt2` (torch.export + AOTInductor) against TorchScript on the imported n2p2 water potential
(../shared/reference/n2p2/H2O_RPBE-D3), energy + forces per call, from Python: export (compile)
time, load time, first-call latency and the median µs/atom/step, with the largest difference
between the two files' energies and forces (they must agree to rounding).

    python benchmarks/bench_pt2.py [--threads 1] [--dtypes float64 float32] [--sizes 1080 29160]
                                   [--bpnn-run build/cpp_loader/bpnn_run] [--md-steps 10]

With --bpnn-run, the same files also through the C++ loader: `bpnn_run FILE box.xyz` (a single
point: process start, load, first call) and `--md STEPS`; the per-step time is their difference
over the steps.
"""

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from bpnn_ts.export import export, load
from bpnn_ts.io.n2p2 import load_n2p2
from bpnn_ts.io.n2p2_data import read_input_data
from bpnn_ts.precision import INPUT_DTYPES

SHARED = Path(__file__).resolve().parents[2] / "shared" / "reference" / "n2p2"


def timed(function, *args, **kwargs):
    """(function(*args, **kwargs), seconds it took)."""
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dtypes", nargs="+", default=["float64", "float32"], choices=["float64", "float32", "mixed"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[1080, 29160], choices=[1080, 29160])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--bpnn-run", default=None, help="path of a built bpnn_run: time the files through C++ too")
    parser.add_argument("--md-steps", type=int, default=10)
    args = parser.parse_args()
    if not SHARED.is_dir():
        raise SystemExit(f"needs the n2p2 reference data (GPL, ../shared/reference/n2p2) at {SHARED}")
    torch.set_num_threads(args.threads)
    box = read_input_data(SHARED / "H2O_RPBE-D3" / "input.data", "bohr", "hartree")[0]
    systems = {1080: box, 29160: box.repeat(3)}
    model = load_n2p2(SHARED / "H2O_RPBE-D3", "bohr", "hartree")
    print(f"# imported n2p2 water potential, energy + forces, {args.threads} thread(s), torch {torch.__version__}")
    print("| dtype | format | export s | load s | atoms | first call s | µs/atom/step | max |ΔE| eV | max |ΔF| eV/Å |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for dtype in args.dtypes:
            files = {}
            for kind, suffix in (("torchscript", ".pt"), ("pt2", ".pt2")):
                path, seconds = timed(export, model, Path(folder) / f"water-{dtype}{suffix}", dtype=dtype)
                loaded, load_seconds = timed(load, path)
                files[kind] = (loaded, seconds, load_seconds)
            for size in args.sizes:
                atoms = systems[size]
                real = INPUT_DTYPES[dtype]
                inputs = (torch.tensor(atoms.positions, dtype=real), torch.tensor(atoms.numbers),
                          torch.tensor(atoms.cell.array, dtype=real), torch.tensor(atoms.pbc))
                results = {}
                for kind, (loaded, _, _) in files.items():
                    out, first = timed(loaded, *inputs)
                    times = [timed(loaded, *inputs)[1] for _ in range(args.repeats + 1)]
                    results[kind] = (out, first, 1e6 * statistics.median(times[1:]) / len(atoms))
                reference = results["torchscript"][0]
                for kind, (out, first, us) in results.items():
                    energy = abs(float(out["energy"]) - float(reference["energy"]))
                    forces = float((out["forces"] - reference["forces"]).abs().max())
                    _, export_seconds, load_seconds = files[kind]
                    print(f"| {dtype} | {kind} | {export_seconds:.1f} | {load_seconds:.2f} | {len(atoms)} | {first:.3f} | "
                          f"{us:.1f} | {energy:.1e} | {forces:.1e} |", flush=True)
                if args.bpnn_run:
                    run_in_cpp(args, folder, atoms, dtype, files)


def run_in_cpp(args, folder: str, atoms, dtype: str, files) -> None:
    """One row per file: bpnn_run's single-point wall time and its µs/atom/step in MD."""
    import ase.io
    structure = Path(folder) / f"box-{len(atoms)}.xyz"
    ase.io.write(structure, atoms, format="extxyz")
    for kind in files:
        path = Path(folder) / f"water-{dtype}{'.pt2' if kind == 'pt2' else '.pt'}"
        command = [args.bpnn_run, str(path), str(structure), "--threads", str(args.threads), "--extrapolation",
                   "ignore"]
        _, single = timed(subprocess.run, command, check=True, capture_output=True)
        md = command + ["--md", str(args.md_steps), "--dt", "0.5", "--every", str(args.md_steps)]
        _, dynamics = timed(subprocess.run, md, check=True, capture_output=True)
        us = 1e6 * (dynamics - single) / args.md_steps / len(atoms)
        print(f"| {dtype} | {kind} via bpnn_run | | | {len(atoms)} | single point {single:.2f} s | {us:.1f} | | |",
              flush=True)


if __name__ == "__main__":
    main()
