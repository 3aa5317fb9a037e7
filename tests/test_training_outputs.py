"""What a training run tells its user and leaves behind: the setup log (where the functions came
from, the input scaling and its report), best.ckpt without the Kalman covariance, a labelled
learning curve, `bpnn-ts eval` with units and a model-specific message for unknown elements,
and a warning when a model that was never trained is exported."""

import warnings

import ase.calculators.singlepoint
import ase.io
import pytest
import torch
from ase.build import bulk

from bpnn_ts import export, parse_model_config
from bpnn_ts.cli import main
from bpnn_ts.demo_data import md_snapshots
from bpnn_ts.errors import UntrainedModelWarning
from bpnn_ts.function_selection import resolve_symmetry_functions
from bpnn_ts.training import Trainer, parse_train_config
from bpnn_ts.training.checkpoint import load_checkpoint
from bpnn_ts.training.plots import learning_curve


def small_config(folder, output=None, **training):
    """The small run's config: data folder / cu.xyz, output `output` (default folder / out)."""
    return parse_train_config({
        "model": {"elements": ["Cu"], "cutoff": 4.5, "hidden_layers": [6],
                  "symmetry_functions": {"auto": {"n_radial": 4, "angular_eta": [0.02]}}},
        "data": {"train": str(folder / "cu.xyz"), "split": {"validation": 0.25, "test": 0.0}},
        "training": {"epochs": 3, "progress": False, **training},
        "output": str(output or folder / "out")})


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A 3-epoch Kalman run on 12 Cu cells (EMT) with plots and the model file; its log lines."""
    folder = tmp_path_factory.mktemp("run")
    cells = md_snapshots(bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2), 800, 12, 5, seed=4)
    ase.io.write(folder / "cu.xyz", cells)
    lines = []
    trainer = Trainer(small_config(folder), log=lines.append)
    trainer.run()
    return trainer, lines, folder


def test_the_kept_model_is_the_mean_of_the_late_epochs_and_resumes_exactly(run, tmp_path):
    _, _, folder = run
    after = {}

    def record(epoch, _row):
        after[epoch] = {name: p.detach().clone() for name, p in straight.model.named_parameters()}

    straight = Trainer(small_config(folder, tmp_path / "a", epochs=4, average_from=0.5), on_epoch_end=record,
                       log=lambda _l: None)
    straight.run()
    assert straight.average.epochs() == "3-4"
    for name, value in straight.model.named_parameters():
        assert torch.allclose(value, (after[3][name] + after[4][name]) / 2, rtol=1e-14, atol=1e-15), name

    def interrupt(epoch, _row):
        if epoch == 3:  # the mean has one epoch in it
            raise KeyboardInterrupt

    config = small_config(folder, tmp_path / "b", epochs=4, average_from=0.5)
    with pytest.raises(KeyboardInterrupt):
        Trainer(config, on_epoch_end=interrupt, log=lambda _l: None).run()
    resumed = Trainer(config, resume=True, log=lambda _l: None)
    resumed.run()
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    lines = []
    best = Trainer(small_config(folder, tmp_path / "c", epochs=4, average_from=1.0), log=lines.append)
    best.run()
    assert best.average.count == 0 and any(line.startswith("model kept: the weights of the best epoch") for line in lines)


def test_a_mean_much_worse_than_the_best_epoch_is_not_kept(run, tmp_path, monkeypatch):
    """Weights that wandered between minima can average to a model in none of them: then the
    best epoch's weights are kept, and the log says why."""
    _, _, folder = run
    from bpnn_ts.training.averaging import WeightAverage

    def spoiled(self, state):  # a mean whose hidden weights are 3x too large
        return {name: 3.0 * value if name.endswith("weight") else value for name, value in state.items()}

    monkeypatch.setattr(WeightAverage, "applied_to", spoiled)
    lines = []
    trainer = Trainer(small_config(folder, tmp_path / "d", epochs=4, average_from=0.5), log=lines.append)
    trainer.run()
    kept = [line for line in lines if line.startswith("model kept:")]
    assert kept and "the weights of the best epoch" in kept[0] and "x worse" in kept[0], kept
    assert trainer.average.count == 2
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(value, trainer.best_state[name]), name


def test_the_log_says_how_the_inputs_are_scaled(run):
    _, lines, _ = run
    assert any(line.startswith("input scaling (scalecenter) fitted to the training data in ") for line in lines), lines
    assert any(line.startswith("setup (data, model, scaling, caches) took ") for line in lines), lines


def test_best_checkpoint_leaves_the_covariance_to_checkpoint_ckpt(run):
    trainer, _, folder = run
    resumable = load_checkpoint(folder / "out" / "checkpoint.ckpt")
    best = load_checkpoint(folder / "out" / "best.ckpt")
    assert len(resumable["kalman"]["filter"]["covariances"]) == 1
    assert "filter" not in best["kalman"] and best["finished"] and set(best["kalman"]) == {"force_rmse", "spreads"}
    assert main(["export", str(folder / "out" / "best.ckpt"), "-o", str(folder / "again.pt")]) == 0


def test_the_learning_curve_labels_its_losses_and_units(run):
    trainer, _, folder = run
    assert (folder / "out" / "learning_curve.png").stat().st_size > 0
    shown = learning_curve(trainer.history, folder / "curve.png", "units of the spreads")
    assert shown[:3] == ["loss (units of the spreads)", "energy RMSE (meV/atom)", "force RMSE (meV/Å)"]
    assert "training (during the epoch)" in shown and shown.count("validation") == 3
    no_validation = [{k: v for k, v in row.items() if not k.startswith("val_")} | {"train_set_loss": 1.0,
                     "train_set_energy_rmse_mev_atom": 2.0, "train_set_force_rmse": 0.1} for row in trainer.history]
    assert "training set (after the epoch)" in learning_curve(no_validation, folder / "curve2.png", "x")


def test_eval_gives_units_and_names_what_the_model_lacks(run, capsys):
    _, _, folder = run
    model_file = folder / "out" / "model.pt"
    assert main(["eval", str(model_file), str(folder / "cu.xyz")]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    assert lines and all(line.rstrip().endswith(("meV/atom", "eV/Å", "meV/Å³")) for line in lines), lines
    assert any(line.startswith("force RMSE (Cu)") for line in lines)
    assert any(line.startswith("stress RMSE") and line.endswith("meV/Å³") for line in lines), lines
    silver = bulk("Ag", "fcc", a=4.09, cubic=True)
    silver.calc = ase.calculators.singlepoint.SinglePointCalculator(silver, energy=0.0)
    ase.io.write(folder / "ag.xyz", silver)
    assert main(["eval", str(model_file), str(folder / "ag.xyz")]) == 2
    error = capsys.readouterr().err
    assert "elements ['Ag'] are not in the model ['Cu']; the model has no networks for them" in error
    assert "`elements`" not in error


def test_exporting_an_untrained_model_warns(run, tmp_path):
    trainer, _, _ = run
    seeded = parse_model_config({"elements": ["Cu"], "cutoff": 4.0, "seed": 0}).build().eval()
    with pytest.warns(UntrainedModelWarning, match="initial random weights"):
        export(seeded, tmp_path / "seeded.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UntrainedModelWarning)
        export(trainer.model.eval(), tmp_path / "trained.pt")
        loaded = parse_model_config({"elements": ["Cu"], "cutoff": 4.0, "seed": 1}).build()
        loaded.load_state_dict(seeded.state_dict())
        export(loaded.eval(), tmp_path / "loaded.pt")
    assert trainer.model.weights_origin == "trained" and loaded.weights_origin == "loaded"


def test_functions_from_a_potential_are_counted_in_the_log(run):
    trainer, _, folder = run
    lines = []
    source = folder / "out" / "model.pt"
    resolve_symmetry_functions({"symmetry_functions": {"from": str(source)}}, [], lines.append)
    n = len(trainer.model.spec().functions)
    assert lines == [f"symmetry functions: {n} from {source} ({n} Cu); cutoff function cos (n2p2 type 1), "
                     "cutoff 4.5 Å"], lines
