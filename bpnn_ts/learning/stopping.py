"""When the active-learning loop stops (`stop` in the config), from a round's figures and the
committee spreads of the rounds before it.

In order: fewer than `stop.fraction` of the explored frames above `select.lower`; the explored
frames' median spread has levelled off (`stop.plateau`, below); `stop.max_labels` labels
reached; nothing selected; `stop.max_rounds` rounds run.

The plateau: a round *levels off* when its median spread (eV/Å, over its explored frames) is not
at least `plateau` (a fraction) below the lowest median of the rounds before it, and is itself
below `select.upper` (a round whose MD fails is not a plateau). The loop stops after `patience`
such rounds in a row: its committees no longer learn from what their MD visits. This needs no
threshold in eV/Å, whose right value depends on the committee (members trained briefly keep a
spread floor of their own, where `stop.fraction` never fires).
"""

import math
from typing import List, Sequence

from .config import LearnConfig


def levelled_off_rounds(medians: Sequence[float], plateau: float, upper: float) -> int:
    """How many of the last rounds in a row levelled off (medians: every round's median spread
    so far, eV/Å, this round's last; NaN for a round with no frames)."""
    count = 0
    for k in range(len(medians) - 1, 0, -1):
        earlier = [m for m in medians[:k] if not math.isnan(m)]
        median = medians[k]
        if not earlier or math.isnan(median) or median >= upper or median < (1.0 - plateau) * min(earlier):
            break
        count += 1
    return count


def stop_reason(config: LearnConfig, medians: List[float], above: float, explored: int, labels: int,
                selected: int, k: int) -> str:
    """Why round k ends the loop ("" where it goes on). medians: the median spreads of rounds
    0..k; above: the fraction of round k's explored frames above `select.lower`."""
    stop = config.stop
    if explored and above < stop.fraction:
        return f"{100 * above:.2f} % of the explored frames above {config.select.lower:g} eV/Å " \
               f"(stop.fraction {100 * stop.fraction:g} %)"
    if stop.plateau > 0 and levelled_off_rounds(medians, stop.plateau, config.select.upper) >= stop.patience:
        best = min(m for m in medians[:-stop.patience] if not math.isnan(m))
        return f"the committee spread levelled off: median {medians[-1]:.3g} eV/Å over the explored frames, " \
               f"not {100 * stop.plateau:g} % below {best:.3g} in the last {stop.patience} rounds " \
               f"(stop.plateau, stop.patience)"
    if labels >= stop.max_labels:
        return f"stop.max_labels ({stop.max_labels}) reached"
    if not selected:
        return "nothing selected (no explored frame at or above select.lower)"
    if k + 1 >= stop.max_rounds:
        return f"stop.max_rounds ({stop.max_rounds}) reached"
    return ""
