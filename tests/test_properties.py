"""Property-based checks (hypothesis) over random small periodic and non-periodic H/O systems:
forces = -grad E, invariances, supercell consistency, eager = scripted = fused kernels. Explicit
examples pin the cases the deterministic tests used to cover: a non-periodic cluster, a
displaced triclinic box, and a cell smaller than twice the cutoff."""

import numpy as np
import pytest
import torch
from ase import Atoms
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bpnn_ts import keys
from bpnn_ts.export import quiet_jit
from bpnn_ts.native import load_ops

from helpers import TOL, mixed_model, triclinic_water, water_box

SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
MODEL = mixed_model()
with quiet_jit():
    SCRIPTED = torch.jit.script(mixed_model())


@st.composite
def systems(draw, periodic=None):
    """4-10 H/O atoms at least 0.7 Å apart; periodic: a random (sheared) cell of 4.5-7 Å."""
    seed = draw(st.integers(0, 2 ** 31 - 1))
    rng = np.random.default_rng(seed)
    pbc = draw(st.booleans()) if periodic is None else periodic
    n = draw(st.integers(4, 10))
    cell = np.diag(rng.uniform(4.5, 7.0, 3)) + np.tril(rng.uniform(-1.0, 1.0, (3, 3)), -1)
    positions = []
    while len(positions) < n:
        trial = rng.uniform(0, 1, 3) @ cell if pbc else rng.uniform(0, 4.0, 3)
        if all(np.linalg.norm(trial - p) > 0.7 for p in positions):  # (images may be closer; fine)
            positions.append(trial)
    numbers = rng.choice([1, 8], n)
    return Atoms(numbers=numbers, positions=positions, cell=cell if pbc else None, pbc=pbc)


def energy_forces(model, atoms):
    out = model(torch.tensor(atoms.positions), torch.tensor(atoms.numbers),
                torch.tensor(atoms.cell.array), torch.tensor(atoms.pbc))
    return float(out[keys.ENERGY]), out[keys.FORCES].numpy()


@SETTINGS
@given(systems(), st.data())
def test_forces_are_minus_the_energy_gradient(atoms, data):
    _, forces = energy_forces(MODEL, atoms)
    i = data.draw(st.integers(0, len(atoms) - 1))
    axis = data.draw(st.integers(0, 2))
    h = 1e-5
    shifted = [atoms.copy() for _ in range(2)]
    shifted[0].positions[i, axis] += h
    shifted[1].positions[i, axis] -= h
    numeric = -(energy_forces(MODEL, shifted[0])[0] - energy_forces(MODEL, shifted[1])[0]) / (2 * h)
    assert abs(numeric - forces[i, axis]) <= TOL["fd_force"] * max(1.0, np.abs(forces).max())


def cluster() -> Atoms:
    atoms = water_box(5, box=6.0, seed=3)
    atoms.pbc = False
    return atoms


@SETTINGS
@given(systems(), st.integers(0, 2 ** 31 - 1))
@example(atoms=cluster(), seed=0)
@example(atoms=triclinic_water(4), seed=1)
def test_rotation_translation_permutation_invariance(atoms, seed):
    rng = np.random.default_rng(seed)
    energy, forces = energy_forces(MODEL, atoms)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    moved = atoms.copy()
    moved.positions = atoms.positions @ q.T + rng.normal(size=3)
    if atoms.pbc.all():
        moved.cell = atoms.cell.array @ q.T
    e2, f2 = energy_forces(MODEL, moved)
    assert abs(e2 - energy) <= TOL["runtime"] * max(1.0, abs(energy))
    assert np.allclose(f2, forces @ q.T, atol=TOL["extensive"])
    order = rng.permutation(len(atoms))
    e3, f3 = energy_forces(MODEL, atoms[order])
    assert abs(e3 - energy) <= TOL["runtime"] * max(1.0, abs(energy)) and np.allclose(f3, forces[order], atol=TOL["runtime"])


@SETTINGS
@given(systems(periodic=True), st.tuples(st.integers(1, 2), st.integers(1, 2), st.integers(1, 2)))
@example(atoms=water_box(2, box=4.2, seed=5), repeat=(2, 2, 2))  # a cell smaller than twice the 4 Å cutoff
def test_supercell_energy_is_extensive(atoms, repeat):
    energy, forces = energy_forces(MODEL, atoms)
    big_energy, big_forces = energy_forces(MODEL, atoms.repeat(repeat))
    copies = int(np.prod(repeat))
    assert abs(big_energy - copies * energy) <= TOL["extensive"] * max(1.0, abs(big_energy))
    assert np.allclose(big_forces[: len(atoms)], forces, atol=TOL["extensive"])


@SETTINGS
@given(systems())
def test_eager_scripted_and_fused_kernels_agree(atoms):
    energy, forces = energy_forces(MODEL, atoms)
    e_scripted, f_scripted = energy_forces(SCRIPTED, atoms)
    assert abs(e_scripted - energy) <= TOL["exact"] * max(1.0, abs(energy)) and np.allclose(f_scripted, forces, atol=TOL["exact"])
    if not load_ops():
        pytest.skip("C++ kernels cannot be built here")
    fused = mixed_model()
    fused.use_native_kernels(True)
    e_fused, f_fused = energy_forces(fused, atoms)
    assert abs(e_fused - energy) <= TOL["exact"] * max(1.0, abs(energy)) and np.allclose(f_fused, forces, atol=TOL["summation"])
