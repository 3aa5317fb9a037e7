"""Symmetry functions from data (CUR / FPS over a candidate pool) and from other potentials
(n2p2 input.nn, model files): bpnn_ts.function_pool, bpnn_ts.function_selection and the
`symmetry_functions: {select: ...}` / `{from: ...}` config keys."""

import numpy as np
import pytest
import torch

from bpnn_ts import BPNNModel, ModelSpec, export, parse_model_config
from bpnn_ts.config import ConfigError, load_model_config
from bpnn_ts.function_pool import PoolOptions, candidate_pool
from bpnn_ts.function_selection import cur_select, fps_select, resolve_symmetry_functions, without_selection
from bpnn_ts.io.n2p2 import load_n2p2
from bpnn_ts.io.n2p2_data import read_input_data
from bpnn_ts.model.descriptors.params import AngularSF, RadialSF
from bpnn_ts.potential_sources import imported_scaling_statistics
from bpnn_ts.selection_config import split_budget

from helpers import N2P2_WATER, TOL, h2o_spec, needs_shared, ranged_model, water_box

SMALL_POOL = {"n_shifted": 6, "n_centred": 4, "n_angular_eta": 2, "zetas": [1, 4]}  # 68 candidates per element (H, O)


def reference_cur(matrix, n):
    """Iterative CUR written out on X itself: top right singular vector, orthogonalise, repeat."""
    residual, picked = matrix.astype(float).copy(), []
    for _ in range(n):
        scores = np.linalg.svd(residual, full_matrices=False)[2][0] ** 2
        scores[picked] = -1.0
        c = int(np.argmax(scores))
        picked.append(c)
        column = residual[:, c].copy()
        residual -= np.outer(column, column @ residual) / (column @ column)
    return picked


def dependent_matrix(seed=0):
    """50 samples of 5 independent columns, then a copy of column 0 and column 1 + column 2."""
    base = np.random.default_rng(seed).normal(size=(50, 5))
    return np.column_stack([base, base[:, 0], base[:, 1] + base[:, 2]])


def small_model(**overrides):
    data = {"elements": ["H", "O"], "cutoff": 4.0, "hidden_layers": [4],
            "symmetry_functions": {"select": 16, "pool": SMALL_POOL}}
    data.update(overrides)
    return data


@pytest.fixture(scope="module")
def boxes():
    return [water_box(6, seed=s) for s in range(3)]


# ---- the selections on synthetic matrices ----
def test_cur_picks_the_column_of_most_variance_first():
    columns = np.random.default_rng(1).normal(size=(200, 3)) * [1.0, 5.0, 2.0]
    assert cur_select(columns, 1) == [1]
    assert fps_select(columns, 1) == [1]


def test_cur_matches_the_written_out_algorithm_and_is_deterministic():
    matrix = np.random.default_rng(2).normal(size=(40, 12)) @ np.random.default_rng(3).normal(size=(12, 12))
    assert cur_select(matrix, 8) == reference_cur(matrix, 8) == cur_select(matrix, 8)


@pytest.mark.parametrize("select", [cur_select, fps_select])
def test_dependent_columns_are_not_picked_twice(select):
    matrix = dependent_matrix()
    picked = select(matrix, 5)
    assert len(set(picked)) == 5 and not {0, 5} <= set(picked)
    if select is cur_select:  # CUR sees linear dependence: never more than the rank
        assert np.linalg.matrix_rank(matrix[:, picked]) == 5
        assert sorted(cur_select(matrix, 7)) == sorted(picked)
    else:  # FPS sees duplicates only: the copy of column 0 is left out
        assert len(fps_select(matrix, 7)) == 6 and not {0, 5} <= set(fps_select(matrix, 7))


@pytest.mark.parametrize("select", [cur_select, fps_select])
def test_required_groups_get_one_pick_each(select):
    columns = np.random.default_rng(4).normal(size=(100, 6)) * [9.0, 8.0, 7.0, 6.0, 1.0, 0.5]
    free = select(columns, 3)
    assert 5 not in free
    picked = select(columns, 3, required=[[5], [4]])
    assert picked[0] == free[0] and set(picked[1:]) == {4, 5}  # free picks until the slots left are needed
    assert select(columns, 3, required=[[5], [4, 5]]).count(5) == 1  # one pick can serve two groups
    assert select(np.zeros((10, 3)), 2, required=[[2]]) == [2]  # a group with nothing to add still gets its pick


def test_budget_split_is_proportional_and_keeps_the_minimum():
    assert split_budget(57, {1: 256, 8: 256}, 2) == {1: 29, 8: 28}
    assert split_budget(10, {1: 100, 8: 10}, 2) == {1: 8, 8: 2}
    assert sum(split_budget(101, {1: 96, 6: 480, 8: 200}, 3).values()) == 101


# ---- the candidate pool ----
@pytest.mark.parametrize("elements", [[1, 8], [1, 6, 8], [29]])
def test_pool_covers_every_element_and_pair(elements):
    options = PoolOptions()
    pool = candidate_pool(elements, 6.0, options, r_lower=0.5)
    pairs = [(a, b) for i, a in enumerate(elements) for b in elements[i:]]
    for center in elements:
        functions = pool[center]
        assert len(functions) == len(set(functions)) == options.size(len(elements))
        for neighbor in elements:
            radial = [f for f in functions if isinstance(f, RadialSF) and f.neighbor == neighbor]
            assert len(radial) == 16 and all(f.r_s == 0.0 for f in radial)
            widths = np.sqrt(0.5 / np.array([f.eta for f in radial]))  # geometric, 0.75 r_lower .. 2 r_c
            assert widths[0] == pytest.approx(0.75 * 0.5) and widths[-1] == pytest.approx(2 * 6.0)
            assert np.allclose(widths[1:] / widths[:-1], (2 * 6.0 / (0.75 * 0.5)) ** (1 / 15))
        for pair in pairs:
            for narrow in (True, False):
                angular = [f for f in functions if isinstance(f, AngularSF) and f.neighbors == pair and f.narrow == narrow]
                assert len(angular) == 32 and {f.zeta for f in angular} == {1.0, 2.0, 4.0, 16.0}
                assert {f.lambda_ for f in angular} == {-1.0, 1.0}
        assert all(f.r_c == 6.0 for f in functions)
    assert options.size(2) == 224 and options.size(1) == 80 and options.size(3) == 432


def test_pool_of_0_3_shifted_and_linear_centred_grids():
    options = PoolOptions(n_shifted=16, centred_widths="linear")
    functions = candidate_pool([1, 8], 6.0, options, r_lower=0.5)[1]
    radial = [f for f in functions if isinstance(f, RadialSF) and f.neighbor == 8]
    shifted, centred = radial[:16], radial[16:]
    assert len(radial) == 32 and all(f.r_s > 0 for f in shifted[1:]) and all(f.r_s == 0 for f in centred)
    widths = np.sqrt(0.5 / np.array([f.eta for f in centred]))
    assert np.allclose(widths, 0.5 + 5.5 * np.arange(1, 17) / 16)
    assert options.size(2) == len(functions) == 256


# ---- {select: ...} end to end ----
@pytest.mark.parametrize("method", ["cur", "fps"])
def test_select_end_to_end(boxes, method):
    messages = []
    raw = small_model(symmetry_functions={"select": 16, "method": method, "pool": SMALL_POOL})
    resolved = resolve_symmetry_functions(raw, boxes, messages.append)
    assert resolved == resolve_symmetry_functions(raw, boxes, lambda _: None)  # deterministic
    assert raw["symmetry_functions"]["select"] == 16  # the input is left alone
    config = parse_model_config(resolved)
    assert len(config.functions) == 16
    for center in (1, 8):
        own = [f for f in config.functions if f.center == center]
        assert len(own) == 8 and len(set(own)) == 8
        assert {f.neighbor for f in own if isinstance(f, RadialSF)} == {1, 8}  # one radial per neighbour at least
    assert any("symmetry functions of H: 8 of 68 candidates by " + method in m for m in messages)
    config.build()


def test_select_per_element_and_the_minimum(boxes):
    resolved = resolve_symmetry_functions(small_model(symmetry_functions={"select": {"H": 2, "O": 5},
                                                                         "pool": SMALL_POOL}), boxes, print)
    functions = parse_model_config(resolved).functions
    h = [f for f in functions if f.center == 1]
    assert len(h) == 2 and {f.neighbor for f in h if isinstance(f, RadialSF)} == {1, 8}
    assert len([f for f in functions if f.center == 8]) == 5


def test_select_stops_where_the_data_do(boxes):
    """3 boxes of 6 waters: 18 O environments, so at most 17 independent centred columns of values."""
    messages = []
    resolved = resolve_symmetry_functions(small_model(symmetry_functions={"select": {"H": 2, "O": 40},
                                                                         "pool": SMALL_POOL, "features": "values",
                                                                         "method": "cur"}),
                                          boxes, messages.append)
    assert len([f for f in parse_model_config(resolved).functions if f.center == 8]) <= 17
    assert any("support no more independent functions" in m for m in messages)


def test_without_selection_checks_and_stands_in():
    assert without_selection(small_model())["symmetry_functions"] == "auto"
    assert without_selection({"elements": ["H"], "cutoff": 3.0}) == {"elements": ["H"], "cutoff": 3.0}
    with pytest.raises(ConfigError, match="`symmetry_functions.method` must be one of"):
        without_selection(small_model(symmetry_functions={"select": 16, "method": "pca"}))


@needs_shared
def test_select_on_the_n2p2_water_data():
    data = read_input_data(N2P2_WATER / "input.data", "bohr", "hartree")
    raw = {"elements": ["H", "O"], "cutoff": 6.35, "symmetry_functions": {"select": {"H": 27, "O": 30}, "pool": SMALL_POOL}}
    config = parse_model_config(resolve_symmetry_functions(raw, data, lambda _: None))
    assert [len(config.spec().functions_of(z)) for z in (1, 8)] == [27, 30]


# ---- {from: ...} ----
@needs_shared
@pytest.mark.parametrize("where", ["folder", "file"])
def test_from_n2p2_reproduces_its_functions(where):
    reference = load_n2p2(N2P2_WATER, "bohr", "hartree")
    spec = ModelSpec.from_json(reference.model_spec())
    source = N2P2_WATER if where == "folder" else N2P2_WATER / "input.nn"
    config = parse_model_config({"symmetry_functions": {"from": str(source), "length_unit": "bohr",
                                                        "energy_unit": "hartree", "atomic_energies": True,
                                                        "scaling": True}, "hidden_layers": [4]})
    assert config.elements == spec.atomic_numbers and config.cutoff_type == spec.cutoff_type == 2
    assert config.spec().functions == spec.functions
    assert [len(config.spec().functions_of(z)) for z in (1, 8)] == [27, 30]
    assert config.atomic_energies == pytest.approx(spec.atomic_energy_shift, rel=TOL["exact"])
    assert (config.scaling, config.scale_min, config.scale_max) == ("scalecenter", 0.0, 1.0)
    statistics = imported_scaling_statistics({"symmetry_functions": {"from": str(source)}})
    expected = reference.scaling_statistics()
    for z in (1, 8):
        assert torch.equal(statistics[z][:, 0], expected[z][:, 0])
        assert torch.equal(statistics[z][:, 2], expected[z][:, 2])


@needs_shared
def test_from_n2p2_in_the_wrong_units_is_refused():
    with pytest.raises(ConfigError, match="length unit is bohr.*`symmetry_functions.length_unit`"):
        parse_model_config({"symmetry_functions": {"from": str(N2P2_WATER)}})


def test_from_model_file_round_trip(tmp_path):
    model = ranged_model()
    path = export(model, tmp_path / "model.pt", native_kernels=False)
    spec = h2o_spec()
    (tmp_path / "m.yaml").write_text("elements: [H, O]\nhidden_layers: [3]\n"
                                     "symmetry_functions: {from: model.pt, atomic_energies: true, scaling: true}\n")
    config = load_model_config(tmp_path / "m.yaml")  # the path is relative to the YAML file
    assert config.spec().functions == spec.functions and config.cutoff == spec.cutoff
    assert config.atomic_energies == {1: -1.5, 8: -4.0} and config.hidden_layers == (3,)
    statistics = imported_scaling_statistics({"symmetry_functions": {"from": str(path)}})
    expected = model.scaling_statistics()
    for z in (1, 8):
        assert torch.equal(statistics[z][:, 1], expected[z][:, 1])
    resolved = resolve_symmetry_functions({"symmetry_functions": {"from": str(path)}}, [], print)
    assert parse_model_config(resolved).functions == spec.functions


# ---- mistakes ----
@pytest.mark.parametrize("spec,message", [
    ({"select": 3}, "`symmetry_functions.select` must be at least 4 \\(one radial function per centre and neighbour"),
    ({"select": 10000}, "`symmetry_functions.select` 10000 exceeds the candidate pool \\(224 per element\\)"),
    ({"select": {"H": 10, "C": 10}}, "`symmetry_functions.select` names elements not in `elements`: \\['C'\\]"),
    ({"select": {"H": 10}}, "must give a count for every element; missing \\['O'\\]"),
    ({"select": {"H": 1, "O": 10}}, "`symmetry_functions.select.H` must be an integer in \\[2, 224\\]"),
    ({"select": "many"}, "`symmetry_functions.select` must be a number of functions or a mapping"),
    ({"select": 20, "method": "pca"}, "`symmetry_functions.method` must be one of \\['cur', 'fps'\\], got 'pca'"),
    ({"select": 20, "pool": {"n_radial": 4}}, "`symmetry_functions.pool`: unknown keys \\['n_radial'\\]"),
    ({"select": 20, "pool": {"lambdas": [2]}}, "`symmetry_functions.pool`: `lambdas` must be -1 and/or \\+1"),
    ({"select": 20, "pool": {"centred_widths": "log"}},
     "`symmetry_functions.pool`: `centred_widths` must be one of \\['geometric', 'linear'\\], got 'log'"),
    ({"select": 20, "max_structures": 0}, "`symmetry_functions.max_structures` must be an integer >= 1"),
    ({"select": 20, "seed": 1}, "unknown keys \\['seed'\\] beside `select`"),
    ({"select": 20}, "chooses the functions from training data: `bpnn-ts train` resolves it"),
    ({"from": "no/such/input.nn"}, "`symmetry_functions.from`: .*no/such/input.nn does not exist"),
    ({"from": 3}, "`symmetry_functions.from` must be a path"),
    ({"from": "x", "units": "bohr"}, "unknown keys \\['units'\\] beside `from`"),
    ({"from": "x", "scaling": "yes"}, "`symmetry_functions.scaling` must be true or false"),
    ({"auto": {}, "select": 30}, "unknown keys \\['auto'\\] beside `select`"),
])
def test_errors_name_the_key(spec, message):
    with pytest.raises(ConfigError, match=message):
        parse_model_config({"elements": ["H", "O"], "cutoff": 5.0, "symmetry_functions": spec})


def test_from_errors(tmp_path):
    path = export(ranged_model(), tmp_path / "model.pt", native_kernels=False)
    source = {"from": str(path)}
    for change, message in [
        ({"symmetry_functions": dict(source, length_unit="bohr")}, "apply to n2p2 files; model files are in Å and eV"),
        ({"symmetry_functions": dict(source, atomic_energies=True), "atomic_energies": {"H": 1.0}},
         "takes the atomic energies from .*model.pt; remove `atomic_energies`"),
        ({"symmetry_functions": dict(source, scaling=True), "scaling": "sigma"}, "remove \\['scaling'\\]"),
        ({"symmetry_functions": source, "elements": ["H", "C"]}, "`elements` \\['H', 'C'\\] differ from those of"),
        ({"symmetry_functions": source, "cutoff_function": "poly2"}, "`cutoff_function` 'poly2' differs from that of"),
    ]:
        with pytest.raises(ConfigError, match=message):
            parse_model_config(change)
    (tmp_path / "input.nn").write_text("elements H\nfancy_keyword 1\n")
    with pytest.raises(ConfigError, match="is not an n2p2 input.nn bpnn_ts can read: .*unknown keyword `fancy_keyword`"):
        parse_model_config({"symmetry_functions": {"from": str(tmp_path)}})


def test_select_needs_structures():
    with pytest.raises(ConfigError, match="chooses functions from training data, but none was given"):
        resolve_symmetry_functions(small_model(), [], print)


def test_gradient_features_are_the_directional_derivatives(boxes):
    """The probe rows are dG/ds of each centre's functions along the seeded random displacements:
    their Gram matrix equals one computed here by central differences with another step."""
    from bpnn_ts import keys
    from bpnn_ts.function_selection import PROBES, _moments
    pool = candidate_pool([1, 8], 4.0, PoolOptions(**SMALL_POOL))
    atoms = boxes[0]
    moments = _moments(pool, [atoms], 1, 0.0, probes=PROBES)
    model = BPNNModel.from_spec(ModelSpec((1, 8), tuple(f for z in (1, 8) for f in pool[z]), (1,), ("tanh", "identity"), 1, 0.0))

    def descriptors(positions):
        with torch.no_grad():
            return model.eval().compute_descriptors(torch.tensor(positions), torch.tensor(atoms.numbers),
                                                    torch.tensor(np.asarray(atoms.cell.array)),
                                                    torch.tensor(atoms.pbc))[keys.DESCRIPTORS].numpy()

    for z in (1, 8):
        expected = np.zeros((len(pool[z]), len(pool[z])))
        for step in np.random.default_rng(0).standard_normal((PROBES, len(atoms), 3)):
            slope = (descriptors(atoms.positions + 1e-4 * step) - descriptors(atoms.positions - 1e-4 * step)) / 2e-4
            rows = slope[atoms.numbers == z, : len(pool[z])]
            expected += rows.T @ rows
        assert moments[z].probe_count == PROBES * int((atoms.numbers == z).sum())
        np.testing.assert_allclose(moments[z].probe_cross, expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())


@pytest.mark.parametrize("features", ["values", "gradients", "both"])
def test_every_feature_kind_selects_its_budget(features, boxes):
    resolved = resolve_symmetry_functions(small_model(symmetry_functions={"select": {"H": 8, "O": 8},
                                                                         "pool": SMALL_POOL, "features": features}),
                                          boxes, lambda _: None)
    assert [len(parse_model_config(resolved).spec().functions_of(z)) for z in (1, 8)] == [8, 8]
    with pytest.raises(ConfigError, match="`symmetry_functions.features` must be one of"):
        without_selection(small_model(symmetry_functions={"select": 16, "features": "forces"}))
