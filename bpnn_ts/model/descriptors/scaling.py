"""Input scaling of the element networks (n2p2's five kinds) and the training range it records."""

from typing import Dict, List

import torch

SCALING_TYPES: Dict[str, int] = {"none": 0, "scale": 1, "center": 2, "scalecenter": 3, "sigma": 4}


class Scaling(torch.nn.Module):
    """n2p2's five input scalings as G_hat = (G - shift) * factor + offset (per function).

      none        G
      scale       Smin + (Smax - Smin)(G - Gmin) / (Gmax - Gmin)
      center      G - Gmean
      scalecenter Smin + (Smax - Smin)(G - Gmean) / (Gmax - Gmin)
      sigma       Smin + (Smax - Smin)(G - Gmean) / sigma
    A function with Gmax == Gmin (or sigma == 0) gets factor 0, as in n2p2. Statistics fitted to
    training data may also hold *negligible* functions constant (factor 0): those whose range is
    below `negligible` x the element's widest range (values ~1e-140 of wide angular functions,
    whose scaled input would follow round-off and the closest triplet only).
    The statistics (Gmin, Gmax, Gmean, sigma) are kept for extrapolation checks.
    """

    # buffers (n_functions,) each: the statistics, and the transform they give
    g_min: torch.Tensor
    g_max: torch.Tensor
    g_mean: torch.Tensor
    g_sigma: torch.Tensor
    shift: torch.Tensor
    factor: torch.Tensor
    offset: torch.Tensor

    def __init__(self, n_functions: int, kind: str = "none", s_min: float = 0.0, s_max: float = 1.0):
        super().__init__()
        if kind not in SCALING_TYPES:
            raise ValueError(f"scaling type must be one of {sorted(SCALING_TYPES)}, got {kind!r}")
        self.kind = kind
        self.s_min = float(s_min)
        self.s_max = float(s_max)
        zeros = torch.zeros(n_functions, dtype=torch.float64)
        for name in ("g_min", "g_max", "g_mean", "g_sigma", "shift", "offset"):
            self.register_buffer(name, zeros.clone())
        self.register_buffer("factor", torch.ones(n_functions, dtype=torch.float64))
        self.has_statistics = False  # until set_statistics: identity scaling

    @torch.jit.unused
    def set_statistics(self, g_min, g_max, g_mean, g_sigma, negligible: float = 0.0) -> torch.Tensor:
        """Set the statistics (each (n_functions,)) and derive shift/factor/offset; functions whose
        range is below `negligible` x the widest range get factor 0 (0: none, as n2p2). Returns
        the (n_functions,) bool mask of the functions so held constant."""
        stats = [torch.as_tensor(v, dtype=self.factor.dtype, device=self.factor.device).reshape(-1)
                 for v in (g_min, g_max, g_mean, g_sigma)]
        for name, value in zip(("g_min", "g_max", "g_mean", "g_sigma"), stats):
            if value.shape != self.factor.shape:
                raise ValueError(f"scaling statistic `{name}` must have shape "
                                 f"{tuple(self.factor.shape)}, got {tuple(value.shape)}")
            if not torch.isfinite(value).all():
                raise ValueError(f"scaling statistic `{name}` must be finite, got {value.tolist()}")
            getattr(self, name).copy_(value)
        g_min, g_max, g_mean, g_sigma = stats
        span = self.s_max - self.s_min
        safe_ratio = lambda den: torch.where(den > 0, span / torch.where(den > 0, den, torch.ones_like(den)),  # noqa: E731
                                             torch.zeros_like(den))
        kind = self.kind
        shift = {"none": 0.0 * g_min, "scale": g_min}.get(kind, g_mean)
        factor = {"none": torch.ones_like(g_min), "center": torch.ones_like(g_min),
                  "sigma": safe_ratio(g_sigma)}.get(kind, safe_ratio(g_max - g_min))
        offset = torch.full_like(g_min, self.s_min if kind in ("scale", "scalecenter", "sigma") else 0.0)
        spread = g_max - g_min
        held = (spread < negligible * spread.max()) & (spread > 0) if spread.numel() > 0 else spread > 0
        if kind in ("none", "center"):  # (no division by a spread: nothing to blow up)
            held = torch.zeros_like(held)
        factor = torch.where(held, torch.zeros_like(factor), factor)
        self.shift.copy_(shift)
        self.factor.copy_(factor)
        self.offset.copy_(offset)
        self.has_statistics = True
        return held

    @torch.jit.unused
    def hold(self, held: torch.Tensor) -> None:
        """Hold the functions of the (n_functions,) bool mask `held` constant (factor 0), keeping
        their statistics (committees hold what every member held)."""
        self.factor.copy_(torch.where(held.to(self.factor.device), torch.zeros_like(self.factor), self.factor))

    @torch.jit.unused
    def statistics(self) -> torch.Tensor:
        """(n_functions, 4) [Gmin, Gmax, Gmean, sigma], float64."""
        return torch.stack([self.g_min, self.g_max, self.g_mean, self.g_sigma], dim=1).detach().to(torch.float64)

    @torch.jit.unused
    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        """Loading a state dict restores `has_statistics` too (it is not a tensor): statistics
        were set if any function's recorded range [Gmin, Gmax] or sigma is not empty."""
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self.has_statistics = bool((self.g_max > self.g_min).any() or (self.g_sigma > 0).any())

    def forward(self, g: torch.Tensor) -> torch.Tensor:
        return (g - self.shift) * self.factor + self.offset

    @torch.jit.export
    def tables(self) -> List[torch.Tensor]:
        """[shift, factor, offset, g_min, g_max], (n_functions,) each: what bpnn::evaluate takes."""
        return [self.shift, self.factor, self.offset, self.g_min, self.g_max]

    @torch.jit.export
    def count_outside(self, g: torch.Tensor) -> torch.Tensor:
        """Per row of g (B, F): how many of its F functions lie outside the training range
        [g_min, g_max] by more than rounding: 1e-9 (float64) or 1e-5 (float32) of the range's
        width. (The same structure evaluated in another summation order must not flicker at
        the edges of the range.) Negligible functions held constant (factor 0 though their range
        is not empty) are not counted: their input to the network never changes."""
        width = self.g_max - self.g_min
        tolerance = width.abs() * (1e-9 if g.dtype == torch.float64 else 1e-5)
        outside = (g < self.g_min - tolerance) | (g > self.g_max + tolerance)
        checked = (self.factor != 0) | (width <= 0)
        return (outside & checked).sum(dim=1)
