"""Units stated for an n2p2 potential that its files contradict are refused before anything is
computed (n2p2 files carry no unit keyword): unit comments, cutoffs, the closest atoms of the
training data beside the potential."""

import shutil

import pytest

from bpnn_ts import export, load
from bpnn_ts.cli import main
from bpnn_ts.io.n2p2 import load_n2p2
from bpnn_ts.io.n2p2_data import write_input_data
from bpnn_ts.io.n2p2_units import N2P2UnitError, check_units, stated_units
from bpnn_ts.io.n2p2_writer import write_n2p2

from helpers import N2P2_WATER, mixed_model, needs_shared, water_box


@pytest.fixture(scope="module")
def angstrom_potential(tmp_path_factory):
    """mixed_model written as an n2p2 potential in Å and eV (with the unit comments)."""
    folder = tmp_path_factory.mktemp("n2p2_angstrom")
    write_n2p2(load(export(mixed_model(), folder / "model.pt")), folder / "potential", "angstrom", "eV")
    return folder / "potential"


def without_comments(source, target, with_data: bool):
    """A copy of an n2p2 potential folder without unit comments (and with training data in Å)."""
    shutil.copytree(source, target)
    text = (target / "input.nn").read_text().splitlines()
    (target / "input.nn").write_text("\n".join(line for line in text if "unit" not in line.lower()) + "\n")
    if with_data:
        write_input_data(target / "input.data", [water_box(4, seed=1)])
    return target


def test_written_potentials_state_their_units(angstrom_potential):
    assert stated_units(angstrom_potential / "input.nn") == {"length": "angstrom", "energy": "eV"}
    load_n2p2(angstrom_potential)  # the right units: accepted


def test_units_that_contradict_the_comments_are_refused(angstrom_potential, tmp_path, capsys):
    with pytest.raises(N2P2UnitError, match="input.nn says its length unit is angstrom, but bohr was given; "
                                            "input.nn says its energy unit is eV, but hartree was given"):
        load_n2p2(angstrom_potential, "bohr", "hartree")
    assert main(["import-n2p2", str(angstrom_potential), "-o", str(tmp_path / "m.pt"), "--length-unit", "bohr",
                 "--energy-unit", "hartree"]) == 2
    assert "Are the units right?" in capsys.readouterr().err and not (tmp_path / "m.pt").exists()
    assert main(["import-n2p2", str(angstrom_potential), "-o", str(tmp_path / "m.pt"), "--length-unit", "bohr",
                 "--energy-unit", "hartree", "--no-unit-check"]) == 0


def test_training_data_closer_than_any_atoms_are_refused(angstrom_potential, tmp_path):
    """Without comments, an input.data beside the potential shows Å data read as Bohr: O-H bonds
    of 0.96 Å would be 0.51 Å."""
    folder = without_comments(angstrom_potential, tmp_path / "bare", with_data=True)
    with pytest.raises(N2P2UnitError, match="the closest atoms of its input.data would be 0.5.* Å apart"):
        load_n2p2(folder, "bohr", "hartree")
    load_n2p2(folder, "angstrom", "eV")
    load_n2p2(folder, "bohr", "hartree", check_units=False)


def test_implausible_cutoffs_are_refused(tmp_path):
    (tmp_path / "input.nn").write_text("elements H\n")
    with pytest.raises(N2P2UnitError, match="its largest cutoff would be 37.8 Å"):
        check_units(tmp_path, "angstrom", "eV", [37.8])
    with pytest.raises(N2P2UnitError, match="its largest cutoff would be 1.59 Å"):
        check_units(tmp_path, "bohr", "hartree", [3.0])
    check_units(tmp_path, "bohr", "hartree", [12.0])


@needs_shared
def test_the_reference_potential_in_bohr_and_hartree(tmp_path):
    assert stated_units(N2P2_WATER / "input.nn") == {"length": "bohr", "energy": "hartree"}
    with pytest.raises(N2P2UnitError, match="length unit is bohr, but angstrom was given"):
        load_n2p2(N2P2_WATER)
