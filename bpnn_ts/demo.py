"""`bpnn-ts demo`: the README's main job, with nothing downloaded.

Generates fcc Cu configurations with ASE's EMT, builds a Cu model from the
default config, fits its input scaling to the data, exports ONE model file,
reloads it through the ASE calculator and runs NVE molecular dynamics,
reporting energy conservation and speed. (Training arrives with `bpnn-ts train`;
until then the network is the seeded, untrained one.)
"""

import time
from pathlib import Path

import numpy as np
from ase import units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from ase.md.verlet import VelocityVerlet

from .calculator import BPNNCalculator
from .config import parse_model_config
from .export import export, inspect
from .scaling import fit_scaling

DEMO_CONFIG = {"elements": ["Cu"], "cutoff": 5.0, "cutoff_function": "cos",
               "symmetry_functions": "auto", "hidden_layers": [25, 25], "activation": "tanh",
               "scaling": "scalecenter", "seed": 7, "dtype": "float64",
               "atomic_energies": {"Cu": -3.5}, "description": "bpnn-ts demo: fcc Cu"}


def emt_structures(count: int = 8, seed: int = 0):
    """Rattled and strained 32-atom fcc Cu cells labelled with EMT."""
    rng = np.random.default_rng(seed)
    structures = []
    for k in range(count):
        atoms = bulk("Cu", "fcc", a=3.61 * (1 + rng.uniform(-0.03, 0.03)), cubic=True).repeat(2)
        atoms.rattle(0.05 + 0.1 * k / count, seed=int(rng.integers(1 << 30)))
        atoms.calc = EMT()
        atoms.get_forces()
        structures.append(atoms)
    return structures


def run_demo(output: Path, steps: int = 200) -> int:
    output.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    config = parse_model_config(DEMO_CONFIG)
    model = config.build()
    data = emt_structures()
    fit_scaling(model, data)
    path = export(model.eval(), output / "cu_model.pt", description=config.description)
    info = inspect(path)["metadata"]
    print(f"exported {path}: {info['elements']}, cutoff {info['cutoff']} Å, {info['dtype']}, "
          f"{model.n_functions[0]} symmetry functions")

    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(3)
    atoms.calc = BPNNCalculator(path)
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(1))
    dynamics = VelocityVerlet(atoms, timestep=1.0 * units.fs)
    totals = []
    dynamics.attach(lambda: totals.append(atoms.get_total_energy()), interval=1)
    md_start = time.perf_counter()
    dynamics.run(steps)
    md_time = time.perf_counter() - md_start
    drift = (max(totals) - min(totals)) / len(atoms)
    print(f"NVE MD: {len(atoms)} atoms, {steps} steps of 1 fs, total-energy spread {drift:.2e} eV/atom, "
          f"{1e6 * md_time / (steps * len(atoms)):.0f} µs/atom/step")
    print(f"stress (eV/Å^3): {np.round(atoms.get_stress(), 5).tolist()}")
    print(f"files in {output.resolve()}; demo took {time.perf_counter() - start:.1f} s")
    return 0 if drift < 1e-4 else 1
