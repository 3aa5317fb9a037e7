"""Training: data reading, config validation, the cached batch path, loss decrease,
exact resume after an interruption, clear errors with nothing written half-way."""

import copy
import csv
import os
import re
import stat
import warnings

import ase.io
import numpy as np
import pytest
import torch
from ase.build import bulk

from bpnn_ts import keys
from bpnn_ts.cli import main
from bpnn_ts.demo_data import md_snapshots
from bpnn_ts.errors import ConfigError
from bpnn_ts.io.datasets import DataError, read_structures
from bpnn_ts.training import Trainer, fit_atomic_energies, load_train_config, parse_train_config
from bpnn_ts.training.batch import concatenate, make_batches, predict
from bpnn_ts.training.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from bpnn_ts.training.output import OutputExistsError

from helpers import N2P2_TRAIN, TOL, mixed_model, needs_shared, water_box


@pytest.fixture(scope="module")
def cu_data(tmp_path_factory):
    """16 labelled 32-atom Cu cells (EMT, 2 temperatures) in an extxyz file."""
    cell = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
    structures = md_snapshots(cell, 500, 8, 5, seed=1) + md_snapshots(cell, 1000, 8, 5, seed=2)
    path = tmp_path_factory.mktemp("data") / "cu.xyz"
    ase.io.write(path, structures)
    return path, structures


def cu_raw_config(tmp_path, data_path, validation=0.25, **training):
    """The training config mapping of the small Cu runs (output in tmp_path / "run")."""
    options = {"epochs": 4, "batch_size": 4, "learning_rate": 0.01, "seed": 3, "progress": False,
               "checkpoint_every": 1, "plots": False, "model_file": False}  # (tests that read them ask)
    options.update(training)
    return {
        "model": {"elements": ["Cu"], "cutoff": 4.5, "symmetry_functions": {"auto": {"n_radial": 5, "angular_eta": [0.02]}},
                  "hidden_layers": [8, 8], "seed": 0},
        "data": {"train": str(data_path), "split": {"validation": validation, "test": 0.0}},
        "loss": {"energy": 10.0, "forces": 1.0, "stress": 0.1},
        "training": options, "output": str(tmp_path / "run")}


def cu_config(tmp_path, data_path, validation=0.25, **training):
    return parse_train_config(cu_raw_config(tmp_path, data_path, validation, **training))


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


def test_the_fused_kernels_give_the_descriptor_jacobian_of_the_dense_path():
    """The training cache (make_batches) comes from the fused kernels, one contraction per
    function; the dense torch path (the oracle) gives the same G and dG/dr_ij, eager and scripted."""
    dense = mixed_model()
    fused = copy.deepcopy(dense)
    if not fused.use_native_kernels(True):
        pytest.skip("the fused kernels do not build here")
    atoms = water_box(6, box=5.5, seed=4)
    args = (torch.tensor(atoms.positions), torch.tensor(atoms.numbers), torch.tensor(atoms.cell.array),
            torch.tensor(atoms.pbc))
    expected = dense.compute_descriptor_jacobian(*args)
    for model in (fused, torch.jit.script(fused)):
        got = model.compute_descriptor_jacobian(*args)
        for key in (keys.DESCRIPTORS, "descriptor_jacobian", "pair_centres", "pair_neighbours", "pair_vectors"):
            assert got[key].shape == expected[key].shape and torch.allclose(got[key], expected[key], atol=1e-12,
                                                                               rtol=1e-10), key
    assert float(expected["descriptor_jacobian"].abs().max()) > 0.1


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
    config = cu_config(tmp_path, cu_data[0], epochs=6, plots=True, model_file=True)
    lines = []
    trainer = Trainer(config, log=lines.append)
    before = trainer.evaluate("validation")["loss"]
    results = trainer.run()
    assert any("val loss" in line for line in lines) and not any("no validation" in line for line in lines)
    assert results["validation_loss"] < 0.5 * before
    run = tmp_path / "run"
    for name in ("checkpoint.ckpt", "best.ckpt", "metrics.csv", "model.pt"):
        assert (run / name).is_file(), name
    assert not list(run.glob("*.tmp"))
    assert len((run / "metrics.csv").read_text().splitlines()) == 7  # header + 6 epochs
    from bpnn_ts.training.metrics import evaluate_model_file
    metrics = evaluate_model_file(run / "model.pt", cu_data[0])
    assert metrics["structures"] == 16 and metrics["force_rmse"] > 0


@pytest.mark.parametrize("cached", [True, False], ids=["cached", "through_kernels"])
def test_resume_after_interruption_equals_uninterrupted_run(cu_data, tmp_path, cached):
    straight = Trainer(cu_config(tmp_path / "a", cu_data[0], cache_descriptors=cached), log=quiet)
    straight.run()

    def interrupt(epoch, _row):
        if epoch == 2:
            raise KeyboardInterrupt

    config = cu_config(tmp_path / "b", cu_data[0], cache_descriptors=cached)
    with pytest.raises(KeyboardInterrupt):
        Trainer(config, on_epoch_end=interrupt, log=quiet).run()
    assert load_checkpoint(tmp_path / "b" / "run" / "checkpoint.ckpt")["epoch"] == 2
    resumed = Trainer(config, resume=True, log=quiet)
    resumed.run()
    assert resumed.epoch == straight.epoch == 4
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    assert [r["train_loss"] for r in straight.history] == [r["train_loss"] for r in resumed.history]


def test_resume_with_another_optimizer_is_a_clear_error(cu_data, tmp_path):
    Trainer(cu_config(tmp_path, cu_data[0], epochs=1, optimizer="adam"), log=quiet).run()
    with pytest.raises(ValueError, match="written by `training.optimizer: adam`, the config asks for kalman"):
        Trainer(cu_config(tmp_path, cu_data[0], epochs=2), resume=True, log=quiet)


def test_kalman_is_the_default_and_checkpoints_hold_its_state(cu_data, tmp_path):
    """The default optimizer is the Kalman filter; metrics.csv has its q and eta; the checkpoint
    holds the covariance blocks (one per element network) and the data spreads."""
    config = cu_config(tmp_path, cu_data[0], epochs=2)
    assert config.training.optimizer == "kalman" and config.loss.forces == 1.0  # given explicitly by cu_config
    defaults = parse_train_config({"model": {"elements": ["Cu"], "cutoff": 4.0}, "data": {"train": "x.xyz"}})
    assert (defaults.loss.energy, defaults.loss.forces) == (2.0, 10.0)
    trainer = Trainer(config, log=quiet)
    trainer.run()
    state = load_checkpoint(tmp_path / "run" / "checkpoint.ckpt")
    assert state["optimizer"] is None and len(state["kalman"]["filter"]["covariances"]) == 1
    n = sum(p.numel() for p in trainer.model.parameters())
    assert state["kalman"]["filter"]["covariances"][0].shape == (n, n)
    assert set(state["kalman"]["spreads"]) == {"energy", "forces", "stress"}
    written = {path.name for path in (tmp_path / "run").iterdir()}  # plots and model_file off (cu_raw_config)
    assert written == {"checkpoint.ckpt", "best.ckpt", "metrics.csv"}, written
    header = (tmp_path / "run" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert "kalman_q" in header and "kalman_eta" in header and "learning_rate" not in header


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
    ({"kalman": {"kind": "extended"}}, "`training.kalman.kind` must be one of"),
    ({"kalman": {"blocks": "neuron"}}, "`training.kalman.blocks` must be one of"),
    ({"kalman": {"force_components": 0}}, "`training.kalman.force_components` must be >= 1"),
    ({"kalman": {"epsilon": 0}}, "`training.kalman.epsilon` must be > 0"),
    ({"kalman": {"lambda0": 1.5}}, "`training.kalman.lambda0` and `nu` must be <= 1"),
    ({"kalman": {"q": 0.1}}, "unknown keys in `training.kalman`"),
    ({"kalman": [1]}, "`training.kalman` must be a mapping"),
    ({"plots": "no"}, "`training.plots` must be true or false, got 'no'"),
    ({"model_file": 0}, "`training.model_file` must be true or false, got 0"),
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
    from bpnn_ts.training.committee_run import member_config
    config = cu_config(tmp_path, cu_data[0], epochs=2, model_file=True)
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
    with pytest.raises(OutputExistsError, match=re.escape(f"{tmp_path / 'run'} already holds a training run "
                                                          "(committee.pt)")):
        train_committee(config, 2, log=quiet)
    lines = []
    train_committee(config, 2, resume=True, log=lines.append)
    assert "member 0: finished earlier" in lines[0]
    assert (tmp_path / "run" / "member_0" / "best.ckpt").stat().st_mtime_ns == stamp


def test_committee_members_trained_in_worker_processes_are_those_trained_in_turn(cu_data, tmp_path):
    from bpnn_ts.training import train_committee
    from bpnn_ts.training.trainer import model_from_checkpoint
    runs = {}
    for workers in (1, 2):
        config = cu_config(tmp_path / f"workers_{workers}", cu_data[0], epochs=2)
        train_committee(config, 2, log=quiet, workers=workers)
        runs[workers] = [model_from_checkpoint(tmp_path / f"workers_{workers}" / "run" / f"member_{k}" / "best.ckpt")
                         for k in range(2)]
    for sequential, parallel in zip(runs[1], runs[2]):
        for name, value in sequential.state_dict().items():
            torch.testing.assert_close(parallel.state_dict()[name], value, rtol=0, atol=0, msg=name)
    assert "epoch" in (tmp_path / "workers_2" / "run" / "member_1" / "train.log").read_text()


def test_checkpoints_of_0_1_load_resume_and_export(tmp_path):
    """A training checkpoint written by bpnn_ts 0.1 (tests/fixtures/format1/checkpoint.ckpt: Cu,
    2 epochs) gives the model 0.1 gave, resumes, and exports in the current format."""
    import json
    import shutil

    from bpnn_ts import inspect
    from bpnn_ts.training import model_from_checkpoint

    from helpers import FORMAT1
    reference = json.loads((FORMAT1 / "reference.json").read_text())["checkpoint"]
    model = model_from_checkpoint(FORMAT1 / "checkpoint.ckpt")
    out = model(torch.tensor(reference["positions"], dtype=torch.float64), torch.tensor(reference["numbers"]),
                torch.tensor(reference["cell"], dtype=torch.float64), torch.tensor(reference["pbc"]))
    assert float(out[keys.ENERGY]) == pytest.approx(reference["energy"], rel=TOL["exact"], abs=TOL["exact"])
    torch.testing.assert_close(out[keys.FORCES], torch.tensor(reference["forces"], dtype=torch.float64),
                               rtol=TOL["exact"], atol=TOL["exact"])  # rounding: dE/dG by hand, not autograd
    exported = tmp_path / "model.pt"
    assert main(["export", str(FORMAT1 / "checkpoint.ckpt"), "-o", str(exported)]) == 0
    assert inspect(exported)["metadata"]["format_version"] == keys.FORMAT_VERSION
    # resume: the same data (regenerated), one epoch more than the checkpoint's two
    data = tmp_path / "cu.xyz"
    ase.io.write(data, md_snapshots(bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2), 500, 4, 5, seed=1))
    config = cu_config(tmp_path, data, epochs=3, batch_size=2, optimizer="adam")
    (tmp_path / "run").mkdir()
    shutil.copy(FORMAT1 / "checkpoint.ckpt", tmp_path / "run" / "checkpoint.ckpt")
    trainer = Trainer(config, resume=True, log=quiet)
    assert trainer.epoch == 2
    trainer.run()
    assert load_checkpoint(tmp_path / "run" / "checkpoint.ckpt")["epoch"] == 3


def test_without_validation_structures_the_training_loss_is_monitored_and_said(cu_data, tmp_path):
    """No validation structures: one log line says so and no line says "val loss"; metrics.csv's
    val_* columns are empty, train_set_* hold the training-set metrics that chose the best model."""
    from bpnn_ts import inspect
    lines = []
    trainer = Trainer(cu_config(tmp_path, cu_data[0], validation=0.0, epochs=2, model_file=True), log=lines.append)
    results = trainer.run()
    notes = [line for line in lines if line.startswith("no validation structures")]
    assert len(notes) == 1 and "early stopping" in notes[0] and "training-set loss" in notes[0], lines
    assert not any("val loss" in line for line in lines), lines
    with open(tmp_path / "run" / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2
    empty = [k for k in rows[0] if k.startswith("val_")]
    assert {"val_loss", "val_energy_rmse_mev_atom", "val_force_rmse"} <= set(empty)
    assert all(row[k] == "" for row in rows for k in empty)
    assert [float(row["train_set_loss"]) for row in rows] == [row["train_set_loss"] for row in trainer.history]
    assert trainer.best_loss == min(row["train_set_loss"] for row in trainer.history)
    provenance = inspect(tmp_path / "run" / "model.pt")["provenance"]
    assert provenance["best_training_set_loss"] == trainer.best_loss and "best_validation_loss" not in provenance
    assert "train_energy_rmse_mev_atom" in results and not any(k.startswith("validation_") for k in results)


def test_a_folder_holding_a_run_is_refused_unless_resume_or_overwrite(cu_data, tmp_path, capsys):
    """`bpnn-ts train` and Trainer refuse to start a new run over an earlier one, naming the
    folder; --overwrite / overwrite=True replace it (stale files removed)."""
    import yaml
    config_file = tmp_path / "train.yaml"
    config_file.write_text(yaml.safe_dump(cu_raw_config(tmp_path, cu_data[0], epochs=1, plots=True,
                                                        model_file=True)))
    config = load_train_config(config_file)
    run = tmp_path / "run"
    assert main(["train", str(config_file)]) == 0
    stamp = (run / "model.pt").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["train", str(config_file)]) == 2
    message = f"the output folder {run} already holds a training run (checkpoint.ckpt, best.ckpt, model.pt)"
    assert capsys.readouterr().err.startswith(f"bpnn-ts train: error: {message}; continue it with --resume")
    with pytest.raises(OutputExistsError, match=re.escape(message) + ".*--resume.*--overwrite"):
        Trainer(config, log=quiet)
    with pytest.raises(ValueError, match="`resume` and `overwrite` exclude each other"):
        Trainer(config, resume=True, overwrite=True, log=quiet)
    with pytest.raises(SystemExit):
        main(["train", str(config_file), "--resume", "--overwrite"])
    assert "not allowed with argument" in capsys.readouterr().err
    assert (run / "model.pt").stat().st_mtime_ns == stamp
    (run / "parity_test.png").write_bytes(b"an earlier run's plot")  # this run has no test set
    assert main(["train", str(config_file), "--overwrite"]) == 0
    assert not (run / "parity_test.png").exists() and (run / "model.pt").stat().st_mtime_ns != stamp
    assert "overwrite: removed checkpoint.ckpt, best.ckpt, model.pt, metrics.csv" in capsys.readouterr().out
    lines = []
    Trainer(config, overwrite=True, log=lines.append).run()
    assert any(line.startswith("overwrite: removed") for line in lines), lines
    assert len((run / "metrics.csv").read_text().splitlines()) == 2  # header + the new run's epoch


@pytest.fixture
def umask():
    """Sets the process umask for a test (os.umask set-and-restore) and restores it."""
    saved = os.umask(0o022)
    os.umask(saved)
    yield os.umask
    os.umask(saved)


def test_written_files_follow_the_umask(tmp_path, umask):
    """Checkpoints and model files get the mode open(path, "w") would give: 0o666 & ~umask."""
    from bpnn_ts import export, parse_model_config
    model = parse_model_config({"elements": ["Cu"], "cutoff": 4.0}).build().eval()
    for mask, mode in ((0o022, 0o644), (0o077, 0o600), (0o002, 0o664)):
        umask(mask)
        checkpoint = save_checkpoint({"epoch": 0}, tmp_path / f"{mask:o}.ckpt")
        assert stat.S_IMODE(checkpoint.stat().st_mode) == mode, f"umask {mask:o}"
    umask(0o077)
    save_checkpoint({"epoch": 0}, tmp_path / "again.ckpt")
    umask(0o022)
    replaced = save_checkpoint({"epoch": 1}, tmp_path / "again.ckpt")  # a 0o600 file replaced
    exported = export(model, tmp_path / "model.pt", native_kernels=False)
    for path in (replaced, exported):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path.name
    assert not list(tmp_path.glob("*.tmp"))


def test_parity_panels_show_the_metrics(tmp_path):
    """Each panel's text gives the RMSE and MAE that the metrics give (energy per atom in
    meV/atom, forces in eV/Å)."""
    pytest.importorskip("matplotlib")
    from bpnn_ts.training.metrics import summarize
    from bpnn_ts.training.plots import parity_labels, parity_plot
    reference = torch.tensor([-3.0, -3.5, -2.9], dtype=torch.float64)
    errors = torch.tensor([0.001, -0.002, 0.0005], dtype=torch.float64)  # eV/atom
    forces = torch.linspace(-1.0, 1.0, 12, dtype=torch.float64).reshape(4, 3)
    force_errors = torch.tensor([0.1, -0.2, 0.05] * 4, dtype=torch.float64).reshape(4, 3)
    store = {"energy": [errors], "energy_ref": [reference], "energy_pred": [reference + errors],
             "force": [force_errors], "force_ref": [forces], "force_pred": [forces + force_errors],
             "force_numbers": [torch.full((4,), 29)]}
    metrics = summarize(store, [29])
    energy, force = parity_labels(store)
    assert energy == "RMSE 1.323 meV/atom\nMAE 1.167 meV/atom"  # sqrt(1.75) and 3.5/3
    assert energy == (f"RMSE {metrics['energy_rmse_mev_atom']:.3f} meV/atom\n"
                      f"MAE {metrics['energy_mae_mev_atom']:.3f} meV/atom")
    assert force == f"RMSE {metrics['force_rmse']:.4f} eV/Å\nMAE {metrics['force_mae']:.4f} eV/Å"
    assert force == "RMSE 0.1323 eV/Å\nMAE 0.1167 eV/Å"
    assert parity_plot(store, tmp_path / "parity.png", "test") == [energy, force]
    assert (tmp_path / "parity.png").stat().st_size > 0
    no_forces = dict(store, force=[torch.zeros(0, 3)], force_ref=[torch.zeros(0, 3)], force_pred=[torch.zeros(0, 3)])
    assert parity_labels(no_forces) == (energy, "no forces")


def test_md_snapshots_use_the_current_ase_api_with_the_same_draws():
    """No DeprecationWarning from the demo data, and ASE's current API draws the momenta the
    deprecated MaxwellBoltzmannDistribution drew (the demo's numbers do not change)."""
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    from bpnn_ts.demo_data import thermalize
    cell = bulk("Cu", "fcc", a=3.61, cubic=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        md_snapshots(cell, 300, 1, 2, seed=0)
    assert not [w for w in caught if issubclass(w.category, DeprecationWarning)], [str(w.message) for w in caught]
    current, deprecated = cell.repeat(3), cell.repeat(3)
    thermalize(current, 800, np.random.default_rng(1000))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        MaxwellBoltzmannDistribution(deprecated, temperature_K=800, rng=np.random.default_rng(1000))
    assert np.array_equal(current.get_momenta(), deprecated.get_momenta())


def test_streamed_data_train_exactly_as_data_read_at_start(cu_data, tmp_path):
    """`data.stream: true` (structures read on demand, at most `cache_size` in memory) gives the
    run that reading everything first gives (uncached descriptors in both)."""
    results = []
    for stream in (False, True):
        raw = cu_raw_config(tmp_path / str(stream), cu_data[0], epochs=2, cache_descriptors=False)
        raw["data"].update(stream=stream, cache_size=3)
        trainer = Trainer(parse_train_config(raw), log=quiet)
        trainer.run()
        results.append(trainer.model.state_dict())
    for name, value in results[0].items():
        assert torch.equal(value, results[1][name]), name
    # the run trained through the fused kernels: its checkpoint still gives the model (export, committees)
    kept = model_from_checkpoint(tmp_path / "True" / "run" / "best.ckpt")
    assert torch.equal(kept.state_dict()["potential.atomic_energy_shift"], results[1]["potential.atomic_energy_shift"])
    with pytest.raises(ConfigError, match="set `training.cache_descriptors: false`"):
        raw = cu_raw_config(tmp_path, cu_data[0])
        raw["data"]["stream"] = True
        parse_train_config(raw)


def test_scaling_statistics_merged_over_structures_equal_those_of_all_atoms_at_once():
    from bpnn_ts.input_scaling import descriptor_statistics
    model = mixed_model()
    boxes = [water_box(5, seed=s) for s in range(4)]
    merged = descriptor_statistics(model, iter(boxes))
    for k, z in enumerate(model.atomic_numbers()):
        rows = []
        for atoms in boxes:
            g = model.compute_descriptors(torch.tensor(atoms.positions), torch.tensor(atoms.numbers),
                                          torch.tensor(atoms.cell.array), torch.tensor(atoms.pbc))[keys.DESCRIPTORS]
            rows.append(g[torch.tensor(atoms.numbers) == z, :model.potential.n_functions[k]])
        data = torch.cat(rows)
        direct = torch.stack([data.min(0).values, data.max(0).values, data.mean(0), data.std(0, unbiased=False)], 1)
        assert torch.allclose(merged[int(z)], direct, rtol=1e-12, atol=1e-14)


def test_a_warm_start_begins_from_the_source_models_energies_and_forces(cu_data, tmp_path):
    """`training.initial_weights`: the new run fits its own scaling, reference energies and
    Kalman energy unit to other data, and its model still starts from the source's numbers."""
    from bpnn_ts.training.trainer import model_from_checkpoint
    path, structures = cu_data

    def config_of(folder, data, **training):  # the functions pinned (auto ones follow the data's closest pair)
        raw = cu_raw_config(folder, data, optimizer="kalman", **training)
        raw["model"]["symmetry_functions"]["auto"]["r_lower"] = 1.2
        return raw
    Trainer(parse_train_config(config_of(tmp_path / "first", path)), log=quiet).run()
    source_file = tmp_path / "first" / "run" / "best.ckpt"
    source = model_from_checkpoint(source_file)
    hotter = md_snapshots(bulk("Cu", "fcc", a=3.58, cubic=True).repeat(2), 1500, 6, 5, seed=7)  # other ranges
    other = tmp_path / "other.xyz"
    ase.io.write(other, hotter)
    started = Trainer(parse_train_config(config_of(tmp_path / "second", other, initial_weights=str(source_file))),
                      log=quiet).model.eval()
    assert started.spec().energy_scale != source.spec().energy_scale  # re-expressed, not copied
    assert not torch.equal(started.scaling_factors()[29], source.scaling_factors()[29])
    for atoms in structures[:2] + hotter[:2]:
        a, b = evaluate_model(started, atoms), evaluate_model(source, atoms)
        assert abs(a[keys.ENERGY] - b[keys.ENERGY]) < 1e-9 * len(atoms)
        torch.testing.assert_close(a[keys.FORCES], b[keys.FORCES], rtol=0, atol=1e-9)
    cold = Trainer(parse_train_config(config_of(tmp_path / "cold", other)), log=quiet).model.eval()
    assert abs(evaluate_model(cold, hotter[0])[keys.ENERGY] - evaluate_model(source, hotter[0])[keys.ENERGY]) > 1e-3
    different = config_of(tmp_path / "third", other, initial_weights=str(source_file))
    different["model"]["hidden_layers"] = [6, 6]
    with pytest.raises(ValueError, match="differs from this one in its hidden layers"):
        Trainer(parse_train_config(different), log=quiet)
    with pytest.raises(ConfigError, match="`training.initial_weights`: .*missing.ckpt does not exist"):
        cu_config(tmp_path / "fourth", other, initial_weights=str(tmp_path / "missing.ckpt"))


def evaluate_model(model, atoms):
    """Energy (float, eV) and forces (N, 3) of an eager model on `atoms`."""
    out = model(torch.tensor(atoms.positions), torch.tensor(atoms.numbers), torch.tensor(atoms.cell.array),
                torch.tensor(atoms.pbc))
    return {keys.ENERGY: float(out[keys.ENERGY]), keys.FORCES: out[keys.FORCES].detach()}
