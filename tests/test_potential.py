"""The potential: derivatives, invariances, periodic images, engine lists, errors.
Model tests run eager, scripted and saved-then-loaded (`model_variants`)."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.neighborlist import neighbor_list as ase_neighbor_list

from bpnn_ts import keys

from helpers import TOL, evaluate, triclinic_water, water_box

VARIANTS = ["eager", "scripted", "loaded"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_variants_agree(model_variants, variant):
    atoms = triclinic_water()
    reference = evaluate(model_variants["eager"], atoms, compute_virial=True)
    out = evaluate(model_variants[variant], atoms, compute_virial=True)
    for key in (keys.ENERGY, keys.ENERGIES, keys.FORCES, keys.VIRIAL):
        assert torch.allclose(out[key], reference[key], atol=TOL["exact"], rtol=0), key


@pytest.mark.parametrize("variant", ["eager", "loaded"])
def test_forces_match_finite_differences(model_variants, variant):
    model = model_variants[variant]
    atoms = triclinic_water(1)
    forces = evaluate(model, atoms)[keys.FORCES].numpy()
    h = 1e-5
    worst = 0.0
    for atom in range(0, len(atoms), 3):
        for axis in range(3):
            energies = []
            for sign in (1, -1):
                moved = atoms.copy()
                moved.positions[atom, axis] += sign * h
                energies.append(float(evaluate(model, moved, compute_forces=False)[keys.ENERGY]))
            worst = max(worst, abs(-(energies[0] - energies[1]) / (2 * h) - forces[atom, axis]))
    assert worst < TOL["fd_force"]


def test_stress_matches_strain_derivative(water_model):
    atoms = triclinic_water(2)
    virial = evaluate(water_model, atoms, compute_virial=True)[keys.VIRIAL].numpy()
    stress = -virial / atoms.get_volume()
    h = 1e-6
    for a in range(3):
        for b in range(3):
            energies = []
            for sign in (1, -1):
                strain = np.eye(3)
                strain[a, b] += sign * h
                deformed = atoms.copy()
                deformed.set_cell(atoms.cell.array @ strain, scale_atoms=True)
                energies.append(float(evaluate(water_model, deformed, compute_forces=False)[keys.ENERGY]))
            derivative = (energies[0] - energies[1]) / (2 * h) / atoms.get_volume()
            assert abs(derivative - stress[a, b]) < TOL["fd_stress"], (a, b)


def test_far_apart_fragments_add_up(water_model):
    a = water_box(2, box=5.0, seed=6)
    a.pbc = False
    b = water_box(3, box=5.0, seed=7)
    b.pbc = False
    both = a + b.copy()
    both.positions[len(a):] += [40.0, 0.0, 0.0]
    total = sum(float(evaluate(water_model, x)[keys.ENERGY]) for x in (a, b))
    assert abs(float(evaluate(water_model, both)[keys.ENERGY]) - total) < TOL["runtime"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_single_atom_and_isolated_atoms(model_variants, variant):
    model = model_variants[variant]
    lonely = Atoms("O", positions=[[0, 0, 0]])
    out = evaluate(model, lonely)
    assert out[keys.FORCES].shape == (1, 3) and float(out[keys.FORCES].abs().max()) == 0.0
    periodic = Atoms("H", cell=np.eye(3) * 2.0, pbc=True)  # sees only its own images
    out = evaluate(model, periodic, compute_virial=True)
    assert np.allclose(out[keys.FORCES].numpy(), 0.0, atol=TOL["exact"])
    empty = evaluate(model, Atoms())
    assert float(empty[keys.ENERGY]) == 0.0 and empty[keys.FORCES].shape == (0, 3)


@pytest.mark.parametrize("variant", VARIANTS)
def test_engine_neighbour_list_with_ghosts(model_variants, variant):
    """An engine gives local atoms + ghost copies and a plain list (zero shifts)."""
    model = model_variants[variant]
    atoms = triclinic_water(8)
    atoms.wrap()
    reference = evaluate(model, atoms, compute_virial=True)
    cutoff = model.cutoff() + 0.5  # engines add a skin
    i, j, shifts = ase_neighbor_list("ijS", atoms, cutoff)
    image_key = {}
    ghosts_pos, ghosts_z, ghost_of = [], [], []
    j_local = np.empty_like(j)
    for p, (jj, s) in enumerate(zip(j, map(tuple, shifts))):
        if s == (0, 0, 0):
            j_local[p] = jj
            continue
        if (jj, s) not in image_key:
            image_key[(jj, s)] = len(atoms) + len(ghosts_pos)
            ghosts_pos.append(atoms.positions[jj] + np.array(s) @ atoms.cell.array)
            ghosts_z.append(atoms.numbers[jj])
            ghost_of.append(jj)
        j_local[p] = image_key[(jj, s)]
    positions = np.vstack([atoms.positions, np.array(ghosts_pos).reshape(-1, 3)])
    numbers = np.concatenate([atoms.numbers, ghosts_z]).astype(int)
    out = model(torch.tensor(positions), torch.tensor(numbers), None, None,
                torch.tensor(np.stack([i, j_local])), None, len(atoms), True, True)
    assert abs(float(out[keys.ENERGY] - reference[keys.ENERGY])) < TOL["runtime"]
    folded = out[keys.FORCES][: len(atoms)].clone()
    folded.index_add_(0, torch.tensor(ghost_of, dtype=torch.long), out[keys.FORCES][len(atoms):])
    assert torch.allclose(folded, reference[keys.FORCES], atol=TOL["runtime"])
    assert torch.allclose(out[keys.VIRIAL], reference[keys.VIRIAL], atol=TOL["runtime"])
    assert out[keys.ENERGIES].shape == (len(atoms),)
    # Per-atom virials: ghost parts folded onto their owners equal the plain list's, and sum to W.
    atomic = out[keys.ATOMIC_VIRIALS]
    assert atomic.shape == (len(positions), 3, 3)
    folded = atomic[: len(atoms)].clone()
    folded.index_add_(0, torch.tensor(ghost_of, dtype=torch.long), atomic[len(atoms):])
    assert torch.allclose(folded, reference[keys.ATOMIC_VIRIALS], atol=TOL["runtime"])
    assert torch.allclose(reference[keys.ATOMIC_VIRIALS].sum(0), reference[keys.VIRIAL], atol=TOL["runtime"])


def test_float32_model_is_close_to_float64(water_model):
    import copy
    single = copy.deepcopy(water_model).float()
    atoms = triclinic_water()
    out32 = single(torch.tensor(atoms.positions, dtype=torch.float32), torch.tensor(atoms.numbers),
                   torch.tensor(atoms.cell.array, dtype=torch.float32), torch.tensor(atoms.pbc))
    out64 = evaluate(water_model, atoms)
    assert out32[keys.FORCES].dtype == torch.float32 and single.dtype_name() == "float32"
    assert abs(float(out32[keys.ENERGY]) - float(out64[keys.ENERGY])) < TOL["float32"]
    assert np.allclose(out32[keys.FORCES].double().numpy(), out64[keys.FORCES].numpy(), atol=TOL["float32"])


@pytest.mark.parametrize("variant", VARIANTS)
def test_bad_input_errors(model_variants, variant):
    model = model_variants[variant]
    error = (ValueError, torch.jit.Error)
    atoms = water_box(2, seed=9)
    z = torch.tensor(atoms.numbers)
    pos = torch.tensor(atoms.positions)
    cell = torch.tensor(atoms.cell.array)
    pbc = torch.tensor(atoms.pbc)
    with pytest.raises(error, match="element Cu \\(atomic number 29\\) is not in this model; supported elements: H, O"):
        model(pos, torch.tensor([29] + list(atoms.numbers[1:])), cell, pbc)
    with pytest.raises(error, match="`positions` contain NaN or inf"):
        bad = pos.clone()
        bad[1, 2] = float("nan")
        model(bad, z, cell, pbc)
    with pytest.raises(error, match="`positions` must have shape \\(n_atoms, 3\\)"):
        model(pos[:, :2], z, cell, pbc)
    with pytest.raises(error, match="`atomic_numbers` must have shape"):
        model(pos, z[:-1], cell, pbc)
    with pytest.raises(error, match="zero volume"):
        model(pos, z, torch.tensor([[3.0, 0, 0], [3.0, 0, 0], [0, 0, 3.0]], dtype=torch.float64), pbc)
    with pytest.raises(error, match="overlap"):
        twin = pos.clone()
        twin[1] = twin[0]
        model(twin, z, cell, pbc)
    with pytest.raises(error, match="`pbc` must be a bool tensor"):
        model(pos, z, cell, torch.ones(3))
    with pytest.raises(error, match="`pairs` hold atom indices outside"):
        model(pos, z, cell, pbc, torch.tensor([[0], [len(atoms) + 3]]))


@pytest.mark.parametrize("cutoff_type", range(9))
def test_analytic_forces_equal_autograd_oracle(cutoff_type):
    """Analytic descriptor derivatives (the default) against autograd through the
    descriptor, for every cutoff type, with radial, wide and narrow functions."""
    from helpers import mixed_model
    model = mixed_model(cutoff_type, 0.3 if cutoff_type in (1, 4, 6, 8) else 0.0)
    atoms = triclinic_water(cutoff_type)
    analytic = evaluate(model, atoms, compute_virial=True)
    model.potential.analytic_forces = False
    oracle = evaluate(model, atoms, compute_virial=True)
    scale = float(oracle[keys.FORCES].abs().max())
    assert scale > 0.1
    assert abs(float(analytic[keys.ENERGY] - oracle[keys.ENERGY])) < TOL["exact"] * len(atoms)
    assert torch.allclose(analytic[keys.FORCES], oracle[keys.FORCES], atol=TOL["exact"] * scale, rtol=0)
    assert torch.allclose(analytic[keys.VIRIAL], oracle[keys.VIRIAL], atol=TOL["summation"] * scale, rtol=0)


def test_analytic_force_loss_gradient_equals_autograd_oracle(water_model):
    """Training differentiates forces w.r.t. the weights: both force paths give
    the same parameter gradient of a force loss."""
    import copy
    atoms = triclinic_water(4)
    gradients = []
    for analytic in (True, False):
        model = copy.deepcopy(water_model).train()
        model.potential.analytic_forces = analytic
        out = evaluate(model, atoms)
        loss = (out[keys.FORCES] ** 2).sum() + out[keys.ENERGY] ** 2
        gradients.append(torch.autograd.grad(loss, list(model.parameters())))
    for a, b in zip(*gradients):
        assert torch.allclose(a, b, atol=TOL["runtime"], rtol=TOL["extensive"])
