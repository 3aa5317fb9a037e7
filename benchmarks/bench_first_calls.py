"""The first calls of a freshly loaded model file with TorchScript's graph optimiser on (torch's
default) and off (BPNN_GRAPH_OPTIMIZER=off): the imported n2p2 water potential, float64, fused
kernels, the 1,080-atom box, energy + forces + virial through `bpnn_ts.load`, each setting in a
fresh process (the optimiser's state is per process). Prints load time, each of the first calls,
and the steady state (median of the next calls) per setting, median over repeats.

    python benchmarks/bench_first_calls.py [--threads 1] [--calls 10] [--repeats 3]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "reference" / "n2p2"

CHILD = r"""
import json, sys, time, torch
torch.set_num_threads(int(sys.argv[3]))
from bpnn_ts import load
from bpnn_ts.io.n2p2_data import read_input_data
atoms = read_input_data(sys.argv[2], "bohr", "hartree")[0]
inputs = (torch.tensor(atoms.positions), torch.tensor(atoms.numbers), torch.tensor(atoms.cell.array),
          torch.tensor(atoms.pbc))
started = time.perf_counter()
model = load(sys.argv[1])
times = [time.perf_counter() - started]
for _ in range(int(sys.argv[4])):
    started = time.perf_counter()
    model(*inputs, compute_virial=True)
    times.append(time.perf_counter() - started)
print(json.dumps({"atoms": len(atoms), "times": times}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not SHARED.is_dir():
        raise SystemExit(f"needs the n2p2 reference data at {SHARED}")
    from bpnn_ts import export
    from bpnn_ts.io.n2p2 import load_n2p2
    folder = Path(tempfile.mkdtemp(prefix="bpnn_first_calls_"))
    path = export(load_n2p2(SHARED / "H2O_RPBE-D3", "bohr", "hartree"), folder / "water.pt")
    data = SHARED / "H2O_RPBE-D3" / "input.data"
    print(f"{'optimiser':10s} {'load s':>7s} {'call 1 s':>9s} {'call 2 s':>9s} {'call 3 s':>9s} "
          f"{'first 3 + load s':>17s} {'steady µs/atom':>15s}")
    for setting in ("on", "off"):
        runs = []
        for _ in range(args.repeats):
            out = subprocess.run([sys.executable, "-c", CHILD, str(path), str(data), str(args.threads), str(args.calls)],
                                 capture_output=True, text=True, check=True,
                                 env=dict(os.environ, BPNN_GRAPH_OPTIMIZER=setting))
            runs.append(json.loads(out.stdout.splitlines()[-1]))
        median = [statistics.median(run["times"][k] for run in runs) for k in range(args.calls + 1)]
        steady = statistics.median(median[4:]) / runs[0]["atoms"] * 1e6
        print(f"{setting:10s} {median[0]:7.2f} {median[1]:9.3f} {median[2]:9.3f} {median[3]:9.3f} "
              f"{sum(median[:4]):17.2f} {steady:15.1f}")


if __name__ == "__main__":
    main()
