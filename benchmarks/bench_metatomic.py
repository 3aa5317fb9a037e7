"""Per-call time of one model through metatomic's ASE calculator against bpnn_ts's own: the
imported n2p2 water potential, float64, 1 thread, energy + forces per call (atoms moved between
calls), median after 3 warm-up calls. Rows: the bpnn_ts TorchScript file (`BPNNCalculator`), the
metatomic file with the fused kernels (the default) and on the torch path (`--kernels torch`),
each through `MetatomicCalculator`. Needs metatomic-torch and metatomic-ase.

    python benchmarks/bench_metatomic.py [--calls 30] [--box-calls 8]
"""

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "reference" / "n2p2"


def seconds_per_call(atoms, calculator, calls: int) -> float:
    """Median seconds of energy + forces after moving one atom, 3 warm-up calls excluded."""
    atoms = atoms.copy()
    atoms.calc = calculator
    times = []
    for _ in range(calls + 3):
        atoms.positions[0, 0] += 1e-4
        started = time.perf_counter()
        atoms.get_potential_energy()
        atoms.get_forces()
        times.append(time.perf_counter() - started)
    return statistics.median(times[3:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=30, help="calls on the molecule")
    parser.add_argument("--box-calls", type=int, default=8, help="calls on the 1,080-atom box")
    args = parser.parse_args()
    if not SHARED.is_dir():
        raise SystemExit(f"needs the n2p2 reference data at {SHARED}")
    import torch
    from ase.build import molecule
    try:
        from metatomic_ase import MetatomicCalculator
    except ImportError:
        raise SystemExit("needs metatomic-ase and metatomic-torch (pip install metatomic-ase)") from None

    from bpnn_ts import BPNNCalculator, export
    from bpnn_ts.io.n2p2 import load_n2p2
    from bpnn_ts.io.n2p2_data import read_input_data
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")  # the molecule extrapolates (the potential knows liquid water)
    folder = Path(tempfile.mkdtemp(prefix="bpnn_metatomic_"))
    model = load_n2p2(SHARED / "H2O_RPBE-D3", "bohr", "hartree").eval()
    files = {"bpnn_ts .pt, BPNNCalculator": export(model, folder / "water.pt"),
             "metatomic, fused kernels": export(model, folder / "water-mta.pt", format="metatomic"),
             "metatomic, torch path": export(model, folder / "water-mta-torch.pt", format="metatomic",
                                             native_kernels=False)}
    systems = {"H2O molecule": (molecule("H2O"), args.calls),
               "1,080-atom box": (read_input_data(SHARED / "H2O_RPBE-D3" / "input.data", "bohr", "hartree")[0],
                                  args.box_calls)}
    print("n2p2 water potential, float64, 1 thread; energy + forces per call, median")
    print("| file and calculator | " + " | ".join(f"{name} µs/call | x .pt" for name in systems) + " |")
    print("|---|" + "---|---|" * len(systems))
    reference = {}
    for label, path in files.items():
        cells = []
        for name, (atoms, calls) in systems.items():
            calculator = (BPNNCalculator(path, extrapolation="ignore") if label.startswith("bpnn_ts")
                          else MetatomicCalculator(str(path), device="cpu"))
            seconds = seconds_per_call(atoms, calculator, calls if "torch path" not in label or len(atoms) < 10 else 2)
            reference.setdefault(name, seconds)
            cells.append(f"{seconds * 1e6:,.0f} | {seconds / reference[name]:.2f}")
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
