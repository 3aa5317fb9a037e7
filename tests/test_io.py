"""Data readers (bpnn_ts.io): n2p2 input.data through every entry point that takes data, by
file name and by `format`, with the file's units converted as documented."""

import numpy as np
import pytest
from ase.build import bulk, molecule
from ase.calculators.singlepoint import SinglePointCalculator

import bpnn_ts.io
from bpnn_ts.io import DataError, read_input_data, read_many, read_structures, write_input_data
from bpnn_ts.units import BOHR_IN_ANGSTROM, HARTREE_IN_EV

from helpers import TOL


def labelled_structures():
    """A 15 Å periodic Cu cell (atoms inside the cell) and a molecule, with energies and forces."""
    crystal = bulk("Cu", "fcc", a=3.75, cubic=True).repeat(4)
    crystal.positions += np.random.default_rng(0).uniform(0.0, 0.1, crystal.positions.shape)
    water = molecule("H2O")
    structures = []
    for atoms, energy in ((crystal, -225.5), (water, -14.25)):
        forces = np.random.default_rng(1).normal(size=(len(atoms), 3))
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
        structures.append(atoms)
    return structures


def assert_same(read, written, length=1.0, energy=1.0):
    """`read` equals `written` with lengths scaled by `length` and energies by `energy`."""
    assert len(read) == len(written)
    for a, b in zip(read, written):
        assert (a.numbers == b.numbers).all() and (a.pbc == b.pbc).all()
        np.testing.assert_allclose(a.positions, b.positions * length, rtol=TOL["exact"], atol=TOL["exact"])
        np.testing.assert_allclose(a.cell.array, b.cell.array * length, rtol=TOL["exact"], atol=TOL["exact"])
        expected = b.get_potential_energy() * energy
        assert abs(a.get_potential_energy() - expected) <= TOL["exact"] * abs(expected)
        np.testing.assert_allclose(a.get_forces(), b.get_forces() * energy / length, rtol=TOL["exact"],
                                   atol=TOL["exact"])


def test_the_package_exports_the_readers_and_writers():
    for name in ("read_structures", "read_many", "read_input_data", "write_input_data", "detect_format",
                 "check_structures", "DataError", "InputDataError", "FORMATS"):
        assert name in bpnn_ts.io.__all__ and hasattr(bpnn_ts.io, name), name
    assert "n2p2" in bpnn_ts.io.FORMATS


@pytest.mark.parametrize("name, format", [("input.data", None), ("train.data", None), ("water.txt", "n2p2")])
def test_read_structures_of_input_data_gives_what_was_written(tmp_path, name, format):
    """By name (input.data, *.data) or by format: the positions, cell, energy and forces written."""
    structures = labelled_structures()
    path = tmp_path / name
    write_input_data(path, structures)
    assert_same(read_structures(path, format), structures)
    assert_same(read_many([path, path], format), structures + structures)


def test_input_data_units_are_converted_as_documented(tmp_path):
    """A file in Bohr and Hartree, read with length_unit/energy_unit: Å and eV again; read as if
    in Å and eV: the numbers of the file, unconverted."""
    structures = labelled_structures()
    path = tmp_path / "input.data"
    write_input_data(path, structures, "bohr", "hartree")
    assert_same(read_structures(path, length_unit="bohr", energy_unit="hartree"), structures)
    raw = read_structures(path)
    assert_same(raw, structures, length=1.0 / BOHR_IN_ANGSTROM, energy=1.0 / HARTREE_IN_EV)
    assert np.allclose(raw[0].cell.lengths(), 15.0 / BOHR_IN_ANGSTROM)


def test_an_input_data_file_without_structures_is_refused(tmp_path):
    path = tmp_path / "input.data"
    path.write_text("\n")
    with pytest.raises(DataError, match="input.data: no structures in the file"):
        read_structures(path)
    assert read_input_data(path) == []


def test_training_config_and_eval_take_input_data_by_name(tmp_path, capsys):
    """`data.train` and `bpnn-ts eval` read input.data by its name, with the config's units."""
    import json

    from bpnn_ts import export, parse_model_config
    from bpnn_ts.cli import main
    from bpnn_ts.training import parse_train_config

    structures = labelled_structures()[:1]
    write_input_data(tmp_path / "input.data", structures, "bohr", "hartree")
    config = parse_train_config({"model": {"elements": ["Cu"], "cutoff": 4.0},
                                 "data": {"train": "input.data", "length_unit": "bohr", "energy_unit": "hartree"}},
                                base=tmp_path)
    d = config.data
    assert d.format is None
    assert_same(read_many(d.train, d.format, d.length_unit, d.energy_unit), structures)
    model = parse_model_config({"elements": ["Cu"], "cutoff": 4.0}).build().eval()
    export(model, tmp_path / "model.pt", native_kernels=False)
    assert main(["eval", str(tmp_path / "model.pt"), str(tmp_path / "input.data"), "--length-unit", "bohr",
                 "--energy-unit", "hartree", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["structures"] == 1 and metrics["atoms"] == len(structures[0])
