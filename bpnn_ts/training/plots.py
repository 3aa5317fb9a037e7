"""Parity plots and the learning curve as PNG files (needs matplotlib; skipped without it)."""

from pathlib import Path
from typing import Dict, List

import torch


def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        return plt
    except ImportError:
        return None


def parity_plot(store: Dict[str, List[torch.Tensor]], path: Path, title: str) -> bool:
    """Predicted vs reference energies per atom and force components; False without matplotlib."""
    plt = _pyplot()
    if plt is None:
        return False
    figure, axes = plt.subplots(1, 2, figsize=(9, 4.2))
    pairs = [("energy_ref", "energy_pred", "energy per atom (eV)"), ("force_ref", "force_pred", "force component (eV/Å)")]
    for axis, (ref_key, pred_key, label) in zip(axes, pairs):
        ref = torch.cat(store[ref_key]).reshape(-1).cpu().numpy()
        pred = torch.cat(store[pred_key]).reshape(-1).cpu().numpy()
        if ref.size:
            axis.scatter(ref, pred, s=3, alpha=0.5)
            low, high = float(min(ref.min(), pred.min())), float(max(ref.max(), pred.max()))
            axis.plot([low, high], [low, high], "k-", lw=0.8)
        axis.set_xlabel(f"reference {label}")
        axis.set_ylabel(f"predicted {label}")
    figure.suptitle(f"parity: {title}")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def learning_curve(history: List[Dict[str, float]], path: Path) -> bool:
    """Training and validation loss per epoch (log scale); False without matplotlib."""
    plt = _pyplot()
    if plt is None or not history:
        return False
    figure, axis = plt.subplots(figsize=(6, 4))
    epochs = [row["epoch"] for row in history]
    axis.semilogy(epochs, [row["train_loss"] for row in history], label="training loss")
    axis.semilogy(epochs, [row["val_loss"] for row in history], label="validation loss")
    axis.set_xlabel("epoch")
    axis.set_ylabel("loss")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True
