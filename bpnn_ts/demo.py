"""`bpnn-ts demo`: the README's main job, with nothing downloaded.

1. Generates a labelled fcc Cu data set with ASE's EMT calculator
   (`demo_data`: bulk MD at 300-1200 K under strain, a vacancy, a slab) and a
   test set it never trains on (108-atom bulk at 800 K).
2. Trains a BPNN on it with `bpnn-ts train` machinery (config written to
   the output folder as `train.yaml`), which exports ONE model file.
3. Evaluates the exported file on the test set and runs NVE molecular
   dynamics with it through the ASE calculator; prints a report.
"""

import time
from pathlib import Path
from typing import Any, Dict, Optional

import ase.io
import numpy as np
import yaml
from ase import units
from ase.md.verlet import VelocityVerlet

from .calculator import BPNNCalculator
from .demo_data import test_set, thermalize, training_pool
from .export import inspect, load
from .threads import torch_threads
from .training import Trainer, parse_train_config
from .training.metrics import evaluate_structures

ENERGY_BAR_MEV = 3.0  # meV/atom on the unseen 800 K bulk
FORCE_BAR = 0.08  # eV/Å

DEMO_TRAIN_CONFIG: Dict[str, Any] = {
    "model": {"elements": ["Cu"], "cutoff": 5.0, "cutoff_function": "cos", "symmetry_functions": "auto",
              "hidden_layers": [25, 25], "activation": "tanh", "seed": 1, "dtype": "float64",
              "description": "bpnn-ts demo: fcc Cu fitted to EMT"},
    "data": {"train": "data/train.xyz", "split": {"validation": 0.1, "test": 0.0}},
    "loss": {"energy": 1.0, "forces": 10.0},
    "training": {"epochs": 60, "optimizer": "kalman", "early_stopping": 20, "seed": 0, "checkpoint_every": 10},
    "output": "training",
}


def run_demo(output: Path, steps: int = 200, epochs: int = 0, threads: Optional[int] = 1) -> int:
    """Run the demo into `output` with `threads` intra-op threads (training and MD); returns 0
    when the test errors are under the bars and NVE conserves energy."""
    start = time.perf_counter()
    output.mkdir(parents=True, exist_ok=True)
    (output / "data").mkdir(exist_ok=True)
    print("1/3 generating EMT data ...", flush=True)
    pool, test = training_pool(), test_set()
    ase.io.write(output / "data" / "train.xyz", pool)
    ase.io.write(output / "data" / "test_800K.xyz", test)
    raw = dict(DEMO_TRAIN_CONFIG)
    if epochs > 0:
        raw["training"] = dict(raw["training"], epochs=epochs)
    (output / "train.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    print(f"    {len(pool)} training structures ({sum(len(a) for a in pool)} atoms), "
          f"{len(test)} test structures; data and train.yaml in {output}", flush=True)

    print("2/3 training ...", flush=True)
    train_start = time.perf_counter()
    config = parse_train_config(raw, output)
    # the demo regenerates its folder: a re-run replaces the earlier run's training files
    with torch_threads(threads):
        Trainer(config, log=lambda line: print("    " + line, flush=True), overwrite=True).run()
    train_time = time.perf_counter() - train_start
    model_path = Path(config.output) / "model.pt"
    meta = inspect(model_path)["metadata"]

    print("3/3 testing the exported file ...", flush=True)
    metrics = evaluate_structures(load(model_path), test)
    atoms = test[0].copy()
    atoms.calc = BPNNCalculator(model_path, threads=threads)
    thermalize(atoms, 300, np.random.default_rng(1))
    dynamics = VelocityVerlet(atoms, timestep=1.0 * units.fs)
    totals = []
    dynamics.attach(lambda: totals.append(atoms.get_total_energy()), interval=1)
    md_start = time.perf_counter()
    dynamics.run(steps)
    md_time = time.perf_counter() - md_start
    spread = (max(totals) - min(totals)) / len(atoms)
    drift = abs(totals[-1] - totals[0]) / len(atoms)

    energy_ok = metrics["energy_rmse_mev_atom"] < ENERGY_BAR_MEV
    force_ok = metrics["force_rmse"] < FORCE_BAR
    print("\n==== bpnn-ts demo report ====")
    print(f"model file        {model_path.resolve()}  ({meta['elements']}, cutoff {meta['cutoff']} Å, {meta['dtype']})")
    print(f"training          {train_time:.0f} s; log {Path(config.output) / 'metrics.csv'}; plots *.png there")
    print(f"test (800 K bulk, {metrics['atoms']} atoms in {metrics['structures']} structures, never trained on):")
    print(f"  energy RMSE     {metrics['energy_rmse_mev_atom']:.3f} meV/atom   (bar < {ENERGY_BAR_MEV}) "
          f"{'ok' if energy_ok else 'MISSED'}")
    print(f"  force RMSE      {metrics['force_rmse']:.4f} eV/Å       (bar < {FORCE_BAR}) {'ok' if force_ok else 'MISSED'}")
    print(f"NVE MD            {len(atoms)} atoms, {steps} x 1 fs with the exported file: total-energy spread "
          f"{spread:.2e} eV/atom, drift {drift:.2e} eV/atom; {1e6 * md_time / (steps * len(atoms)):.0f} µs/atom/step")
    print(f"total time        {time.perf_counter() - start:.0f} s")
    return 0 if (energy_ok and force_ok and spread < 1e-3) else 1
