"""Choosing what to label from a round's explored frames.

`spread`: the candidates are the frames whose committee force spread is in [lower, upper); at
most `per_round` of them are taken by farthest-point sampling in descriptor space (a frame's
fingerprint: per element, the mean of its atoms' scaled symmetry functions), starting from the
candidate with the largest spread, so near-duplicates of one trajectory are not labelled twice.
Where no frame lies in the window but some lie above it (a committee that fails in the MD it
drives), the `per_round` frames with the lowest spreads above it are taken: the loop learns from
where its MD went wrong instead of stopping. `random`: `per_round` frames drawn uniformly from
all explored frames (the baseline with the same label budget)."""

from typing import Any, List, Optional, Sequence

import numpy as np
import torch
from ase import Atoms

from .. import keys
from .config import Select
from .exploration import SPREAD


def fingerprints(model: Any, frames: Sequence[Atoms]) -> np.ndarray:
    """(n_frames, n_elements * max F): per element of `model` (a loaded model file), the mean scaled
    symmetry functions of the frame's atoms of that element (zeros where it has none)."""
    elements = [int(z) for z in model.atomic_numbers()]
    rows = []
    for atoms in frames:
        out = model.compute_descriptors(torch.tensor(atoms.positions), torch.tensor(atoms.numbers),
                                        torch.tensor(atoms.cell.array), torch.tensor(atoms.pbc))
        scaled = out[keys.SCALED_DESCRIPTORS].detach().double().numpy()  # (N, max F)
        parts = [scaled[atoms.numbers == z].mean(axis=0) if (atoms.numbers == z).any() else np.zeros(scaled.shape[1])
                 for z in elements]
        rows.append(np.concatenate(parts))
    return np.array(rows)


def farthest_points(points: np.ndarray, count: int, first: int) -> List[int]:
    """`count` row indices of `points`, from `first` on, each the farthest from those chosen."""
    chosen = [first]
    distance = np.linalg.norm(points - points[first], axis=1)
    while len(chosen) < min(count, len(points)):
        following = int(np.argmax(distance))
        if distance[following] <= 0.0:  # only duplicates left
            break
        chosen.append(following)
        distance = np.minimum(distance, np.linalg.norm(points - points[following], axis=1))
    return chosen


def candidates(frames: Sequence[Atoms], settings: Select) -> List[int]:
    """Indices of the frames whose spread is in [lower, upper)."""
    return [k for k, frame in enumerate(frames) if settings.lower <= frame.info[SPREAD] < settings.upper]


def select(model: Any, frames: Sequence[Atoms], settings: Select, seed: int, limit: Optional[int] = None) -> List[int]:
    """Indices of the frames to label this round (`settings.strategy`; at most `per_round`, and at
    most `limit`: what is left of the label budget)."""
    count = settings.per_round if limit is None else max(0, min(settings.per_round, limit))
    if count == 0:
        return []
    if settings.strategy == "random":
        rng = np.random.default_rng(seed)
        return sorted(int(k) for k in rng.choice(len(frames), size=min(count, len(frames)), replace=False))
    pool = candidates(frames, settings)
    if not pool:  # nothing in the window: the least uncertain of the frames above it, if any
        above = sorted((frames[k].info[SPREAD], k) for k in range(len(frames)) if frames[k].info[SPREAD] >= settings.upper)
        return sorted(k for _, k in above[:count])
    spreads = np.array([frames[k].info[SPREAD] for k in pool])
    chosen = farthest_points(fingerprints(model, [frames[k] for k in pool]), count, int(np.argmax(spreads)))
    return sorted(pool[k] for k in chosen)
