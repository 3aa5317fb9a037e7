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
    `every` calls that extrapolate, and whenever a call's number of extrapolating atoms is a new
    high (a growing blow-up is never hidden by the rate limit); stop: raise ExtrapolationError
    when more than `stop_above` atoms extrapolate in one call (default 0: any), warning below
    that as "warn" does. `summary()` says how many calls extrapolated and the worst one; the
    calculator prints it when the process ends."""

    def __init__(self, policy: str = "warn", every: int = 100, stop_above: int = 0):
        if policy not in POLICIES:
            raise ValueError(f"extrapolation policy must be one of {list(POLICIES)}, got {policy!r}")
        if every < 1:
            raise ValueError(f"`every` must be >= 1, got {every}")
        if isinstance(stop_above, bool) or not isinstance(stop_above, (int, np.integer)) or stop_above < 0:
            raise ValueError(f"`stop_above` must be an integer >= 0 (atoms), got {stop_above!r}")
        self.policy = policy
        self.every = every
        self.stop_above = int(stop_above)
        self.calls = 0  # calls checked
        self.events = 0  # calls that extrapolated
        self.worst = 0  # most extrapolating atoms in one call
        self.worst_call = 0  # (1-based) the call with the most

    @property
    def active(self) -> bool:
        return self.policy != "ignore"

    def apply(self, counts: Optional[np.ndarray], numbers: Sequence[int]) -> None:
        if counts is None:
            return
        self.calls += 1
        atoms = int(np.count_nonzero(counts))
        if atoms == 0:
            return
        if self.policy == "stop" and atoms > self.stop_above:
            limit = f"more than {self.stop_above} atoms" if self.stop_above else "policy 'stop'"
            raise ExtrapolationError(f"{describe(counts, numbers)} ({limit}; use 'warn' or 'ignore' to carry on)")
        new_high = atoms > self.worst
        if new_high:
            self.worst, self.worst_call = atoms, self.calls
        if self.events % self.every == 0 or new_high:  # the message only when it is shown (it costs ~50 µs)
            message = describe(counts, numbers)
            why = "a new high" if new_high and self.events % self.every else f"warned every {self.every}"
            suffix = f" [extrapolating call {self.events + 1} of {self.calls}; {why}]"
            warnings.warn(message + suffix, ExtrapolationWarning, stacklevel=user_stacklevel())
        self.events += 1

    def summary(self) -> str:
        """One line: calls checked, how many extrapolated, the worst call ("" before any call)."""
        if self.calls == 0:
            return ""
        if self.events == 0:
            return f"extrapolation: none in {self.calls} calls"
        return (f"extrapolation: {self.events} of {self.calls} calls had atoms outside the training range; "
                f"the worst, call {self.worst_call}, {self.worst} atoms")
