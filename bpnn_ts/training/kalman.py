"""The extended Kalman filter that BPNN codes train with (n2p2's standard and fading-memory
variants: Singraber et al., J. Chem. Theory Comput. 15, 1827 (2019); Blank & Brown, J. Chemom.
8, 391 (1994)), with a block-diagonal error covariance so that nets of any size fit in memory.

One update takes m observations: their errors xi = y_ref - y (m,) and derivatives
H = dy/dw (m, n) with respect to the weights w (n,):

    standard:  X = P H^T        A = H X + I/eta   K = X A^-1   P <- P - K X^T + q I
    fading:    X = P H^T / lam  A = H X + I       K = X A^-1   P <- P/lam - K X^T + q I
    both:      w <- w + K xi;   fading memory then lam <- nu lam + 1 - nu

P is block diagonal: one block per element's network ("element"), per layer ("layer", as
layer-wise EKFs such as RLEKF split it), or one for all weights ("combined", n2p2's default).
A sums the blocks' H_b X_b, so every observation still updates every block (the decoupled EKF
of Puskorius & Feldkamp). P starts as I/epsilon. After u updates
q = max(q0 exp(-tau_q u/U), q_min) and eta = min(eta0 exp(tau_eta u/U), eta_max), U updates per
epoch (tau = 2.302: a factor 10 per epoch).
"""

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

import torch

KALMAN_KINDS = ("standard", "fading")
KALMAN_BLOCKS = ("combined", "element", "layer")


@dataclass(frozen=True)
class KalmanSettings:
    """Filter parameters; n2p2's names in brackets (kalman_*)."""

    kind: str = "standard"  # standard | fading (kalman_type 0 | 1)
    blocks: str = "element"  # combined | element | layer: the covariance's diagonal blocks
    epsilon: float = 0.1  # P starts as I/epsilon (kalman_epsilon; n2p2 examples: 0.01)
    q0: float = 0.01  # process noise at the start (q0)
    q_tau: float = 2.302  # its decay, per epoch (qtau)
    q_min: float = 1e-6  # its floor (qmin)
    eta0: float = 0.01  # standard: inverse observation noise at the start (eta)
    eta_tau: float = 2.302  # its growth, per epoch (etatau)
    eta_max: float = 1.0  # its ceiling (etamax)
    lambda0: float = 0.99  # fading: forgetting factor at the start (lambda)
    nu: float = 0.99870  # fading: lam <- nu lam + 1 - nu (nu)


def parameter_blocks(named: Sequence[Tuple[str, torch.nn.Parameter]], blocks: str) -> List[List[torch.nn.Parameter]]:
    """The trainable parameters grouped into covariance blocks: one per element network
    (`potential.elements.<s>.`), per layer (weight and bias together) or all in one."""
    if blocks not in KALMAN_BLOCKS:
        raise ValueError(f"Kalman covariance blocks must be one of {list(KALMAN_BLOCKS)}, got {blocks!r}")
    groups: Dict[str, List[torch.nn.Parameter]] = {}
    for name, parameter in named:
        if not parameter.requires_grad:
            continue
        if blocks == "combined":
            key = ""
        elif blocks == "element":
            parts = name.split(".")
            key = ".".join(parts[:3]) if parts[:2] == ["potential", "elements"] else name
        else:
            key = name.rsplit(".", 1)[0]
        groups.setdefault(key, []).append(parameter)
    return list(groups.values())


class KalmanFilter:
    """Updates the parameters of `blocks` in place from observation errors and Jacobians."""

    def __init__(self, blocks: Sequence[Sequence[torch.nn.Parameter]], settings: KalmanSettings,
                 updates_per_epoch: int):
        if settings.kind not in KALMAN_KINDS:
            raise ValueError(f"Kalman filter kind must be one of {list(KALMAN_KINDS)}, got {settings.kind!r}")
        self.blocks = [list(block) for block in blocks if block]
        self.settings = settings
        self.updates_per_epoch = max(1, int(updates_per_epoch))
        first = self.blocks[0][0]
        self.sizes = [sum(p.numel() for p in block) for block in self.blocks]
        # float64 whatever the weights' dtype: the rank-m downdates of P lose its positive
        # definiteness in float32
        self.covariances = [torch.eye(n, dtype=torch.float64, device=first.device) / settings.epsilon
                            for n in self.sizes]
        self.n_updates = 0
        self.forgetting = settings.lambda0

    @property
    def parameters(self) -> List[torch.nn.Parameter]:
        return [p for block in self.blocks for p in block]

    @property
    def process_noise(self) -> float:
        """q after the updates so far."""
        s = self.settings
        return max(s.q0 * math.exp(-s.q_tau * self.n_updates / self.updates_per_epoch), s.q_min)

    @property
    def eta(self) -> float:
        """Standard filter: the inverse observation noise after the updates so far."""
        s = self.settings
        return min(s.eta0 * math.exp(s.eta_tau * self.n_updates / self.updates_per_epoch), s.eta_max)

    def split(self, jacobian: torch.Tensor) -> List[torch.Tensor]:
        """A Jacobian (m, n) over all parameters (in `parameters` order) as blocks (m, n_b)."""
        return list(torch.split(jacobian, self.sizes, dim=1))

    @torch.no_grad()
    def update(self, error: torch.Tensor, jacobian: torch.Tensor) -> None:
        """One update from `error` = y_ref - y (m,) and `jacobian` = dy/dw (m, n)."""
        s = self.settings
        m = error.shape[0]
        jacobians = self.split(jacobian.to(self.covariances[0].dtype))
        scale = 1.0 / self.forgetting if s.kind == "fading" else 1.0
        xs = [scale * (p @ h.T) for p, h in zip(self.covariances, jacobians)]  # (n_b, m)
        a = sum((h @ x for h, x in zip(jacobians, xs)), torch.zeros((m, m), dtype=xs[0].dtype, device=error.device))
        a.diagonal().add_(1.0 / self.eta if s.kind == "standard" else 1.0)
        q = self.process_noise
        steps = []
        for p, x in zip(self.covariances, xs):
            gain = torch.linalg.solve(a, x.T).T  # K = X A^-1 (A symmetric)
            if s.kind == "fading":
                p.mul_(scale)
            p.addmm_(gain, x.T, alpha=-1.0)
            p.diagonal().add_(q)
            steps.append(gain @ error.to(gain.dtype))
        step = torch.cat(steps)
        first = 0
        for parameter in self.parameters:
            n = parameter.numel()
            parameter.add_(step[first:first + n].view_as(parameter).to(parameter.dtype))
            first += n
        self.n_updates += 1
        if s.kind == "fading":
            self.forgetting = s.nu * self.forgetting + 1.0 - s.nu

    def state_dict(self) -> Dict[str, Any]:
        return {"covariances": [p.clone() for p in self.covariances], "n_updates": self.n_updates,
                "forgetting": self.forgetting, "sizes": list(self.sizes)}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        if list(state["sizes"]) != self.sizes:
            raise ValueError(f"Kalman filter state has blocks of {state['sizes']} weights, "
                             f"this model {self.sizes}: not the checkpoint of this model")
        self.covariances = [p.to(self.covariances[0].device) for p in state["covariances"]]
        self.n_updates = int(state["n_updates"])
        self.forgetting = float(state["forgetting"])


def flat_jacobian(outputs: torch.Tensor, parameters: Sequence[torch.nn.Parameter]) -> torch.Tensor:
    """d outputs / d parameters as one matrix (m, n): outputs (m,), parameters flattened in order.
    Several outputs take one batched backward pass (vmap) where the graph allows it."""
    parameters = list(parameters)
    m = outputs.shape[0]
    if m > 1:
        try:
            grads = torch.autograd.grad(outputs, parameters, torch.eye(m, dtype=outputs.dtype, device=outputs.device),
                                        retain_graph=True, allow_unused=True, is_grads_batched=True)
            return torch.cat([(g if g is not None else torch.zeros((m,) + p.shape, dtype=p.dtype, device=p.device))
                              .reshape(m, -1) for g, p in zip(grads, parameters)], dim=1)
        except RuntimeError:  # an op without a batching rule: one pass per output
            pass
    rows = []
    for i in range(m):
        grads = torch.autograd.grad(outputs[i], parameters, retain_graph=True, allow_unused=True)
        rows.append(torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1)
                               for g, p in zip(grads, parameters)]))
    return torch.stack(rows)
