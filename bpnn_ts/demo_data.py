"""A small labelled fcc Cu data set from ASE's EMT calculator (nothing downloaded).

Training pool: 32-atom bulk cells from Langevin MD at several temperatures and
isotropic/shear strains, a 31-atom vacancy cell, and a 4-layer (111) slab
with vacuum. Test set: 108-atom bulk at 800 K from an independent MD run,
configurations the training never saw.
"""

from typing import List

import numpy as np
from ase import Atoms, units
from ase.build import bulk, fcc111
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.md.langevin import Langevin

LATTICE = 3.61  # Å, EMT's Cu is close to this


def _labelled(atoms: Atoms) -> Atoms:
    """A copy with EMT energy, forces and stress frozen as results."""
    atoms.calc = EMT()
    out = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    stress = atoms.get_stress() if atoms.pbc.all() else None
    labels = dict(energy=atoms.get_potential_energy(), forces=atoms.get_forces())
    if stress is not None:
        labels["stress"] = stress
    out.calc = SinglePointCalculator(out, **labels)
    return out


def thermalize(atoms: Atoms, temperature_K: float, rng: np.random.Generator) -> None:
    """Maxwell-Boltzmann momenta at `temperature_K` drawn from `rng`: ASE >= 3.29's
    `thermalize_momenta`, else `MaxwellBoltzmannDistribution` (deprecated in 3.29, where it
    calls `thermalize_momenta` with the same arguments: the same draws, so the same demo)."""
    try:
        from ase.md.velocitydistribution import thermalize_momenta
    except ImportError:  # ASE < 3.29
        from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
        MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_K, rng=rng)
        return
    thermalize_momenta(atoms, temperature_K, rng=rng)


def md_snapshots(atoms: Atoms, temperature: float, count: int, every: int, seed: int) -> List[Atoms]:
    """`count` labelled snapshots, `every` 2-fs Langevin steps apart, after 20 steps of warm-up."""
    atoms = atoms.copy()
    atoms.calc = EMT()
    rng = np.random.default_rng(seed)
    thermalize(atoms, temperature, rng)
    dynamics = Langevin(atoms, 2.0 * units.fs, temperature_K=temperature, friction=0.05, rng=rng, fixcm=False)
    dynamics.run(20)
    snapshots = []
    for _ in range(count):
        dynamics.run(every)
        snapshots.append(_labelled(atoms))
    return snapshots


def strained(atoms: Atoms, strain: np.ndarray) -> Atoms:
    out = atoms.copy()
    out.set_cell(atoms.cell.array @ (np.eye(3) + strain), scale_atoms=True)
    return out


def training_pool(seed: int = 0) -> List[Atoms]:
    """108 labelled structures, 3,252 atoms (see module docstring)."""
    rng = np.random.default_rng(seed)
    cell32 = bulk("Cu", "fcc", a=LATTICE, cubic=True).repeat(2)
    pool: List[Atoms] = []
    for k, temperature in enumerate((300, 600, 900, 1200)):
        for strain in (-0.02, 0.0, 0.02):
            pool += md_snapshots(strained(cell32, np.eye(3) * strain), temperature, 6, 10, seed + 10 * k + int(100 * strain) + 3)
    for k in range(12):
        shear = np.zeros((3, 3))
        shear[0, 1] = shear[1, 0] = rng.uniform(-0.03, 0.03)
        pool += md_snapshots(strained(cell32, shear + np.eye(3) * rng.uniform(-0.02, 0.02)), 700, 1, 5, seed + 500 + k)
    vacancy = cell32.copy()
    del vacancy[0]
    pool += md_snapshots(vacancy, 700, 12, 10, seed + 700)
    slab = fcc111("Cu", size=(2, 2, 4), a=LATTICE, vacuum=6.0, periodic=True)
    pool += md_snapshots(slab, 600, 12, 10, seed + 800)
    return pool


def test_set(seed: int = 1000) -> List[Atoms]:
    """108-atom bulk at 800 K, independent of the training pool."""
    return md_snapshots(bulk("Cu", "fcc", a=LATTICE, cubic=True).repeat(3), 800, 10, 15, seed)
