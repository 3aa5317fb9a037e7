"""The neighbour search on the GPU (bpnn_ts/native/cuda/: cell_list_device.h, neighbor_list_device.h,
neighbor_list_cuda.cu). Without a GPU: its host emulation (torch.ops.bpnn_emulation, the same
device code run one loop iteration per would-be CUDA thread; a test-only library of the CMake
build, helpers.emulation_ops) gives exactly the CPU ops' lists:
the same pairs, shifts and order. With one (skipped here otherwise): the CUDA ops do too, and a
model evaluated on CUDA gives the CPU numbers."""

import numpy as np
import pytest
import torch
from ase.build import bulk, molecule
from hypothesis import given, settings
from hypothesis import strategies as st

from bpnn_ts import keys
from bpnn_ts.model.neighbors import NativePairSearch, _periodic_images, neighbor_list
from bpnn_ts.native import load_error, load_ops

from helpers import TOL, emulation_ops, mixed_model, triclinic_water, water_box


def needs_cuda(test):
    """Marked `gpu`, skipped without a CUDA device."""
    return pytest.mark.gpu(pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")(test))


SKEWED = [[5.0, 0.0, 0.0], [4.6, 3.1, 0.0], [-3.9, 2.8, 3.3]]  # strongly skewed triclinic cell
PBC_PATTERNS = [[bool(bits >> k & 1) for k in range(3)] for bits in range(8)]
PBC_IDS = ["".join("TF"[not p] for p in pbc) for pbc in PBC_PATTERNS]


@pytest.fixture(scope="module", autouse=True)
def ops():
    if not load_ops():
        pytest.skip(f"C++ kernels cannot be built here: {load_error()}")


@pytest.fixture(scope="module")
def emulation():
    """torch.ops.bpnn_emulation (the CMake build's test-only library; skipped without it)."""
    return emulation_ops()


def random_positions(n_atoms, low, high, seed):
    return torch.tensor(np.random.default_rng(seed).uniform(low, high, (n_atoms, 3)))


def cases():
    """(name, positions, cell, pbc, cutoff, fewest pairs): every kind of input the search meets."""
    eye = torch.eye(3, dtype=torch.float64)
    zero = torch.zeros(3, 3, dtype=torch.float64)
    skewed = torch.tensor(SKEWED, dtype=torch.float64)
    yield "benzene", torch.tensor(molecule("C6H6").positions), zero, [False] * 3, 3.0, 60
    yield "random molecule", random_positions(80, 0.0, 9.0, 1), zero, [False] * 3, 3.5, 300
    cubic = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((3, 3, 3))
    cubic.rattle(0.1, seed=2)
    yield "cubic periodic", torch.tensor(cubic.positions), torch.tensor(cubic.cell.array), [True] * 3, 5.0, 108 * 42
    for pbc, name in zip(PBC_PATTERNS, PBC_IDS):
        yield f"triclinic {name}", random_positions(30, -3.0, 8.0, 3), skewed, pbc, 4.0, 30
    small = torch.tensor([[2.5, 0.0, 0.0], [1.9, 2.2, 0.0], [-1.1, 0.8, 2.4]], dtype=torch.float64)
    yield "cell smaller than the cutoff", random_positions(5, 0.0, 2.5, 4), small, [True] * 3, 7.0, 5 * 20
    flat = small.clone()
    flat[2] = 0.0
    yield "cell smaller than the cutoff, TTF", random_positions(5, 0.0, 2.5, 5), flat, [True, True, False], 7.0, 5 * 10
    water = triclinic_water(seed=1)
    yield "water, atoms outside the cell", torch.tensor(water.positions), torch.tensor(water.cell.array), [True] * 3, 6.0, 18 * 5
    yield "one atom, periodic", torch.tensor([[0.3, -0.2, 0.1]], dtype=torch.float64), eye * 2.5, [True] * 3, 5.5, 32
    yield "one atom, molecule", torch.tensor([[0.3, -0.2, 0.1]], dtype=torch.float64), zero, [False] * 3, 5.5, 0
    yield "no atoms", torch.zeros(0, 3, dtype=torch.float64), eye * 2.5, [True] * 3, 5.5, 0
    grid = torch.cartesian_prod(*[torch.arange(4, dtype=torch.float64) * 2.0] * 3)  # spacing 2 Å from 0 to 6 Å
    yield "lattice on bin and cell boundaries", grid, eye * 8.0, [True] * 3, 4.0, 64 * 18
    yield "lattice on boundaries, molecule", grid, zero, [False] * 3, 4.0, 200
    faces = torch.tensor([[0.0, 0.0, 0.0], [5.0, 5.0, 5.0], [5.0, 0.0, 2.5], [0.0, 2.5, 5.0], [2.5, 5.0, 0.0]],
                         dtype=torch.float64)  # fractional coordinates 0 and exactly 1 (wrapped to 0)
    yield "atoms on the cell faces", faces, eye * 5.0, [True] * 3, 5.0, 5 * 6
    yield "dense: 300 atoms in one bin", random_positions(300, 0.0, 1.0, 6), zero, [False] * 3, 5.0, 300 * 299
    yield "dense, periodic", random_positions(200, 0.0, 1.5, 7), eye * 3.0, [True] * 3, 2.0, 200 * 199
    spread = torch.cat([random_positions(20, -5e4, 5e4, 8), random_positions(30, 0.0, 4.0, 9)])
    yield "far apart atoms (coarse bins)", spread, zero, [False] * 3, 3.0, 30
    far = random_positions(12, -4.0, 3.0, 10)
    moves = torch.tensor([[-37, 12, -251], [0, -1, -2], [64, -7, 3]] * 4, dtype=torch.float64)
    yield "atoms hundreds of cells away", far + moves @ skewed, skewed, [True] * 3, 5.5, 12


CASES = list(cases())
IDS = [case[0] for case in CASES]


def assert_identical(found, expected):
    assert len(found) == len(expected)
    for ours, theirs in zip(found, expected):
        assert ours.dtype == theirs.dtype == torch.int64 and ours.device == theirs.device
        assert torch.equal(ours, theirs)


@pytest.mark.parametrize("name,positions,cell,pbc,cutoff,fewest", CASES, ids=IDS)
def test_emulated_neighbor_list_is_the_cpu_op(emulation, name, positions, cell, pbc, cutoff, fewest):
    pbc = torch.tensor(pbc)
    expected = torch.ops.bpnn.neighbor_list(positions, cell, pbc, cutoff)
    assert expected[0].shape[1] >= fewest  # not empty against empty
    assert_identical(emulation.neighbor_list(positions, cell, pbc, cutoff), expected)
    assert_identical(emulation.neighbor_list(positions.float(), cell.float(), pbc, cutoff),
                     torch.ops.bpnn.neighbor_list(positions.float(), cell.float(), pbc, cutoff))


@pytest.mark.parametrize("name,positions,cell,pbc,cutoff,fewest", CASES, ids=IDS)
def test_emulated_cell_list_is_the_cpu_op(emulation, name, positions, cell, pbc, cutoff, fewest):
    """On the points the TorchScript files build (atoms and images, torch side), and on half of
    them as centres."""
    if positions.shape[0] == 0:
        points, n_atoms = torch.zeros(0, 3, dtype=torch.float64), 0
    else:
        points = _periodic_images(positions, cell, pbc, cutoff)[0]
        n_atoms = positions.shape[0]
    for n_centres in (n_atoms, n_atoms // 2):
        expected = torch.ops.bpnn.cell_list(points, n_centres, cutoff)
        assert_identical(emulation.cell_list(points, n_centres, cutoff), expected)


def test_the_order_is_compared_not_only_the_pairs(emulation):
    """Within a centre the CPU order is the cell list's, not j ascending: equal order is a real check."""
    positions, cell, pbc, cutoff = CASES[IDS.index("random molecule")][1:5]
    pairs, _ = emulation.neighbor_list(positions, cell, torch.tensor(pbc), cutoff)
    key = pairs[0] * positions.shape[0] + pairs[1]
    assert not torch.equal(key, torch.sort(key).values)
    assert torch.equal(pairs[0], torch.sort(pairs[0]).values)  # grouped by centre, ascending


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n_atoms=st.integers(1, 40), pbc=st.lists(st.booleans(), min_size=3, max_size=3),
       cutoff=st.floats(0.5, 9.0), spread=st.floats(0.2, 3.0))
def test_emulation_random_systems(emulation, seed, n_atoms, pbc, cutoff, spread):
    """Random sheared cells of 2-8 Å, atoms from inside to `spread` cells outside them."""
    rng = np.random.default_rng(seed)
    cell = np.diag(rng.uniform(2.0, 8.0, 3)) + np.tril(rng.uniform(-2.0, 2.0, (3, 3)), -1)
    positions = torch.tensor(rng.uniform(-spread, spread, (n_atoms, 3)) @ cell)
    args = (positions, torch.tensor(cell), torch.tensor(pbc), cutoff)
    assert_identical(emulation.neighbor_list(*args), torch.ops.bpnn.neighbor_list(*args))


CAPACITY_CASES = [case for case in CASES if case[0] in ("random molecule", "cubic periodic", "no atoms")]


def assert_capacity_list(found, expected, capacity):
    """cell_list_capacity's [centres, neighbours, n_pairs] against cell_list's [centres, neighbours]."""
    n_pairs = expected[0].shape[0]
    kept = min(n_pairs, capacity)
    assert [t.shape for t in found] == [(capacity,), (capacity,), (1,)] and all(t.dtype == torch.int64 for t in found)
    assert int(found[2]) == n_pairs
    for ours, theirs in zip(found[:2], expected):
        assert torch.equal(ours[:kept], theirs[:kept])
        assert bool((ours[kept:] == -1).all())


CAPACITIES = {"more": lambda n: n + 7, "exact": lambda n: n, "one short": lambda n: max(n - 1, 0),
              "a third": lambda n: n // 3, "zero": lambda n: 0}


@pytest.mark.parametrize("rule", CAPACITIES)
@pytest.mark.parametrize("name,positions,cell,pbc,cutoff,fewest", CAPACITY_CASES, ids=[c[0] for c in CAPACITY_CASES])
def test_cell_list_capacity(name, positions, cell, pbc, cutoff, fewest, rule):
    """Outputs of a given size (CUDA graphs): the list's first rows, -1 after it, and its length
    even when it does not fit."""
    points = _periodic_images(positions, cell, pbc, cutoff)[0] if positions.shape[0] else positions
    expected = torch.ops.bpnn.cell_list(points, positions.shape[0], cutoff)
    capacity = CAPACITIES[rule](expected[0].shape[0])
    found = torch.ops.bpnn.cell_list_capacity(points, positions.shape[0], cutoff, capacity)
    assert_capacity_list(found, expected, capacity)


def test_emulation_raises_the_cpu_errors(emulation):
    cell, pbc = torch.eye(3, dtype=torch.float64) * 5.0, torch.ones(3, dtype=torch.bool)
    nan = torch.tensor([[0.0, 0, 0], [float("nan"), 0, 0]], dtype=torch.float64)
    with pytest.raises(ValueError, match=r"`positions` must be finite, got \[nan, 0, 0\] in row 1"):
        emulation.neighbor_list(nan, cell, pbc, 2.0)
    with pytest.raises(ValueError, match=r"`positions` must be finite, got \[nan, 0, 0\] in row 1"):
        emulation.neighbor_list(nan, cell, torch.zeros(3, dtype=torch.bool), 2.0)
    huge = torch.tensor([[0.0, 0, 0], [1e17, 0, 0]], dtype=torch.float64)
    with pytest.raises(ValueError, match="`positions` row 1 lies 2e\\+16 cells away"):
        emulation.neighbor_list(huge, cell, pbc, 2.0)
    with pytest.raises(ValueError, match="the cell is far too small for the cutoff"):
        emulation.neighbor_list(nan[:1], cell * 1e-3, pbc, 4.0)
    with pytest.raises(ValueError, match="`cell` has zero volume along its periodic axes"):
        flat = torch.tensor([[3.0, 0, 0], [6.0, 0, 0], [0, 0, 3.0]], dtype=torch.float64)
        emulation.neighbor_list(nan[:1], flat, pbc, 2.0)
    with pytest.raises(ValueError, match="`cell` row 2 is zero"):
        emulation.neighbor_list(nan[:1], torch.diag(torch.tensor([3.0, 3.0, 0.0])).double(), pbc, 2.0)
    with pytest.raises(RuntimeError, match=r"`pbc` must be a bool \(3,\) tensor"):
        emulation.neighbor_list(nan[:1], cell, pbc.long(), 2.0)


# ---- on a CUDA device ----

def cuda(tensor):
    return tensor.to("cuda")


@needs_cuda
def test_the_library_has_cuda_kernels():
    assert torch.ops.bpnn.cuda_kernels()
    for op in ("cell_list", "neighbor_list"):
        assert torch._C._dispatch_has_kernel_for_dispatch_key(f"bpnn::{op}", "CUDA")


@needs_cuda
@pytest.mark.parametrize("name,positions,cell,pbc,cutoff,fewest", CASES, ids=IDS)
def test_cuda_neighbor_list_is_the_cpu_op(name, positions, cell, pbc, cutoff, fewest):
    pbc = torch.tensor(pbc)
    expected = [cuda(t) for t in torch.ops.bpnn.neighbor_list(positions, cell, pbc, cutoff)]
    assert_identical(torch.ops.bpnn.neighbor_list(cuda(positions), cuda(cell), cuda(pbc), cutoff), expected)
    assert_identical(torch.ops.bpnn.neighbor_list(cuda(positions), cell, pbc, cutoff), expected)  # cell, pbc on the CPU
    expected = [cuda(t) for t in torch.ops.bpnn.neighbor_list(positions.float(), cell.float(), pbc, cutoff)]
    assert_identical(torch.ops.bpnn.neighbor_list(cuda(positions.float()), cuda(cell.float()), cuda(pbc), cutoff), expected)


@needs_cuda
@pytest.mark.parametrize("name,positions,cell,pbc,cutoff,fewest", CASES, ids=IDS)
def test_cuda_cell_list_is_the_cpu_op(name, positions, cell, pbc, cutoff, fewest):
    points = _periodic_images(positions, cell, pbc, cutoff)[0] if positions.shape[0] else positions
    expected = [cuda(t) for t in torch.ops.bpnn.cell_list(points, positions.shape[0], cutoff)]
    assert_identical(torch.ops.bpnn.cell_list(cuda(points), positions.shape[0], cutoff), expected)


@needs_cuda
@pytest.mark.parametrize("name,positions,cell,pbc,cutoff,fewest", CAPACITY_CASES, ids=[c[0] for c in CAPACITY_CASES])
def test_cuda_cell_list_capacity(name, positions, cell, pbc, cutoff, fewest):
    points = _periodic_images(positions, cell, pbc, cutoff)[0] if positions.shape[0] else positions
    expected = [cuda(t) for t in torch.ops.bpnn.cell_list(points, positions.shape[0], cutoff)]
    for capacity in (expected[0].shape[0] + 5, expected[0].shape[0] // 2):
        found = torch.ops.bpnn.cell_list_capacity(cuda(points), positions.shape[0], cutoff, capacity)
        assert all(t.device.type == "cuda" for t in found)
        assert_capacity_list(found, expected, capacity)


@needs_cuda
def test_cell_list_capacity_in_a_cuda_graph():
    """Captured once, replayed on new positions (copied into the captured input): each replay
    gives the CPU list of those positions."""
    water = water_box(32, box=9.0, seed=4)
    points = cuda(torch.tensor(water.positions))
    capacity = 32 * 3 * 200
    torch.ops.bpnn.cell_list_capacity(points, points.shape[0], 6.0, capacity)  # warm-up outside the graph
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        found = torch.ops.bpnn.cell_list_capacity(points, points.shape[0], 6.0, capacity)
    for seed in (5, 6):
        moved = torch.tensor(water_box(32, box=9.0, seed=seed).positions)
        points.copy_(cuda(moved))
        graph.replay()
        torch.cuda.synchronize()
        assert_capacity_list(found, [cuda(t) for t in torch.ops.bpnn.cell_list(moved, moved.shape[0], 6.0)], capacity)


@needs_cuda
def test_cuda_errors_are_the_cpu_errors():
    cell, pbc = torch.eye(3, dtype=torch.float64, device="cuda") * 5.0, torch.ones(3, dtype=torch.bool, device="cuda")
    nan = torch.tensor([[0.0, 0, 0], [float("nan"), 0, 0]], dtype=torch.float64, device="cuda")
    with pytest.raises(ValueError, match=r"`positions` must be finite, got \[nan, 0, 0\] in row 1"):
        torch.ops.bpnn.neighbor_list(nan, cell, pbc, 2.0)
    with pytest.raises(ValueError, match="the cell is far too small for the cutoff"):
        torch.ops.bpnn.neighbor_list(nan[:1], cell * 1e-3, pbc, 4.0)


@needs_cuda
@pytest.mark.parametrize("scripted", [False, True], ids=["eager", "scripted"])
def test_native_pair_search_runs_the_cuda_op(scripted):
    search = torch.jit.script(NativePairSearch()) if scripted else NativePairSearch()
    water = water_box(32, box=9.0, seed=3)
    args = (torch.tensor(water.positions), torch.tensor(water.cell.array), torch.tensor(water.pbc), 6.0)
    expected = neighbor_list(*args)
    found = search(*[cuda(a) if isinstance(a, torch.Tensor) else a for a in args])
    assert found[0].device.type == "cuda"
    assert_identical([t.cpu() for t in found], list(expected))


@needs_cuda
def test_model_on_cuda_gives_the_cpu_numbers():
    atoms = triclinic_water(seed=2)
    model = mixed_model()
    assert model.use_native_kernels(True)
    inputs = (torch.tensor(atoms.positions), torch.tensor(atoms.numbers), torch.tensor(atoms.cell.array),
              torch.tensor(atoms.pbc))
    cpu = model(*inputs, compute_virial=True)
    on_cuda = model.to("cuda")(*[cuda(t) for t in inputs], compute_virial=True)
    for key in (keys.ENERGY, keys.FORCES, keys.VIRIAL):
        assert torch.allclose(on_cuda[key].cpu(), cpu[key], rtol=0.0, atol=TOL["runtime"]), key
