"""Parity plots and the learning curve as PNG files (needs matplotlib; skipped without it)."""

from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch

from .metrics import summarize


def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        return plt
    except ImportError:
        return None


def parity_labels(store: Dict[str, List[torch.Tensor]]) -> Tuple[str, str]:
    """The error text of each parity panel: RMSE and MAE of the energy per atom (meV/atom) and
    of the force components (eV/Å), from the same errors and formulas as the metrics
    (`metrics.summarize`); "no forces" where the data has none."""
    metrics = summarize(store, elements=())
    energy = (f"RMSE {metrics['energy_rmse_mev_atom']:.3f} meV/atom\n"
              f"MAE {metrics['energy_mae_mev_atom']:.3f} meV/atom")
    if "force_rmse" not in metrics:
        return energy, "no forces"
    return energy, f"RMSE {metrics['force_rmse']:.4f} eV/Å\nMAE {metrics['force_mae']:.4f} eV/Å"


def parity_plot(store: Dict[str, List[torch.Tensor]], path: Path, title: str) -> Optional[List[str]]:
    """Predicted vs reference energies per atom and force components, each panel with its RMSE
    and MAE (`parity_labels`); returns the texts drawn on the panels, None without matplotlib."""
    plt = _pyplot()
    if plt is None:
        return None
    figure, axes = plt.subplots(1, 2, figsize=(9, 4.2))
    pairs = [("energy_ref", "energy_pred", "energy per atom (eV)"), ("force_ref", "force_pred", "force component (eV/Å)")]
    for axis, (ref_key, pred_key, label), errors in zip(axes, pairs, parity_labels(store)):
        ref = torch.cat(store[ref_key]).reshape(-1).cpu().numpy()
        pred = torch.cat(store[pred_key]).reshape(-1).cpu().numpy()
        if ref.size:
            axis.scatter(ref, pred, s=3, alpha=0.5)
            low, high = float(min(ref.min(), pred.min())), float(max(ref.max(), pred.max()))
            axis.plot([low, high], [low, high], "k-", lw=0.8)
        axis.text(0.04, 0.96, errors, transform=axis.transAxes, va="top", ha="left", fontsize=9,
                  bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.8})
        axis.set_xlabel(f"reference {label}")
        axis.set_ylabel(f"predicted {label}")
    figure.suptitle(f"parity: {title}")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    shown = [text.get_text() for axis in axes for text in axis.texts]
    plt.close(figure)
    return shown


def learning_curve(history: List[Dict[str, float]], path: Path, loss_unit: str) -> Optional[List[str]]:
    """Per epoch: the training and the validation loss (`loss_unit` says what the loss is), the
    energy RMSE (meV/atom) and the force RMSE (meV/Å) of the validation set (without validation
    structures: of the training set after each epoch), log scales. Returns the panels' y labels
    and legend entries, None without matplotlib or history."""
    plt = _pyplot()
    if plt is None or not history:
        return None
    monitored = "val" if "val_loss" in history[-1] else "train_set"
    name = "validation" if monitored == "val" else "training set (after the epoch)"
    epochs = [row["epoch"] for row in history]
    figure, axes = plt.subplots(1, 3, figsize=(13, 4))
    axes[0].semilogy(epochs, [row["train_loss"] for row in history], label="training (during the epoch)")
    axes[0].semilogy(epochs, [row[f"{monitored}_loss"] for row in history], label=name)
    axes[0].set_ylabel(f"loss ({loss_unit})")
    axes[0].legend()
    panels = [("energy_rmse_mev_atom", 1.0, "energy RMSE (meV/atom)"), ("force_rmse", 1000.0, "force RMSE (meV/Å)")]
    for axis, (key, factor, label) in zip(axes[1:], panels):
        values = [row[f"{monitored}_{key}"] for row in history if f"{monitored}_{key}" in row]
        if len(values) == len(history):
            axis.semilogy(epochs, [factor * v for v in values], label=name)
            axis.legend()
        axis.set_ylabel(label)
    for axis in axes:
        axis.set_xlabel("epoch")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    shown = [axis.get_ylabel() for axis in axes] + [t.get_text() for axis in axes if axis.get_legend()
                                                     for t in axis.get_legend().get_texts()]
    plt.close(figure)
    return shown
