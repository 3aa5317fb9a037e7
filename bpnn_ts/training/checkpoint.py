"""Training checkpoints: written atomically (temporary file, then rename), read with checks."""

from pathlib import Path
from typing import Any, Dict, Union

import torch

from ..atomic_write import write_atomically

CHECKPOINT_FORMAT = "bpnn_ts-checkpoint"
CHECKPOINT_VERSION = 1


def save_checkpoint(state: Dict[str, Any], path: Union[str, Path]) -> Path:
    """Write `state` to `path` so that a crash never leaves a half-written file."""
    record = dict(state, format=CHECKPOINT_FORMAT, version=CHECKPOINT_VERSION)
    return write_atomically(path, lambda temporary: torch.save(record, temporary))


def load_checkpoint(path: Union[str, Path]) -> Dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`; clear errors for anything else."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:
        raise ValueError(f"{path}: not a readable checkpoint ({type(error).__name__}: {error})") from error
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a bpnn_ts training checkpoint")
    if state.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{path}: checkpoint version {state.get('version')}, this package reads {CHECKPOINT_VERSION}")
    return state


def is_checkpoint(path: Union[str, Path]) -> bool:
    """True for files named *.ckpt (what the trainer writes)."""
    return Path(path).suffix == ".ckpt"
