"""n2p2 interoperability: the imported water potential reproduces n2p2's own outputs
(../shared/reference/n2p2), input.data reading/writing, refusals."""

import numpy as np
import pytest
import torch

from bpnn_ts import BPNNCalculator, BPNNModel, inspect, keys, load
from bpnn_ts.cli import main
from bpnn_ts.io.n2p2 import N2P2FormatError, load_n2p2, read_input_nn
from bpnn_ts.io.n2p2_data import InputDataError, read_input_data, write_input_data
from bpnn_ts.units import BOHR_IN_ANGSTROM, HARTREE_IN_EV

from helpers import N2P2_TRAIN, N2P2_WATER, TOL, evaluate, needs_shared

FORCE_UNIT = HARTREE_IN_EV / BOHR_IN_ANGSTROM
MEAN_ENERGY = -2.5521343547039809e01  # Ha, input.nn mean_energy


def close(ours, reference, scale=None):
    """|ours - reference| <= TOL * scale (scale: the reference's magnitude)."""
    ours, reference = np.asarray(ours), np.asarray(reference)
    scale = np.abs(reference).max() if scale is None else scale
    return np.abs(ours - reference).max() <= TOL["reference_rel"] * scale


@pytest.fixture(scope="module")
def water_potential():
    return load_n2p2(N2P2_WATER, "bohr", "hartree")


@pytest.fixture(scope="module")
def box():
    return read_input_data(N2P2_WATER / "input.data", "bohr", "hartree")[0]


@needs_shared
def test_sorted_function_order_matches_n2p2_log(water_potential):
    functions = read_input_nn(N2P2_WATER / "input.nn").functions
    h = [f for f in functions if f.center == 1]
    assert len(h) == 27 and len([f for f in functions if f.center == 8]) == 30
    # FORMAT.md: angular index 17 of H = `H 3 O O eta=.001 lambda=-1 zeta=4`
    f = h[16]
    assert (f.neighbors, f.eta, f.lambda_, f.zeta) == ((8, 8), 0.001, -1.0, 4.0)


@needs_shared
def test_symmetry_functions_match_g_values(water_potential, box):
    out = water_potential.compute_descriptors(torch.tensor(box.positions), torch.tensor(box.numbers),
                                              torch.tensor(box.cell.array), torch.tensor(box.pbc))
    table = np.loadtxt(N2P2_WATER / "nnp-predict" / "G_values.txt", usecols=(0, 2, 3, 4))
    atom, function = table[:, 0].astype(int) - 1, table[:, 1].astype(int) - 1
    assert len(table) == 360 * 30 + 720 * 27
    raw = out[keys.DESCRIPTORS].numpy()[atom, function]
    scaled = out[keys.SCALED_DESCRIPTORS].numpy()[atom, function]
    assert np.all(np.abs(raw - table[:, 2]) <= TOL["reference_rel"] * np.abs(table[:, 2]))
    assert close(scaled, table[:, 3])


@needs_shared
@pytest.mark.parametrize("route", ["model", "file", "calculator"])
def test_box_energy_atoms_and_forces(water_potential, box, route, tmp_path):
    e_ref = -2.7564547347815904e04
    f_ref = np.loadtxt(N2P2_WATER / "nnp-predict" / "nnforces.out", usecols=(5, 6, 7))
    atom_ref = np.loadtxt(N2P2_WATER / "nnp-predict" / "nnatoms.out", usecols=(6,))
    if route == "calculator":
        box = box.copy()
        box.calc = BPNNCalculator(water_potential)
        energy, energies, forces = box.get_potential_energy(), box.get_potential_energies(), box.get_forces()
    else:
        model = water_potential
        if route == "file":
            assert main(["import-n2p2", str(N2P2_WATER), "-o", str(tmp_path / "w.pt"),
                         "--length-unit", "bohr", "--energy-unit", "hartree"]) == 0
            model = load(tmp_path / "w.pt")
            assert inspect(tmp_path / "w.pt")["metadata"]["elements"] == ["H", "O"]
            assert model.uses_native_kernels()  # the fused C++ kernels against n2p2 itself
        out = evaluate(model, box)
        energy, energies, forces = (float(out[keys.ENERGY]), out[keys.ENERGIES].numpy(), out[keys.FORCES].numpy())
    assert abs(energy / HARTREE_IN_EV - e_ref) <= TOL["reference_rel"] * abs(e_ref)
    assert close(energies / HARTREE_IN_EV - MEAN_ENERGY, atom_ref)
    assert close(forces / FORCE_UNIT, f_ref)


@needs_shared
def test_dataset_structures(water_potential):
    structures = read_input_data(N2P2_TRAIN / "input.data", "bohr", "hartree")
    predicted = read_input_data(N2P2_WATER / "nnp-dataset" / "output.data", "bohr", "hartree")
    assert len(structures) == len(predicted) == 20
    for atoms, reference in zip(structures, predicted):
        out = evaluate(water_potential, atoms)
        e_ref = reference.get_potential_energy()
        assert abs(float(out[keys.ENERGY]) - e_ref) <= TOL["reference_rel"] * abs(e_ref)
        assert close(out[keys.FORCES].numpy(), reference.get_forces())


@needs_shared
def test_input_data_round_trip(tmp_path):
    structures = read_input_data(N2P2_TRAIN / "input.data", "bohr", "hartree")[:3]
    write_input_data(tmp_path / "input.data", structures, "bohr", "hartree")
    again = read_input_data(tmp_path / "input.data", "bohr", "hartree")
    for a, b in zip(structures, again):
        assert (a.numbers == b.numbers).all()
        assert np.allclose(a.positions, b.positions, atol=TOL["exact"]) and np.allclose(a.cell, b.cell, atol=TOL["exact"])
        assert abs(a.get_potential_energy() - b.get_potential_energy()) < TOL["extensive"]
        assert np.allclose(a.get_forces(), b.get_forces(), atol=TOL["exact"])


def test_input_data_non_periodic_and_errors(tmp_path):
    path = tmp_path / "input.data"
    path.write_text("begin\ncomment molecule\natom 0 0 0 O 0.1 0 1 2 3\natom 0.96 0 0 H -0.05 0 0 0 0\n"
                    "energy -14.5\ncharge 0\nend\n")
    (water,) = read_input_data(path)
    assert not water.pbc.any() and water.get_potential_energy() == -14.5
    assert np.allclose(water.get_initial_charges(), [0.1, -0.05]) and water.get_forces()[0].tolist() == [1, 2, 3]
    path.write_text(path.read_text().replace("end\n", ""))
    with pytest.raises(InputDataError, match="no `end`"):
        read_input_data(path)
    path.write_text("begin\natom 0 0 zero O 0 0 0 0 0\nend\n")
    with pytest.raises(InputDataError, match="input.data:2: cannot read"):
        read_input_data(path)


def test_unsupported_n2p2_keywords_are_refused(tmp_path):
    base = ("elements H\ncutoff_type 1\nglobal_hidden_layers_short 1\nglobal_nodes_short 2\n"
            "global_activation_short t l\nsymfunction_short H 2 H 0.1 0.0 5.0\n")
    (tmp_path / "input.nn").write_text(base + "normalize_nodes\n")
    with pytest.raises(N2P2FormatError, match="input.nn:7: `normalize_nodes`"):
        read_input_nn(tmp_path / "input.nn")
    (tmp_path / "input.nn").write_text(base + "symfunction_short H 12 H 0.1 0.0 5.0\n")
    with pytest.raises(N2P2FormatError, match="input.nn:7: symmetry function type 12 is not supported"):
        read_input_nn(tmp_path / "input.nn")
    (tmp_path / "input.nn").write_text(base + "mystery_option 3\n")
    with pytest.raises(N2P2FormatError, match="unknown keyword `mystery_option`"):
        read_input_nn(tmp_path / "input.nn")


def scaled_random_model():
    """H/O model whose own function order differs from n2p2's sorted order, with
    scalecenter statistics, an energy scale and reference energies."""
    from bpnn_ts import fit_scaling

    from helpers import h2o_spec, mixed_functions, randomized, water_box
    spec = h2o_spec(6, 0.2, functions=tuple(reversed(mixed_functions())), hidden_layers=(6, 5), scaling="scalecenter",
                    energy_scale=0.3)
    model = BPNNModel.from_spec(spec)
    randomized(model, seed=5)
    fit_scaling(model, [water_box(6, seed=s) for s in range(3)])
    return model.eval()


@pytest.mark.parametrize("units", [("angstrom", "eV"), ("bohr", "hartree")])
def test_write_n2p2_round_trip(units, tmp_path):
    from bpnn_ts.io.n2p2_writer import write_n2p2

    from helpers import water_box
    model = scaled_random_model()
    write_n2p2(model, tmp_path, *units)
    back = load_n2p2(tmp_path, *units)
    atoms = water_box(8, seed=11)
    a, b = evaluate(model, atoms), evaluate(back, atoms)
    assert abs(float(a[keys.ENERGY] - b[keys.ENERGY])) < TOL["exact"]
    assert torch.allclose(a[keys.FORCES], b[keys.FORCES], atol=TOL["roundoff"], rtol=0)


@needs_shared
def test_cli_water_import_export_import(tmp_path, box):
    assert main(["import-n2p2", str(N2P2_WATER), "-o", str(tmp_path / "w.pt"), "--length-unit", "bohr",
                 "--energy-unit", "hartree"]) == 0
    assert main(["export-n2p2", str(tmp_path / "w.pt"), "-o", str(tmp_path / "n2p2"), "--length-unit", "bohr",
                 "--energy-unit", "hartree"]) == 0
    first, second = load(tmp_path / "w.pt"), load_n2p2(tmp_path / "n2p2", "bohr", "hartree")
    small = box[:300]
    a, b = evaluate(first, small), evaluate(second, small)
    assert abs(float(a[keys.ENERGY] - b[keys.ENERGY])) <= TOL["exact"] * abs(float(a[keys.ENERGY]))
    assert torch.allclose(a[keys.FORCES], b[keys.FORCES], atol=TOL["exact"], rtol=0)


def test_cli_export_n2p2_takes_o_and_the_deprecated_positional_folder(tmp_path, capsys):
    """`bpnn-ts export-n2p2 MODEL -o DIR` like every other command; 0.2's `MODEL DIR` still
    works, with a deprecation message on stderr; no folder, or two, is a clear error."""
    from bpnn_ts import export
    model_file = export(scaled_random_model(), tmp_path / "m.pt", native_kernels=False)
    files = ("input.nn", "scaling.data", "weights.001.data", "weights.008.data")
    assert main(["export-n2p2", str(model_file), "-o", str(tmp_path / "new")]) == 0
    assert "deprecated" not in capsys.readouterr().err
    assert main(["export-n2p2", str(model_file), str(tmp_path / "old")]) == 0
    error = capsys.readouterr().err
    assert error.startswith("bpnn-ts export-n2p2: deprecated: the positional output folder") and \
        f"use `bpnn-ts export-n2p2 {model_file} -o {tmp_path / 'old'}`" in error
    for name in files:
        assert (tmp_path / "new" / name).read_text() == (tmp_path / "old" / name).read_text(), name
    assert main(["export-n2p2", str(model_file)]) == 2
    assert "error: the output folder is required: `bpnn-ts export-n2p2 MODEL -o DIR`" in capsys.readouterr().err
    assert main(["export-n2p2", str(model_file), str(tmp_path / "a"), "-o", str(tmp_path / "b")]) == 2
    assert "give the output folder once" in capsys.readouterr().err


def test_write_n2p2_refuses_what_n2p2_lacks(tmp_path):
    from bpnn_ts import parse_model_config
    from bpnn_ts.io.n2p2_writer import write_n2p2
    model = parse_model_config({"elements": ["Cu"], "cutoff": 4.0, "activation": "silu"}).build()
    with pytest.raises(ValueError, match="n2p2 has no activation \\['silu'"):
        write_n2p2(model, tmp_path)
