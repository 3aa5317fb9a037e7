"""The training output folder: what a run writes there, refusing to overwrite an earlier run
unless told to, and metrics.csv."""

import csv
from pathlib import Path
from typing import Dict, List, Sequence

RUN_FILES = ("checkpoint.ckpt", "best.ckpt", "model.pt")  # a folder holding any of these holds a run
PLOT_PATTERNS = ("parity_*.png", "learning_curve.png")
METRICS_FILE = "metrics.csv"


class OutputExistsError(FileExistsError):
    """The output folder already holds a training run (and neither resume nor overwrite was asked)."""


def run_files(folder: Path, names: Sequence[str] = RUN_FILES) -> List[str]:
    """The names in `names` that exist in `folder`."""
    return [name for name in names if (folder / name).is_file()]


def check_output(folder: Path, resume: bool, overwrite: bool, names: Sequence[str] = RUN_FILES) -> None:
    """Refuse to start a new run in a folder that holds one (files `names`), unless `resume`
    (continue it) or `overwrite` (replace it); the two exclude each other."""
    if resume and overwrite:
        raise ValueError("`resume` and `overwrite` exclude each other, got both: resume continues the run "
                         f"in {folder}, overwrite replaces it")
    found = run_files(folder, names)
    if found and not resume and not overwrite:
        raise OutputExistsError(
            f"the output folder {folder} already holds a training run ({', '.join(found)}); "
            "continue it with --resume (Python: resume=True), replace it with --overwrite "
            "(overwrite=True), or set `output` to another folder")


def clear_outputs(folder: Path) -> List[Path]:
    """Remove what an earlier run wrote to `folder` (checkpoints, model.pt, metrics.csv, plots)
    so that nothing stale is mixed with the new run; returns the removed paths."""
    paths = [folder / name for name in (*RUN_FILES, METRICS_FILE)]
    paths += [path for pattern in PLOT_PATTERNS for path in folder.glob(pattern)]
    removed = [path for path in paths if path.is_file()]
    for path in removed:
        path.unlink()
    return removed


def write_metrics_csv(history: List[Dict[str, float]], folder: Path, empty_columns: Sequence[str] = ()) -> Path:
    """One row per epoch; columns in order of first appearance, then `empty_columns` (written
    with empty cells where no row has them)."""
    columns: List[str] = []
    for row in history:
        columns += [k for k in row if k not in columns]
    columns += [k for k in empty_columns if k not in columns]
    temporary = folder / (METRICS_FILE + ".tmp")
    with open(temporary, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(history)
    return temporary.replace(folder / METRICS_FILE)
