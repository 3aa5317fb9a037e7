"""Per-call time of small systems and one box: the whole evaluation in one op (bpnn::evaluate, the
default) against the general path (`whole_evaluation_atoms = 0`), the model file called directly
and through the ASE calculator (`BPNNCalculator`, energy + forces, extrapolation counted: its
default). The imported n2p2 water potential (../shared/reference/n2p2), float64, 1 thread, atoms
moved between calls; median of `--calls` calls after 20 warm-up calls, `--rounds` rounds
interleaved (the median of the rounds' medians).

    python benchmarks/bench_small_systems.py [--calls 2000] [--rounds 3]
"""

import argparse
import statistics
import tempfile
import time
import warnings
from functools import partial
from pathlib import Path
from typing import Callable, Dict, List

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "reference" / "n2p2" / "H2O_RPBE-D3"


def median_seconds(call: Callable[[], None], calls: int) -> float:
    times = []
    for _ in range(calls + 20):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times[20:])


def ase_call(atoms) -> None:
    """Energy and forces after moving one atom."""
    atoms.positions[0, 0] += 1e-7
    atoms.get_potential_energy()
    atoms.get_forces()


def systems() -> Dict[str, object]:
    from ase.build import molecule

    from bpnn_ts.io.n2p2_data import read_input_data
    box = read_input_data(SHARED / "input.data", "bohr", "hartree")[0]
    dimer = molecule("H2O")
    dimer += molecule("H2O")
    dimer.positions[3:] += [2.9, 0.0, 0.0]
    return {"H2O molecule": molecule("H2O"), "water dimer": dimer, "1,080-atom box": box}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000, help="calls per small system and round (box: 1/200th)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not SHARED.is_dir():
        raise SystemExit(f"needs the n2p2 reference data at {SHARED}")
    import torch

    from bpnn_ts import BPNNCalculator, export, graph_optimizer, load
    from bpnn_ts.io.n2p2 import load_n2p2
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")  # the molecule extrapolates (the potential knows liquid water)
    path = export(load_n2p2(SHARED, "bohr", "hartree").eval(), Path(tempfile.mkdtemp()) / "water.pt")
    model = load(path)
    rows: Dict[str, Dict[str, List[float]]] = {}
    for _ in range(args.rounds):
        for name, atoms in systems().items():
            calls = args.calls if len(atoms) < 100 else max(3, args.calls // 200)
            inputs = [torch.tensor(atoms.positions), torch.tensor(atoms.numbers),
                      torch.tensor(np.asarray(atoms.cell.array)), torch.tensor(atoms.pbc)]
            row = rows.setdefault(name, {})
            for label, atoms_limit in (("one op", 1 << 40), ("general path", 0)):
                model.whole_evaluation_atoms = atoms_limit
                with graph_optimizer.scope(False):
                    seconds = median_seconds(partial(model, *inputs, compute_forces=True, count_extrapolation=True),
                                             calls)
                row.setdefault(f"model call, {label}", []).append(seconds)
            model.whole_evaluation_atoms = 1 << 40
            moved = atoms.copy()
            moved.calc = BPNNCalculator(model)
            row.setdefault("ASE calculator, one op", []).append(median_seconds(partial(ase_call, moved), calls))
    columns = list(next(iter(rows.values())))
    print("n2p2 water potential, float64, 1 thread; energy + forces, extrapolation counted; µs per call, median")
    print("| system | atoms | " + " | ".join(columns) + " |")
    print("|---|---:|" + "---:|" * len(columns))
    for name, atoms in systems().items():
        cells = [f"{1e6 * statistics.median(rows[name][column]):,.1f}" for column in columns]
        print(f"| {name} | {len(atoms)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
