"""Training: data reading, config validation, the cached batch path, loss decrease,
exact resume after an interruption, clear errors with nothing written half-way."""

import copy

import ase.io
import numpy as np
import pytest
import torch
from ase.build import bulk

from bpnn_ts import keys
from bpnn_ts.config import ConfigError
from bpnn_ts.demo_data import md_snapshots
from bpnn_ts.io.datasets import DataError, read_structures
from bpnn_ts.training import Trainer, fit_atomic_energies, parse_train_config
from bpnn_ts.training.batch import concatenate, make_batches, predict
from bpnn_ts.training.checkpoint import load_checkpoint

from helpers import N2P2_TRAIN, TOL, mixed_model, needs_shared, water_box


@pytest.fixture(scope="module")
def cu_data(tmp_path_factory):
    """16 labelled 32-atom Cu cells (EMT, 2 temperatures) in an extxyz file."""
    cell = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
    structures = md_snapshots(cell, 500, 8, 5, seed=1) + md_snapshots(cell, 1000, 8, 5, seed=2)
    path = tmp_path_factory.mktemp("data") / "cu.xyz"
    ase.io.write(path, structures)
    return path, structures


def cu_config(tmp_path, data_path, **training):
    options = {"epochs": 4, "batch_size": 4, "learning_rate": 0.01, "seed": 3, "progress": False,
               "checkpoint_every": 1}
    options.update(training)
    return parse_train_config({
        "model": {"elements": ["Cu"], "cutoff": 4.5, "symmetry_functions": {"auto": {"n_radial": 5, "angular_eta": [0.02]}},
                  "hidden_layers": [8, 8], "seed": 0},
        "data": {"train": str(data_path), "split": {"validation": 0.25, "test": 0.0}},
        "loss": {"energy": 10.0, "forces": 1.0, "stress": 0.1},
        "training": options, "output": str(tmp_path / "run")})


def quiet(_line):
    pass


@pytest.mark.parametrize("suffix", [".xyz", ".db", ".traj"])
def test_formats_read_the_same_labels(cu_data, tmp_path, suffix):
    _, structures = cu_data
    path = tmp_path / f"data{suffix}"
    ase.io.write(path, structures[:3])
    back = read_structures(path)
    assert len(back) == 3
    for a, b in zip(structures[:3], back):
        assert np.allclose(a.positions, b.positions) and np.allclose(a.get_forces(), b.get_forces())
        assert abs(a.get_potential_energy() - b.get_potential_energy()) < TOL["extensive"]
        assert np.allclose(a.get_stress(), b.get_stress())


def test_cached_batches_equal_the_model_forward():
    model = mixed_model()
    structures = [water_box(6, box=5.5, seed=s) for s in range(3)]
    for atoms in structures:
        out = model(torch.tensor(atoms.positions), torch.tensor(atoms.numbers),
                    torch.tensor(atoms.cell.array), torch.tensor(atoms.pbc), compute_virial=True)
        from ase.calculators.singlepoint import SinglePointCalculator
        atoms.calc = SinglePointCalculator(atoms, energy=float(out[keys.ENERGY]), forces=out[keys.FORCES].numpy())
    cached = predict(model, concatenate(make_batches(model, structures, cached=True)), create_graph=False)
    direct = predict(model, concatenate(make_batches(model, structures, cached=False)), create_graph=False)
    for key in (keys.ENERGY, keys.FORCES, keys.VIRIAL):
        assert torch.allclose(cached[key], direct[key], atol=TOL["exact"], rtol=0), key
    labels = torch.tensor([a.get_potential_energy() for a in structures], dtype=torch.float64)
    assert torch.allclose(cached[keys.ENERGY], labels, atol=TOL["exact"])


def test_cached_and_uncached_training_gradients_agree():
    model = copy.deepcopy(mixed_model()).train()
    structures = [water_box(6, box=5.5, seed=s) for s in range(2)]
    from ase.calculators.singlepoint import SinglePointCalculator
    for atoms in structures:
        atoms.calc = SinglePointCalculator(atoms, energy=-10.0, forces=np.zeros((len(atoms), 3)))
    gradients = []
    for cached in (True, False):
        batch = concatenate(make_batches(model, structures, cached=cached))
        out = predict(model, batch, create_graph=True)
        loss = ((out[keys.FORCES] - batch.forces) ** 2).mean() + ((out[keys.ENERGY] - batch.energy) ** 2).mean()
        gradients.append(torch.autograd.grad(loss, list(model.parameters())))
    for a, b in zip(*gradients):
        assert torch.allclose(a, b, atol=TOL["summation"], rtol=TOL["extensive"])


def test_atomic_energies_fit_compositions():
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator
    structures = []
    for n_h, n_o in [(2, 1), (4, 2), (1, 3), (5, 1)]:
        atoms = Atoms("H" * n_h + "O" * n_o, positions=np.arange(3 * (n_h + n_o)).reshape(-1, 3))
        atoms.calc = SinglePointCalculator(atoms, energy=-1.5 * n_h - 4.0 * n_o)
        structures.append(atoms)
    fitted = fit_atomic_energies(structures, [1, 8])
    assert abs(fitted[1] + 1.5) < TOL["runtime"] and abs(fitted[8] + 4.0) < TOL["runtime"]


def test_training_lowers_the_loss_and_writes_outputs(cu_data, tmp_path):
    config = cu_config(tmp_path, cu_data[0], epochs=6)
    trainer = Trainer(config, log=quiet)
    before = trainer.evaluate("validation")["loss"]
    results = trainer.run()
    assert results["validation_loss"] < 0.5 * before
    run = tmp_path / "run"
    for name in ("checkpoint.ckpt", "best.ckpt", "metrics.csv", "model.pt"):
        assert (run / name).is_file(), name
    assert not list(run.glob("*.tmp"))
    assert len((run / "metrics.csv").read_text().splitlines()) == 7  # header + 6 epochs
    from bpnn_ts.training.evaluate import evaluate_model_file
    metrics = evaluate_model_file(run / "model.pt", cu_data[0])
    assert metrics["structures"] == 16 and metrics["force_rmse"] > 0


def test_resume_after_interruption_equals_uninterrupted_run(cu_data, tmp_path):
    straight = Trainer(cu_config(tmp_path / "a", cu_data[0]), log=quiet)
    straight.run()

    def interrupt(epoch, _row):
        if epoch == 2:
            raise KeyboardInterrupt

    config = cu_config(tmp_path / "b", cu_data[0])
    with pytest.raises(KeyboardInterrupt):
        Trainer(config, on_epoch_end=interrupt, log=quiet).run()
    assert load_checkpoint(tmp_path / "b" / "run" / "checkpoint.ckpt")["epoch"] == 2
    resumed = Trainer(config, resume=True, log=quiet)
    resumed.run()
    assert resumed.epoch == straight.epoch == 4
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    assert [r["train_loss"] for r in straight.history] == [r["train_loss"] for r in resumed.history]


def test_resume_without_checkpoint_is_a_clear_error(cu_data, tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        Trainer(cu_config(tmp_path, cu_data[0]), resume=True, log=quiet)


def test_truncated_data_file_is_refused_and_nothing_written(cu_data, tmp_path):
    text = cu_data[0].read_text().splitlines()
    broken = tmp_path / "broken.xyz"
    broken.write_text("\n".join(text[: len(text) // 2 + 3]) + "\n")
    with pytest.raises(DataError, match="broken.xyz"):
        Trainer(cu_config(tmp_path, broken), log=quiet)
    assert not (tmp_path / "run").exists()
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not sqlite")
    with pytest.raises(DataError, match="garbage.db"):
        read_structures(garbage)


def test_structures_without_forces_and_unknown_elements(cu_data, tmp_path):
    from ase.calculators.singlepoint import SinglePointCalculator
    structures = [a.copy() for a in cu_data[1][:6]]
    for atoms, original in zip(structures, cu_data[1]):
        atoms.calc = SinglePointCalculator(atoms, energy=original.get_potential_energy())
    path = tmp_path / "energies_only.xyz"
    ase.io.write(path, structures)
    with pytest.raises(DataError, match="no forces"):
        Trainer(cu_config(tmp_path, path), log=quiet)
    structures = [a.copy() for a in cu_data[1][:6]]
    for atoms, original in zip(structures, cu_data[1]):
        atoms.calc = SinglePointCalculator(atoms, energy=original.get_potential_energy(), forces=original.get_forces())
    structures[1][0].symbol = "Ag"
    path = tmp_path / "with_ag.xyz"
    ase.io.write(path, structures)
    with pytest.raises(DataError, match=r"structure \d+: elements \['Ag'\] are not in the model"):
        Trainer(cu_config(tmp_path, path), log=quiet)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("change, message", [
    ({"optimiser": "adam"}, "unknown keys in `training`"),
    ({"optimizer": "sgd"}, "`training.optimizer` must be one of"),
    ({"epochs": 0}, "`training.epochs` must be >= 1"),
    ({"batch_size": 2.5}, "`training.batch_size` must be an integer"),
])
def test_config_errors_name_the_key(cu_data, tmp_path, change, message):
    with pytest.raises(ConfigError, match=message):
        cu_config(tmp_path, cu_data[0], **change)
    with pytest.raises(ConfigError, match="`data.train` is required"):
        parse_train_config({"model": {"elements": ["Cu"], "cutoff": 4.0}, "data": {}})


@needs_shared
def test_trains_on_the_n2p2_water_sample(tmp_path):
    """20 DFT water structures in n2p2 units (Bohr/Ha): end to end, metrics reported."""
    config = parse_train_config({
        "model": {"elements": ["H", "O"], "cutoff": 6.35, "symmetry_functions": {"auto": {"n_radial": 5, "angular_eta": [0.01]}},
                  "hidden_layers": [10, 10], "seed": 0},
        "data": {"train": str(N2P2_TRAIN / "input.data"), "length_unit": "bohr", "energy_unit": "hartree",
                 "split": {"validation": 0.2, "test": 0.1}},
        "training": {"epochs": 3, "progress": False}, "output": str(tmp_path / "run")})
    results = Trainer(config, log=quiet).run()
    for key in ("test_energy_rmse_mev_atom", "test_force_rmse", "test_force_rmse_H", "test_force_rmse_O"):
        assert np.isfinite(results[key]), key


@pytest.mark.slow
def test_demo_meets_its_bars(tmp_path):
    from bpnn_ts.demo import run_demo
    assert run_demo(tmp_path / "demo", steps=100) == 0


def test_train_committee_writes_one_file_of_all_members(cu_data, tmp_path):
    """`bpnn-ts train --committee K`: members differ only by their initial weights; the committee
    file gives their mean and a non-zero spread; a resumed run keeps finished members."""
    from bpnn_ts import load
    from bpnn_ts.training import train_committee
    from bpnn_ts.training.committee import member_config
    config = cu_config(tmp_path, cu_data[0], epochs=2)
    assert member_config(config, 1).model.seed == config.model.seed + 1
    path = train_committee(config, 2, log=quiet)
    committee = load(path)
    assert committee.committee_size() == 2 and committee.training_range_known()
    atoms = cu_data[1][0]
    out = committee(torch.tensor(atoms.positions), torch.tensor(atoms.numbers), torch.tensor(atoms.cell.array),
                    torch.tensor(atoms.pbc), compute_uncertainty=True)
    members = [load(tmp_path / "run" / f"member_{k}" / "model.pt") for k in range(2)]
    energies = [float(m(torch.tensor(atoms.positions), torch.tensor(atoms.numbers), torch.tensor(atoms.cell.array),
                        torch.tensor(atoms.pbc))[keys.ENERGY]) for m in members]
    np.testing.assert_allclose(out[keys.COMMITTEE_ENERGY].numpy(), energies, rtol=TOL["exact"])
    assert float(out[keys.ENERGY_UNCERTAINTY]) > 0
    stamp = (tmp_path / "run" / "member_0" / "best.ckpt").stat().st_mtime_ns
    lines = []
    train_committee(config, 2, resume=True, log=lines.append)
    assert "member 0: finished earlier" in lines[0]
    assert (tmp_path / "run" / "member_0" / "best.ckpt").stat().st_mtime_ns == stamp


def test_checkpoints_of_0_1_load_resume_and_export(tmp_path):
    """A training checkpoint written by bpnn_ts 0.1 (tests/fixtures/format1/checkpoint.ckpt: Cu,
    2 epochs) gives the model 0.1 gave, resumes, and exports in the current format."""
    import json
    import shutil

    from bpnn_ts import inspect
    from bpnn_ts.cli import main
    from bpnn_ts.training import model_from_checkpoint

    from helpers import FORMAT1
    reference = json.loads((FORMAT1 / "reference.json").read_text())["checkpoint"]
    model = model_from_checkpoint(FORMAT1 / "checkpoint.ckpt")
    out = model(torch.tensor(reference["positions"], dtype=torch.float64), torch.tensor(reference["numbers"]),
                torch.tensor(reference["cell"], dtype=torch.float64), torch.tensor(reference["pbc"]))
    assert float(out[keys.ENERGY]) == reference["energy"]
    assert torch.equal(out[keys.FORCES], torch.tensor(reference["forces"], dtype=torch.float64))
    exported = tmp_path / "model.pt"
    assert main(["export", str(FORMAT1 / "checkpoint.ckpt"), "-o", str(exported)]) == 0
    assert inspect(exported)["metadata"]["format_version"] == keys.FORMAT_VERSION
    # resume: the same data (regenerated), one epoch more than the checkpoint's two
    data = tmp_path / "cu.xyz"
    ase.io.write(data, md_snapshots(bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2), 500, 4, 5, seed=1))
    config = cu_config(tmp_path, data, epochs=3, batch_size=2)
    (tmp_path / "run").mkdir()
    shutil.copy(FORMAT1 / "checkpoint.ckpt", tmp_path / "run" / "checkpoint.ckpt")
    trainer = Trainer(config, resume=True, log=quiet)
    assert trainer.epoch == 2
    trainer.run()
    assert load_checkpoint(tmp_path / "run" / "checkpoint.ckpt")["epoch"] == 3
