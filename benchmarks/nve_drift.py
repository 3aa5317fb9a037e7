"""NVE energy drift of the imported n2p2 water potential on its 1080-atom box: float64 vs
mixed precision (float32 descriptors and nets, float64 sums; bpnn_ts/precision.py).

    python benchmarks/nve_drift.py --precision float64 mixed [--steps 10000] [--dt 0.5]

Velocity Verlet (ASE) from Maxwell-Boltzmann velocities at 300 K (fixed seed, zero total
momentum), one thread. Prints, per precision: drift (slope of a straight-line fit to the total
energy, meV/atom/ps), the total energy's RMS about that line (meV/atom), the largest excursion
from the start, and µs/atom/step. Writes the energy series to --out (CSV) if given.
"""

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from ase import units
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
from ase.md.verlet import VelocityVerlet

from bpnn_ts import export
from bpnn_ts.calculator import BPNNCalculator
from bpnn_ts.io.n2p2 import load_n2p2
from bpnn_ts.io.n2p2_data import read_input_data

SHARED = Path(__file__).resolve().parents[2] / "shared" / "reference" / "n2p2"


def run(precision: str, steps: int, dt_fs: float, every: int, workdir: Path):
    model = load_n2p2(SHARED / "H2O_RPBE-D3", "bohr", "hartree")
    path = export(model.eval(), workdir / f"water_{precision}.pt", dtype=precision)
    atoms = read_input_data(SHARED / "H2O_RPBE-D3" / "input.data", "bohr", "hartree")[0]
    atoms.calc = BPNNCalculator(path)
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(7))
    Stationary(atoms)
    dyn = VelocityVerlet(atoms, timestep=dt_fs * units.fs)
    times, energies = [], []

    def record():
        times.append(dyn.nsteps * dt_fs / 1000.0)  # ps
        energies.append(atoms.get_potential_energy() + atoms.get_kinetic_energy())

    dyn.attach(record, interval=every)
    start = time.perf_counter()
    dyn.run(steps)
    seconds = time.perf_counter() - start
    t, e = np.array(times), np.array(energies) / len(atoms)
    slope, intercept = np.polyfit(t, e, 1)
    rms = float(np.sqrt(np.mean((e - (slope * t + intercept)) ** 2)))
    return {"drift": 1e3 * slope, "rms": 1e3 * rms, "excursion": 1e3 * float(np.abs(e - e[0]).max()),
            "us": 1e6 * seconds / steps / len(atoms), "t": t, "e": e, "atoms": len(atoms)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--precision", nargs="+", default=["float64", "mixed"], choices=["float64", "float32", "mixed"])
    parser.add_argument("--steps", type=int, default=10000)
    parser.add_argument("--dt", type=float, default=0.5, help="time step, fs")
    parser.add_argument("--every", type=int, default=10, help="record the energy every N steps")
    parser.add_argument("--out", type=Path, default=None, help="CSV of time (ps) and energy per atom (eV)")
    args = parser.parse_args()
    if not SHARED.is_dir():
        raise SystemExit(f"needs the n2p2 reference data at {SHARED}")
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", module="ase")
    print(f"{'precision':10s} {'atoms':>6s} {'steps':>6s} {'dt fs':>6s} {'drift meV/atom/ps':>18s} "
          f"{'RMS meV/atom':>13s} {'max |E-E0| meV/atom':>20s} {'µs/atom/step':>13s}", flush=True)
    with tempfile.TemporaryDirectory() as workdir:
        for precision in args.precision:
            r = run(precision, args.steps, args.dt, args.every, Path(workdir))
            print(f"{precision:10s} {r['atoms']:6d} {args.steps:6d} {args.dt:6.2f} {r['drift']:18.2e} "
                  f"{r['rms']:13.2e} {r['excursion']:20.2e} {r['us']:13.0f}", flush=True)
            if args.out is not None:
                out = args.out.with_name(f"{args.out.stem}_{precision}{args.out.suffix}")
                np.savetxt(out, np.column_stack([r["t"], r["e"]]), delimiter=",", header="t_ps,E_eV_per_atom")


if __name__ == "__main__":
    main()
