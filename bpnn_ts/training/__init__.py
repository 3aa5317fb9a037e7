"""Training: config, data batches, the trainer, metrics and checkpoints."""

from .committee_run import train_committee  # noqa: E402  (after trainer: it builds on it)
from .config import TrainConfig, load_train_config, parse_train_config
from .trainer import Trainer, fit_atomic_energies, model_from_checkpoint, split_structures

__all__ = ["TrainConfig", "Trainer", "fit_atomic_energies", "load_train_config", "model_from_checkpoint",
           "parse_train_config", "split_structures", "train_committee"]
