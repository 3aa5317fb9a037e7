"""Extrapolation policy: what a user sees of symmetry functions outside the range [Gmin, Gmax]
seen in training.

The model counts them per atom in its graph (`count_extrapolation=True`, output
keys.EXTRAPOLATION; Scaling.count_outside); `ExtrapolationPolicy` turns counts into what a user sees: nothing,
rate-limited warnings, or an error naming the atoms. The C++ loader, bpnn_run and the LAMMPS
pair style apply the same three policies.
"""

import warnings
from typing import Optional, Sequence

import numpy as np

from .elements import symbol
from .errors import user_stacklevel

POLICIES = ("ignore", "warn", "stop")


class ExtrapolationWarning(UserWarning):
    """Atoms whose symmetry functions left the training range (policy "warn")."""


class ExtrapolationError(ValueError):
    """Atoms whose symmetry functions left the training range (policy "stop")."""


def describe(counts: np.ndarray, numbers: Sequence[int], limit: int = 10) -> str:
    """"3 atoms (7 functions) outside the training range: 4 (O, 2), ..." from per-atom counts."""
    counts = np.asarray(counts)
    atoms = np.flatnonzero(counts)
    listed = ", ".join(f"{i} ({symbol(int(numbers[i]))}, {int(counts[i])})" for i in atoms[:limit])
    more = f", and {len(atoms) - limit} more" if len(atoms) > limit else ""
    return (f"{len(atoms)} atom(s) ({int(counts.sum())} symmetry function values) outside the training "
            f"range: atom index (element, functions) {listed}{more}")


class ExtrapolationPolicy:
    """ignore: count nothing (no cost); warn: an ExtrapolationWarning at most once every
    `every` calls that extrapolate; stop: raise ExtrapolationError."""

    def __init__(self, policy: str = "warn", every: int = 100):
        if policy not in POLICIES:
            raise ValueError(f"extrapolation policy must be one of {list(POLICIES)}, got {policy!r}")
        if every < 1:
            raise ValueError(f"`every` must be >= 1, got {every}")
        self.policy = policy
        self.every = every
        self.events = 0  # calls that extrapolated

    @property
    def active(self) -> bool:
        return self.policy != "ignore"

    def apply(self, counts: Optional[np.ndarray], numbers: Sequence[int]) -> None:
        if counts is None or not np.any(counts):
            return
        message = describe(counts, numbers)
        if self.policy == "stop":
            raise ExtrapolationError(message + " (policy 'stop'; use 'warn' or 'ignore' to carry on)")
        if self.policy == "warn":
            if self.events % self.every == 0:
                suffix = f" [extrapolating call {self.events + 1}; warned every {self.every}]"
                warnings.warn(message + suffix, ExtrapolationWarning, stacklevel=user_stacklevel())
            self.events += 1
