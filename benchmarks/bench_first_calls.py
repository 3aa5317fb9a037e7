"""A freshly loaded model file's first calls in every runtime, with TorchScript's graph optimiser
as bpnn_ts runs it (off) and on (BPNN_GRAPH_OPTIMIZER=on): the imported n2p2 water potential,
float64, fused kernels, the 1,080-atom box, 1 thread, each case a fresh process (the optimiser's
state is per process), medians over repeats.

- ASE: `BPNNCalculator` load, then the first three energy + forces calls (atoms moved between
  calls), then the steady state (median of the next calls, µs/atom).
- bpnn_run: the wall time of the whole process for a single point (load included) and for
  `--md 2` (three force calls).
- LAMMPS (`pair_style bpnn`, when `lmp` and the plugin are here): the wall time of `lmp` for
  `run 2` (three force calls) and LAMMPS's own loop time per step.

    python benchmarks/bench_first_calls.py [--calls 20] [--repeats 3]
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "reference" / "n2p2"
BUILD = Path(os.environ.get("BPNN_BUILD_DIR", ROOT / "build")) / "cpp_loader"
SETTINGS = {"bpnn_ts (off)": None, "on": "on"}

ASE_CHILD = r"""
import json, sys, time
import numpy as np, torch
torch.set_num_threads(1)
started = time.perf_counter()
from ase.io import read
from bpnn_ts import BPNNCalculator
atoms = read(sys.argv[2])
imported = time.perf_counter() - started
started = time.perf_counter()
atoms.calc = BPNNCalculator(sys.argv[1], extrapolation="ignore")
times = [time.perf_counter() - started]
rng = np.random.default_rng(0)
for _ in range(int(sys.argv[3])):
    atoms.positions += rng.normal(0, 1e-3, atoms.positions.shape)
    started = time.perf_counter()
    atoms.get_forces()
    times.append(time.perf_counter() - started)
print(json.dumps({"atoms": len(atoms), "times": times, "import": imported}))
"""

LAMMPS_INPUT = """units metal
atom_style atomic
boundary p p p
read_data data.lmp
plugin load {plugin}
pair_style bpnn {model}
pair_coeff * * O H
velocity all create 300 4928 loop geom
timestep 0.0005
fix nve all nve
thermo 1
run 2
"""


def wall(command: List[str], env: Dict[str, str], cwd: Path) -> float:
    """Seconds the process `command` ran (it must succeed)."""
    started = time.perf_counter()
    subprocess.run(command, env=env, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - started


def median_wall(runs: int, command: List[str], env: Dict[str, str], cwd: Path) -> float:
    return statistics.median(wall(command, env, cwd) for _ in range(runs))


def lammps_runs(runs: int, lmp: str, env: Dict[str, str], folder: Path) -> Tuple[float, float]:
    """Median wall seconds of `lmp -in in.lmp` (run 2) and of LAMMPS's loop time per step."""
    walls, loops = [], []
    for _ in range(runs):
        walls.append(wall([lmp, "-in", "in.lmp", "-log", "log.lammps", "-screen", "none"], env, folder))
        log = (folder / "log.lammps").read_text()
        loop = re.search(r"Loop time of ([0-9.eE+-]+) on", log)
        assert loop, "unexpected LAMMPS log"
        loops.append(float(loop.group(1)) / 2)
    return statistics.median(walls), statistics.median(loops)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20, help="calls per ASE process (the steady state: after 3)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not SHARED.is_dir():
        raise SystemExit(f"needs the n2p2 reference data at {SHARED}")
    from ase.io import write

    from bpnn_ts import export
    from bpnn_ts.io.n2p2 import load_n2p2
    from bpnn_ts.io.n2p2_data import read_input_data
    folder = Path(tempfile.mkdtemp(prefix="bpnn_first_calls_"))
    model = export(load_n2p2(SHARED / "H2O_RPBE-D3", "bohr", "hartree"), folder / "water.pt")
    atoms = read_input_data(SHARED / "H2O_RPBE-D3" / "input.data", "bohr", "hartree")[0]
    write(folder / "box.xyz", atoms, format="extxyz")
    write(folder / "data.lmp", atoms, format="lammps-data", specorder=["O", "H"], masses=True)
    bpnn_run = BUILD / "bpnn_run"
    plugin, lmp = BUILD / "bpnnplugin.so", shutil.which("lmp", path=os.path.dirname(sys.executable))
    lmp = lmp or shutil.which("lmp")
    (folder / "in.lmp").write_text(LAMMPS_INPUT.format(plugin=plugin, model=model))
    print(f"n2p2 water, {len(atoms)} atoms, float64, 1 thread; seconds unless marked; medians of {args.repeats}")
    print("| optimiser | ASE load | call 1 | call 2 | call 3 | ASE load + 3 calls | ASE steady µs/atom "
          "| bpnn_run single point | bpnn_run --md 2 | lmp run 2 | lmp loop µs/atom/step |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, setting in SETTINGS.items():
        env = dict(os.environ, OMP_NUM_THREADS="1")
        env.pop("BPNN_GRAPH_OPTIMIZER", None)
        if setting is not None:
            env["BPNN_GRAPH_OPTIMIZER"] = setting
        runs = []
        for _ in range(args.repeats):
            out = subprocess.run([sys.executable, "-c", ASE_CHILD, str(model), str(folder / "box.xyz"), str(args.calls)],
                                 capture_output=True, text=True, check=True, env=env)
            runs.append(json.loads(out.stdout.splitlines()[-1]))
        times = [statistics.median(run["times"][k] for run in runs) for k in range(args.calls + 1)]
        steady = statistics.median(times[4:]) / len(atoms) * 1e6
        cells = [f"{t:.2f}" for t in times[:4]] + [f"**{sum(times[:4]):.2f}**", f"{steady:.1f}"]
        if bpnn_run.is_file():
            single = median_wall(args.repeats, [str(bpnn_run), str(model), "box.xyz"], env, folder)
            md = median_wall(args.repeats, [str(bpnn_run), str(model), "box.xyz", "--md", "2", "--dt", "0.5"], env,
                             folder)
            cells += [f"**{single:.2f}**", f"{md:.2f}"]
        else:
            cells += ["(no build)"] * 2
        if lmp and plugin.is_file():
            lammps_wall, loop = lammps_runs(args.repeats, lmp, env, folder)
            cells += [f"{lammps_wall:.2f}", f"{loop / len(atoms) * 1e6:.0f}"]
        else:
            cells += ["(no lmp)"] * 2
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
