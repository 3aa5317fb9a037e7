"""Cutoff functions f_c(r), numbered as n2p2's `cutoff_type` (FORMAT.md).

With r_ci = alpha * r_c and x = (r - r_ci) / (r_c - r_ci):
  0 hard   f = 1
  1 cos    f = (cos(pi x) + 1) / 2
  2 tanhu  f = tanh^3(1 - r / r_c)           (ignores alpha; f(0) != 1)
  3 tanh   f = c tanh^3(1 - r / r_c), c = ((e + 1/e) / (e - 1/e))^3 so that f(0) = 1
  4 exp    f = exp(1 - 1 / (1 - x^2))
  5 poly1  f = (2x - 3) x^2 + 1
  6 poly2  f = ((15 - 6x) x - 10) x^3 + 1
  7 poly3  f = (x (x (20x - 70) + 84) - 35) x^4 + 1
  8 poly4  f = (x (x ((315 - 70x) x - 540) + 420) - 126) x^5 + 1
f = 1 for r < r_ci (types that use alpha) and f = 0 for r >= r_c.
"""

import math
from typing import Dict, Tuple

import torch

CUTOFF_TYPES: Dict[str, int] = {
    "hard": 0, "cos": 1, "tanhu": 2, "tanh": 3, "exp": 4,
    "poly1": 5, "poly2": 6, "poly3": 7, "poly4": 8,
}
CUTOFF_NAMES: Dict[int, str] = {v: k for k, v in CUTOFF_TYPES.items()}


def cutoff_type_id(name_or_id) -> int:
    """n2p2 cutoff-type number of a name ("cos") or of a number (0..8)."""
    if isinstance(name_or_id, str) and name_or_id in CUTOFF_TYPES:
        return CUTOFF_TYPES[name_or_id]
    if isinstance(name_or_id, int) and not isinstance(name_or_id, bool) and name_or_id in CUTOFF_NAMES:
        return name_or_id
    raise ValueError(f"cutoff function type must be one of {sorted(CUTOFF_TYPES)} "
                     f"(or n2p2 numbers 0-8), got {name_or_id!r}")


def cutoff_function(r: torch.Tensor, r_c: torch.Tensor, kind: int, alpha: float) -> torch.Tensor:
    """f_c(r) for distances `r` (..., K) and cutoffs `r_c` (K,) (Å); same shape as `r`.

    Safe under autograd: no NaN/inf gradients for r outside (r_ci, r_c).
    """
    inside = r < r_c
    if kind == 2 or kind == 3:
        t = torch.tanh(torch.where(inside, 1.0 - r / r_c, torch.zeros_like(r)))
        f = t * t * t
        if kind == 3:
            f = f * 2.2637537952253504  # ((e + 1/e) / (e - 1/e))^3
        return torch.where(inside, f, torch.zeros_like(r))
    if kind == 0:
        return inside.to(r.dtype)
    r_ci = alpha * r_c
    x = (r - r_ci) / (r_c - r_ci)
    in_band = inside & (x > 0.0)
    x = torch.where(in_band, x, torch.full_like(r, 0.5))  # keeps every branch finite
    if kind == 1:
        f = 0.5 * (torch.cos(math.pi * x) + 1.0)
    elif kind == 4:
        f = torch.exp(1.0 - 1.0 / (1.0 - x * x))
    elif kind == 5:
        f = (2.0 * x - 3.0) * x * x + 1.0
    elif kind == 6:
        f = ((15.0 - 6.0 * x) * x - 10.0) * x * x * x + 1.0
    elif kind == 7:
        x2 = x * x
        f = (x * (x * (20.0 * x - 70.0) + 84.0) - 35.0) * x2 * x2 + 1.0
    elif kind == 8:
        x2 = x * x
        f = (x * (x * ((315.0 - 70.0 * x) * x - 540.0) + 420.0) - 126.0) * x2 * x2 * x + 1.0
    else:
        raise ValueError("unknown cutoff type " + str(kind))
    f = torch.where(in_band, f, torch.ones_like(r))
    return torch.where(inside, f, torch.zeros_like(r))


def cutoff_function_and_slope(r: torch.Tensor, r_c: torch.Tensor, kind: int,
                              alpha: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """(f_c(r), df_c/dr) for distances `r` and cutoffs `r_c` broadcastable to it (Å, 1/Å).

    The slope is analytic (no autograd), 0 outside (r_ci, r_c); the hard cutoff
    (type 0) has slope 0 everywhere.
    """
    inside = r < r_c
    zeros = torch.zeros_like(r)
    if kind == 0:
        return inside.to(r.dtype), zeros
    if kind == 2 or kind == 3:
        t = torch.tanh(torch.where(inside, 1.0 - r / r_c, zeros))
        scale = 2.2637537952253504 if kind == 3 else 1.0
        f = t * t * t
        if kind == 3:
            f = f * scale
        slope = -3.0 * scale * t * t * (1.0 - t * t) / r_c
        return torch.where(inside, f, zeros), torch.where(inside, slope, zeros)
    r_ci = alpha * r_c
    width = r_c - r_ci
    x = (r - r_ci) / width
    in_band = inside & (x > 0.0)
    x = torch.where(in_band, x, torch.full_like(r, 0.5))
    if kind == 1:
        f = 0.5 * (torch.cos(math.pi * x) + 1.0)
        dfdx = -0.5 * math.pi * torch.sin(math.pi * x)
    elif kind == 4:
        one_minus = 1.0 - x * x
        f = torch.exp(1.0 - 1.0 / one_minus)
        dfdx = -2.0 * x * f / (one_minus * one_minus)
    elif kind == 5:
        f = (2.0 * x - 3.0) * x * x + 1.0
        dfdx = 6.0 * x * (x - 1.0)
    elif kind == 6:
        f = ((15.0 - 6.0 * x) * x - 10.0) * x * x * x + 1.0
        xm = x * (x - 1.0)
        dfdx = -30.0 * xm * xm
    elif kind == 7:
        x2 = x * x
        f = (x * (x * (20.0 * x - 70.0) + 84.0) - 35.0) * x2 * x2 + 1.0
        xm = x * (x - 1.0)
        dfdx = 140.0 * xm * xm * xm
    elif kind == 8:
        x2 = x * x
        f = (x * (x * ((315.0 - 70.0 * x) * x - 540.0) + 420.0) - 126.0) * x2 * x2 * x + 1.0
        xm = x * (x - 1.0)
        xm2 = xm * xm
        dfdx = -630.0 * xm2 * xm2
    else:
        raise ValueError("unknown cutoff type " + str(kind))
    f = torch.where(in_band, f, torch.ones_like(r))
    slope = torch.where(in_band, dfdx / width, zeros)
    return torch.where(inside, f, zeros), slope
