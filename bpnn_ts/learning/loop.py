"""The active-learning loop (`bpnn-ts learn`): rounds of label -> train -> explore -> select.

Round K labels its structures (round 0: the start structures; later: what round K-1 selected),
trains a committee on every label so far, explores with it (MD), and selects the frames to
label next. The loop stops when fewer than `stop.fraction` of the explored frames have a
committee force spread above `select.lower` (the committee knows what MD visits), when the
explored frames' median spread levels off (`stop.plateau`), when a round selects nothing, or at
`stop.max_labels` / `stop.max_rounds` (stopping.py).

Files (OUT = `output`): OUT/round-K/ holds to_label.extxyz, labels/ (one file per labelled
structure), labelled.extxyz (this round's labels), train.extxyz (all labels so far), the
committee (committee.pt, member_k/), explored.extxyz, selected.extxyz, round.json (this round's
figures) and log.txt; OUT/learning.csv has a row per round, OUT/learning.png plots it, and
OUT/state.json says where the run is. Every stage writes its outputs atomically and is skipped
when they exist, labelling keeps each label it made and training resumes from its checkpoints:
killed at any point (kill -9), `bpnn-ts learn CONFIG --resume` goes on without labelling anything
twice and ends with the labels an uninterrupted run gets.
"""

import csv
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import ase.io
import numpy as np
import yaml
from ase import Atoms

from ..atomic_write import write_atomically, write_text_atomically
from ..io.datasets import read_structures
from ..training.config import parse_train_config
from .config import LearnConfig
from .exploration import SPREAD, explore, protocols
from .label_files import Labels
from .labelling import label_all
from .selection import candidates, select
from .stopping import stop_reason

COLUMNS = ["round", "labels", "new_labels", "failed_labels", "explored", "candidates", "selected",
           "fraction_above_lower", "spread_median", "spread_max", "test_energy_rmse_mev_atom",
           "test_force_rmse_mev_a", "seconds_label", "seconds_train", "seconds_explore", "seconds_select", "stop"]


def write_structures(path: Path, structures: List[Atoms]) -> None:
    """`structures` as extxyz at `path`, atomically (an empty list: an empty file)."""
    def write(temporary: str) -> None:
        if structures:
            ase.io.write(temporary, structures, format="extxyz")
        else:
            Path(temporary).write_text("")
    write_atomically(path, write)


def read_frames(path: Path) -> List[Atoms]:
    """The structures of an extxyz file written by write_structures."""
    if path.stat().st_size == 0:
        return []
    frames = ase.io.read(path, index=":", format="extxyz")
    return frames if isinstance(frames, list) else [frames]


def with_absolute_paths(raw: Dict[str, Any], base: Path) -> Dict[str, Any]:
    """A training config mapping whose file names relative to `base` (the learning config's
    folder) are made absolute, so that it can be written elsewhere: `model.symmetry_functions.from`
    and `training.initial_weights` (the loop gives `data` and `output` absolute already)."""
    def absolute(value: Any) -> Any:
        return str(base / value) if isinstance(value, str) and not Path(value).is_absolute() else value
    raw = dict(raw)
    model = dict(raw.get("model") or {})
    if isinstance(model.get("symmetry_functions"), dict) and "from" in model["symmetry_functions"]:
        model["symmetry_functions"] = dict(model["symmetry_functions"],
                                           **{"from": absolute(model["symmetry_functions"]["from"])})
    training = dict(raw.get("training") or {})
    if training.get("initial_weights"):
        training["initial_weights"] = absolute(training["initial_weights"])
    return dict(raw, model=model, training=training)


def launched_training(launcher: str, raw: Dict[str, Any], committee: int, folder: Path) -> Path:
    """`launcher bpnn-ts train folder/train.yaml --committee K --resume` (e.g. under torchrun, every
    process on each member in turn), its output in folder/train.log; the committee file."""
    import shlex
    import shutil
    import subprocess
    command = shutil.which("bpnn-ts", path=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]))
    if command is None:
        raise RuntimeError("train.launcher: the `bpnn-ts` command is not installed beside this Python or on PATH")
    write_text_atomically(folder / "train.yaml", yaml.safe_dump(raw, sort_keys=False))
    with open(folder / "train.log", "a") as log:
        result = subprocess.run(shlex.split(launcher) + [command, "train", str(folder / "train.yaml"), "--committee",
                                                         str(committee), "--resume"],
                                cwd=folder, stdout=log, stderr=subprocess.STDOUT)
    if result.returncode != 0 or not (folder / "committee.pt").is_file():
        raise RuntimeError(f"train.launcher: `{launcher} bpnn-ts train` failed (exit status {result.returncode}); "
                           f"its output is in {folder / 'train.log'}")
    return folder / "committee.pt"


def write_json(path: Path, data: Dict[str, Any]) -> None:
    write_text_atomically(path, json.dumps(data, indent=1))


def read_any(path: str) -> List[Atoms]:
    """Every structure of a file ASE reads (labelled or not)."""
    structures = ase.io.read(path, index=":")
    return structures if isinstance(structures, list) else [structures]


def generated_start(source: str, count: int, rattle: float, strain: float, seed: int) -> List[Atoms]:
    """`count` copies of the first structure of `source`, each strained (each cell component by
    up to `strain`, relative) and rattled (Gaussian, `rattle` Å)."""
    template = read_any(source)[0]
    rng = np.random.default_rng(seed)
    structures = []
    for _ in range(count):
        atoms = Atoms(template.numbers, positions=template.positions, cell=template.cell, pbc=template.pbc)
        if atoms.pbc.any():
            deformation = np.eye(3) + rng.uniform(-strain, strain, (3, 3))
            atoms.set_cell(atoms.cell.array @ deformation, scale_atoms=True)
        atoms.positions += rng.normal(0.0, rattle, atoms.positions.shape)
        structures.append(atoms)
    return structures


class ActiveLearning:
    """One `bpnn-ts learn` run (module docstring). `resume`: continue the run in `config.output`;
    without it a folder that holds a run is refused."""

    def __init__(self, config: LearnConfig, resume: bool = False, log: Callable[[str], None] = print):
        self.config = config
        self.output = Path(config.output)
        self.log = log
        state = self.output / "state.json"
        if state.is_file() and not resume:
            raise FileExistsError(f"{self.output} holds an active-learning run (state.json): continue it with "
                                  "--resume, or choose another `output`")
        if resume and not state.is_file():
            raise FileNotFoundError(f"--resume: {self.output} holds no active-learning run (no state.json)")
        if resume:
            self._check_same_config()
        self.output.mkdir(parents=True, exist_ok=True)
        if not state.is_file():
            write_text_atomically(self.output / "config.yaml", yaml.safe_dump(config.raw))
            self._state(0, "label")
        self.test: Optional[List[Atoms]] = read_structures(config.test) if config.test else None

    def _check_same_config(self) -> None:
        """Refuse to resume with another config than the run's (OUT/config.yaml): what earlier
        rounds did would no longer follow from it. The `stop` section may differ."""
        saved = yaml.safe_load((self.output / "config.yaml").read_text()) or {}
        changed = sorted(key for key in set(saved) | set(self.config.raw)
                         if key != "stop" and saved.get(key) != self.config.raw.get(key))
        if changed:
            raise ValueError(f"--resume: the config differs from the one {self.output} was run with (config.yaml) in "
                             f"{changed}; resume with that config (only `stop` may change), or give a new `output`")

    # ---- the run ----
    def run(self) -> Dict[str, Any]:
        """Rounds until a stop criterion holds; returns the last round's figures."""
        state = json.loads((self.output / "state.json").read_text())
        if state.get("stage") == "done":
            self.log(f"{self.output}: the run ended earlier ({state.get('stop')})")
            done = self.output / "final" / "final.json"
            return json.loads((done if done.is_file() else self._round(state["round"]) / "round.json").read_text())
        k = int(state["round"])
        while state.get("stage") != "final":
            figures = self._run_round(k)
            self._write_table()
            if figures["stop"]:
                self.log(f"stopped after round {k}: {figures['stop']}; the committee: {self._round(k) / 'committee.pt'}")
                if not self.config.final_epochs:
                    self._state(k, "done", figures["stop"])
                    return figures
                self._state(k, "final", figures["stop"])
                break
            k += 1
            self._state(k, "label")
        return self._final(k)

    def _final(self, k: int) -> Dict[str, Any]:
        """The stopped loop's labels (round k's) trained again for `train.final_epochs` epochs into
        OUT/final/ (committee.pt, members, log.txt, final.json: round k's figures with the final
        committee's test errors and training time)."""
        folder = self.output / "final"
        folder.mkdir(exist_ok=True)
        figures = json.loads((self._round(k) / "round.json").read_text())
        log = self._round_log(folder, k)
        started = time.perf_counter()
        every_label = Labels([self._round(j) / "labelled.extxyz" for j in range(k + 1)])
        committee = self._train(k, every_label, log, folder=folder, epochs=self.config.final_epochs)
        figures.update(final_committee=str(committee), final_epochs=self.config.final_epochs,
                       seconds_final=time.perf_counter() - started)
        if self.test:
            from ..export import load
            from ..training.metrics import evaluate_structures
            metrics = evaluate_structures(load(committee), self.test)
            figures["test_energy_rmse_mev_atom"] = metrics["energy_rmse_mev_atom"]
            figures["test_force_rmse_mev_a"] = 1000.0 * metrics["force_rmse"]
        write_json(folder / "final.json", figures)
        self._state(k, "done", figures["stop"])
        log(f"final committee ({self.config.final_epochs} epochs on {len(every_label)} labels): {committee}" +
            (f"; test F RMSE {figures['test_force_rmse_mev_a']:.1f} meV/Å" if self.test else ""))
        return figures

    def _run_round(self, k: int) -> Dict[str, Any]:
        folder = self._round(k)
        folder.mkdir(parents=True, exist_ok=True)
        seconds = self._seconds(folder)
        log = self._round_log(folder, k)

        started = time.perf_counter()
        to_label = self._to_label(k, folder)
        labelled, failures = label_all(self.config.labeller, to_label, folder / "labels", log)
        write_structures(folder / "labelled.extxyz", labelled)
        self._timed(folder, seconds, "label", started)
        every_label = Labels([self._round(j) / "labelled.extxyz" for j in range(k + 1)])
        log(f"{len(labelled)} new labels ({failures} failed); {len(every_label)} in all")

        self._state(k, "train")
        started = time.perf_counter()
        committee = self._train(k, every_label, log)
        self._timed(folder, seconds, "train", started)

        self._state(k, "explore")
        started = time.perf_counter()
        if not (folder / "explored.extxyz").is_file():
            rng = np.random.default_rng(self.config.seed * 7919 + k)
            trajectories = len(protocols(self.config.explore)) * self.config.explore.trajectories
            starts = every_label.pick([int(j) for j in rng.permutation(len(every_label))[:trajectories]])
            frames = explore(str(committee), starts, self.config.explore, self.config.select.upper,
                             self.config.seed * 7919 + k, log, folder / "lammps")
            write_structures(folder / "explored.extxyz", frames)
        frames = read_frames(folder / "explored.extxyz")
        self._timed(folder, seconds, "explore", started)

        self._state(k, "select")
        started = time.perf_counter()
        if not (folder / "selected.extxyz").is_file():
            from ..export import load
            chosen = select(load(committee), frames, self.config.select, self.config.seed * 7919 + k,
                            limit=self.config.stop.max_labels - len(every_label))
            write_structures(folder / "selected.extxyz", [frames[j] for j in chosen])
        selected = read_frames(folder / "selected.extxyz")
        self._timed(folder, seconds, "select", started)

        figures = self._figures(k, committee, every_label, labelled, failures, frames, selected, seconds)
        write_json(folder / "round.json", figures)
        log(f"round {k}: {figures['labels']} labels, {figures['explored']} frames explored, "
            f"{figures['candidates']} candidates ({100 * figures['fraction_above_lower']:.1f} % above "
            f"{self.config.select.lower:g} eV/Å), {figures['selected']} selected" +
            (f"; test F RMSE {figures['test_force_rmse_mev_a']:.1f} meV/Å" if self.test else "") +
            (f"; stop: {figures['stop']}" if figures["stop"] else ""))
        return figures

    # ---- stages ----
    def _to_label(self, k: int, folder: Path) -> List[Atoms]:
        path = folder / "to_label.extxyz"
        if not path.is_file():
            if k > 0:
                structures = read_frames(self._round(k - 1) / "selected.extxyz")
            elif self.config.start.structures is not None:
                structures = read_any(self.config.start.structures)
            else:
                start = self.config.start
                assert start.generate_from is not None
                structures = generated_start(start.generate_from, start.count, start.rattle, start.strain,
                                             self.config.seed)
            write_structures(path, structures)
        return read_frames(path)

    def _train(self, k: int, every_label: Labels, log: Callable[[str], None], folder: Optional[Path] = None,
               epochs: int = 0) -> Path:
        """Round k's committee (trained here unless its file exists; resumes an interrupted one), or
        with `folder` and `epochs` the final committee (from scratch, that many epochs)."""
        from ..training import train_committee
        folder = folder or self._round(k)
        committee = folder / "committee.pt"
        if committee.is_file():
            return committee
        every_label.write(folder / "train.extxyz")
        training = dict(self.config.train.get("training") or {})
        training.setdefault("progress", False)
        training.setdefault("plots", False)
        training.setdefault("seed", self.config.seed)
        model = self._pinned_model() if self.config.warm_start else self.config.train["model"]
        previous = [self._round(k - 1) / f"member_{m}" / "best.ckpt" for m in range(self.config.committee)]
        warm = self.config.warm_start and k > 0 and all(path.is_file() for path in previous) and not epochs
        if warm and self.config.warm_epochs:
            training["epochs"] = self.config.warm_epochs
        if epochs:
            training["epochs"] = epochs
        raw = dict(self.config.train, model=model, training=training, output=str(folder),
                   data=dict(self.config.train.get("data") or {}, train=str(folder / "train.extxyz"),
                             split={"validation": 0.1, "test": 0.0}))
        log(f"training a committee of {self.config.committee} on {len(every_label)} structures"
            + (f" ({epochs} epochs: the final committee)" if epochs else "")
            + (f" (each member from round {k - 1}'s, {training.get('epochs')} epochs)" if warm else "")
            + (f" ({self.config.train_launcher})" if self.config.train_launcher else ""))
        if self.config.train_launcher:
            return launched_training(self.config.train_launcher, with_absolute_paths(raw, Path(self.config.base)),
                                     self.config.committee, folder)
        return train_committee(parse_train_config(raw, self.config.base), self.config.committee, resume=True, log=log,
                               initial_weights=[str(path) for path in previous] if warm else (),
                               workers=self.config.train_workers)

    def _pinned_model(self) -> Dict[str, Any]:
        """The `train.model` mapping with automatic symmetry functions pinned to the start labels'
        closest pairs (`r_lower`), so that every round has the same functions (warm starts; from
        scratch, each round's functions start at its own data's closest pair)."""
        from ..config import parse_model_config
        from ..function_pool import closest_pair_start
        from ..function_selection import without_selection
        model = dict(self.config.train["model"])
        functions = model.get("symmetry_functions", "auto")
        options = dict(functions["auto"] or {}) if isinstance(functions, dict) and "auto" in functions else None
        if functions == "auto" or (options is not None and "r_lower" not in options):
            start = read_frames(self._round(0) / "labelled.extxyz")
            cutoff = parse_model_config(without_selection(model), self.config.base).cutoff
            options = dict(options or {}, r_lower=closest_pair_start(start, cutoff))
            model["symmetry_functions"] = {"auto": options}
        return model

    def _figures(self, k: int, committee: Path, every_label: Labels, labelled: List[Atoms], failures: int,
                 frames: List[Atoms], selected: List[Atoms], seconds: Dict[str, float]) -> Dict[str, Any]:
        spreads = np.array([frame.info[SPREAD] for frame in frames])
        above = float((spreads >= self.config.select.lower).mean()) if len(frames) else 0.0
        figures: Dict[str, Any] = {
            "round": k, "labels": len(every_label), "new_labels": len(labelled), "failed_labels": failures,
            "explored": len(frames), "candidates": len(candidates(frames, self.config.select)),
            "selected": len(selected), "fraction_above_lower": above,
            "spread_median": float(np.median(spreads)) if len(frames) else float("nan"),
            "spread_max": float(spreads.max()) if len(frames) else float("nan"),
            "test_energy_rmse_mev_atom": float("nan"), "test_force_rmse_mev_a": float("nan")}
        if self.test:
            from ..export import load
            from ..training.metrics import evaluate_structures
            metrics = evaluate_structures(load(committee), self.test)
            figures["test_energy_rmse_mev_atom"] = metrics["energy_rmse_mev_atom"]
            figures["test_force_rmse_mev_a"] = 1000.0 * metrics["force_rmse"]
        for stage in ("label", "train", "explore", "select"):
            figures[f"seconds_{stage}"] = seconds.get(stage, 0.0)
        medians = [json.loads((self._round(j) / "round.json").read_text())["spread_median"] for j in range(k)]
        reason = stop_reason(self.config, medians + [figures["spread_median"]], above, len(frames), len(every_label),
                             len(selected), k)
        figures["stop"] = reason
        return figures

    # ---- files ----
    def _round(self, k: int) -> Path:
        return self.output / f"round-{k}"

    def _state(self, k: int, stage: str, stop: str = "") -> None:
        write_json(self.output / "state.json", {"round": k, "stage": stage, "stop": stop})

    def _seconds(self, folder: Path) -> Dict[str, float]:
        path = folder / "seconds.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    def _timed(self, folder: Path, seconds: Dict[str, float], stage: str, started: float) -> None:
        """Add the stage's time (a resumed stage adds to what its killed run had spent, as far as
        saved) and save it."""
        seconds[stage] = seconds.get(stage, 0.0) + time.perf_counter() - started
        write_json(folder / "seconds.json", seconds)

    def _round_log(self, folder: Path, k: int) -> Callable[[str], None]:
        def log(line: str) -> None:
            self.log(f"[round {k}] {line}")
            with open(folder / "log.txt", "a") as handle:
                handle.write(line + "\n")
        return log

    def _write_table(self) -> None:
        """learning.csv (a row per finished round) and learning.png from the rounds' round.json."""
        rows = []
        k = 0
        while (self._round(k) / "round.json").is_file():
            rows.append(json.loads((self._round(k) / "round.json").read_text()))
            k += 1

        def write(temporary: str) -> None:
            with open(temporary, "w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=COLUMNS)
                writer.writeheader()
                for row in rows:
                    writer.writerow({c: row.get(c, "") for c in COLUMNS})
        write_atomically(self.output / "learning.csv", write)
        plot_learning(rows, self.output / "learning.png", self.config.select.lower)


def plot_learning(rows: List[Dict[str, Any]], path: Path, lower: float) -> None:
    """Test force error and committee spreads (with the selection's `lower` threshold, eV/Å)
    against the number of labels (needs matplotlib; nothing without it)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    labels = [row["labels"] for row in rows]
    figure, (errors, spreads) = plt.subplots(1, 2, figsize=(9, 3.5))
    errors.plot(labels, [row["test_force_rmse_mev_a"] for row in rows], "o-")
    errors.set_xlabel("labelled structures")
    errors.set_ylabel("test force RMSE (meV/Å)")
    errors.set_title("test error" if any(np.isfinite(row["test_force_rmse_mev_a"]) for row in rows)
                     else "test error (no `test` set)")
    spreads.plot(labels, [row["spread_median"] for row in rows], "o-", label="median")
    spreads.plot(labels, [row["spread_max"] for row in rows], "s--", label="max")
    spreads.axhline(lower, color="grey", linestyle=":", label="select.lower")
    spreads.set_xlabel("labelled structures")
    spreads.set_ylabel("force spread (eV/Å)")
    spreads.set_title("committee spread over the explored frames")
    spreads.set_yscale("log")
    spreads.legend()
    figure.tight_layout()
    write_atomically(path, lambda temporary: figure.savefig(temporary, format="png", dpi=100))
    plt.close(figure)
