"""Element networks: one multilayer perceptron per chemical element."""

import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch

# name -> code; n2p2's one-letter names map onto the same codes (N2P2_ACTIVATIONS).
ACTIVATIONS: Dict[str, int] = {
    "identity": 0, "tanh": 1, "logistic": 2, "softplus": 3, "relu": 4, "gaussian": 5,
    "cos": 6, "reverse_logistic": 7, "exp_neg": 8, "square": 9, "shifted_softplus": 10, "silu": 11,
}
N2P2_ACTIVATIONS: Dict[str, str] = {
    "l": "identity", "t": "tanh", "s": "logistic", "p": "softplus", "r": "relu",
    "g": "gaussian", "c": "cos", "S": "reverse_logistic", "e": "exp_neg", "h": "square",
}


def activate(x: torch.Tensor, code: int) -> torch.Tensor:
    """Apply activation `code` (see ACTIVATIONS). Softplus and logistic are
    clipped at |x| > 35 exactly as n2p2 does."""
    if code == 0:
        return x
    if code == 1:
        return torch.tanh(x)
    if code == 2:
        return torch.sigmoid(x)
    if code == 3 or code == 10:
        big = x > 35.0
        y = torch.where(big, x, torch.log1p(torch.exp(torch.where(big, torch.zeros_like(x), x))))
        y = torch.where(x < -35.0, torch.zeros_like(x), y)
        return y - 0.6931471805599453 if code == 10 else y  # ln 2
    if code == 4:
        return torch.relu(x)
    if code == 5:
        return torch.exp(-0.5 * x * x)
    if code == 6:
        return torch.cos(x)
    if code == 7:
        return 1.0 - torch.sigmoid(x)
    if code == 8:
        return torch.exp(-x)
    if code == 9:
        return x * x
    if code == 11:
        return torch.nn.functional.silu(x)
    raise ValueError("unknown activation code " + str(code))


def activate_with_slope(x: torch.Tensor, code: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """`activate(x, code)` and its slope dy/dx, both shaped as x, equal to what autograd gives
    (softplus: slope 1 above 35, 0 below -35; relu: slope 0 at 0). No in-place operations:
    both stay differentiable w.r.t. whatever x depends on."""
    if code == 0:
        return x, torch.ones_like(x)
    if code == 1:
        y = torch.tanh(x)
        return y, torch.ops.aten.tanh_backward(torch.ones_like(y), y)  # 1 - y^2, rounded as autograd rounds it
    if code == 2:
        y = torch.sigmoid(x)
        return y, y * (1.0 - y)
    if code == 3 or code == 10:
        big = x > 35.0
        small = x < -35.0
        e = torch.exp(torch.where(big, torch.zeros_like(x), x))
        y = torch.where(big, x, torch.log1p(e))
        y = torch.where(small, torch.zeros_like(x), y)
        slope = torch.where(big, torch.ones_like(x), torch.where(small, torch.zeros_like(x), e / (1.0 + e)))
        return (y - 0.6931471805599453 if code == 10 else y), slope  # ln 2
    if code == 4:
        return torch.relu(x), (x > 0.0).to(x.dtype)
    if code == 5:
        y = torch.exp(-0.5 * x * x)
        return y, -x * y
    if code == 6:
        return torch.cos(x), -torch.sin(x)
    if code == 7:
        s = torch.sigmoid(x)
        return 1.0 - s, -s * (1.0 - s)
    if code == 8:
        y = torch.exp(-x)
        return y, -y
    if code == 9:
        return x * x, 2.0 * x
    if code == 11:
        s = torch.sigmoid(x)
        return x * s, s * (1.0 + x * (1.0 - s))
    raise ValueError("unknown activation code " + str(code))


def activation_code(name: str) -> int:
    """Code of an activation name ("tanh") or n2p2 letter ("t")."""
    if name in N2P2_ACTIVATIONS:
        name = N2P2_ACTIVATIONS[name]
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)} or an n2p2 letter "
                         f"{sorted(N2P2_ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]


class ElementMLP(torch.nn.Module):
    """y = f_L(... f_1(x W_1 + b_1) ...) : (B, n_inputs) -> (B,).

    `activations` names one activation per layer after the input (hidden layers
    and the output layer; the output is usually "identity").
    """

    def __init__(self, n_inputs: int, hidden_layers: Sequence[int], activations: Sequence[str]):
        super().__init__()
        sizes = [int(n_inputs)] + [int(h) for h in hidden_layers] + [1]
        if any(s < 1 for s in sizes):
            raise ValueError(f"layer sizes must be >= 1, got {sizes}")
        if len(activations) != len(sizes) - 1:
            raise ValueError(f"need {len(sizes) - 1} activations (hidden layers + output), "
                             f"got {list(activations)}")
        self.layers = torch.nn.ModuleList(
            [torch.nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])])
        self.activation_codes: List[int] = [activation_code(a) for a in activations]
        self.activation_names: List[str] = [str(a) for a in activations]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for k, layer in enumerate(self.layers):
            x = activate(layer(x), self.activation_codes[k])
        return x.squeeze(-1)

    @torch.jit.export
    def member_output(self, x: torch.Tensor, member: Optional[int]) -> torch.Tensor:
        """The network's output (B,): a single net is its own only member (None or 0)."""
        if member is not None and member != 0:
            raise ValueError("member " + str(member) + " asked of a single network (committee size 1)")
        return self.forward(x)

    @torch.jit.export
    def output_and_gradient(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Output y (B,) and dy/dx (B, n_inputs) of inputs x (B, n_inputs), by hand-written
        backpropagation (no autograd: torch.export can trace it). Differentiable w.r.t. the
        weights (training builds force losses on dy/dx)."""
        weights: List[torch.Tensor] = []
        slopes: List[torch.Tensor] = []  # per layer (B, n_out): f_l'(x W_l^T + b_l)
        for k, layer in enumerate(self.layers):
            x, slope = activate_with_slope(layer(x), self.activation_codes[k])
            weights.append(layer.weight)
            slopes.append(slope)
        n = len(slopes)
        grad = slopes[n - 1].matmul(weights[n - 1])  # (B, n_{L-1}): dy/d(input of the output layer)
        for k in range(n - 2, -1, -1):
            if self.activation_codes[k] != 0:  # identity: slope 1
                grad = grad * slopes[k]
            grad = grad.matmul(weights[k])  # (B, n_{k-1})
        return x.squeeze(-1), grad

    @torch.jit.export
    def member_output_and_gradient(self, x: torch.Tensor, member: Optional[int]) -> Tuple[torch.Tensor, torch.Tensor]:
        """`output_and_gradient`; a single net is its own only member (None or 0)."""
        if member is not None and member != 0:
            raise ValueError("member " + str(member) + " asked of a single network (committee size 1)")
        return self.output_and_gradient(x)

    @torch.jit.export
    def layer_tensors(self) -> List[torch.Tensor]:
        """[weight (n_out, n_in), bias (n_out,)] of every layer, input layer first (bpnn::evaluate)."""
        tensors: List[torch.Tensor] = []
        for layer in self.layers:
            tensors.append(layer.weight)
            tensors.append(layer.bias)
        return tensors

    @torch.jit.unused
    def linear_layers(self) -> List[torch.nn.Linear]:
        """The layers, input layer first."""
        return [layer for layer in self.layers if isinstance(layer, torch.nn.Linear)]

    @torch.jit.unused
    def get_layers(self) -> List[Tuple[torch.Tensor, torch.Tensor]]:
        """Copies of (weight (n_out, n_in), bias (n_out,)) of every layer, input layer first."""
        return [(layer.weight.detach().clone(), layer.bias.detach().clone()) for layer in self.linear_layers()]

    @torch.jit.unused
    def set_layers(self, layers: Sequence[Tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Set every layer's (weight (n_out, n_in), bias (n_out,)), input layer first."""
        own = self.linear_layers()
        if len(layers) != len(own):
            raise ValueError(f"the network has {len(own)} layers, got weights of {len(layers)}")
        with torch.no_grad():
            for k, (layer, (weight, bias)) in enumerate(zip(own, layers)):
                if tuple(weight.shape) != tuple(layer.weight.shape) or tuple(bias.shape) != tuple(layer.bias.shape):
                    raise ValueError(f"layer {k}: weight {tuple(layer.weight.shape)} and bias {tuple(layer.bias.shape)} "
                                     f"expected, got {tuple(weight.shape)} and {tuple(bias.shape)}")
                layer.weight.copy_(weight)
                layer.bias.copy_(bias)

    @torch.jit.unused
    def reset_parameters(self, generator: torch.Generator) -> None:
        """Xavier-uniform weights, zero biases, from `generator` (reproducible)."""
        with torch.no_grad():
            for layer in self.layers:
                bound = math.sqrt(6.0 / (layer.in_features + layer.out_features))
                weight = torch.rand(layer.weight.shape, generator=generator, dtype=torch.float64)
                layer.weight.copy_((2.0 * weight - 1.0) * bound)
                layer.bias.zero_()


class CommitteeMLP(torch.nn.Module):
    """A committee of K element networks of one architecture on the same input: the output
    (B,) is their mean; `member_output(x, k)` is member k's own. Their spread is the
    committee's uncertainty (bpnn_ts/model/uncertainty.py)."""

    def __init__(self, members: Sequence[ElementMLP]):
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"a committee needs at least 2 networks, got {len(members)}")
        self.members = torch.nn.ModuleList(members)
        self.n_members = len(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device)
        for member in self.members:
            total = total + member(x)
        return total / float(self.n_members)

    @torch.jit.export
    def member_output(self, x: torch.Tensor, member: Optional[int]) -> torch.Tensor:
        """Member `member`'s output (B,); None: the committee mean."""
        if member is None:
            return self.forward(x)
        if member < 0 or member >= self.n_members:
            raise ValueError("member " + str(member) + " asked of a committee of " + str(self.n_members))
        output = torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device)
        for k, net in enumerate(self.members):  # (TorchScript indexes ModuleLists by constants only)
            if k == member:
                output = net(x)
        return output

    @torch.jit.export
    def layer_tensors(self) -> List[torch.Tensor]:
        """Every member's `layer_tensors()`, member after member."""
        tensors: List[torch.Tensor] = []
        for member in self.members:
            tensors.extend(member.layer_tensors())
        return tensors

    @torch.jit.export
    def output_and_gradient(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """The members' mean output (B,) and its dy/dx (B, n_inputs), by hand (no autograd)."""
        total = torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device)
        total_grad = torch.zeros_like(x)
        for member in self.members:
            y, grad = member.output_and_gradient(x)
            total = total + y
            total_grad = total_grad + grad
        return total / float(self.n_members), total_grad / float(self.n_members)

    @torch.jit.export
    def member_output_and_gradient(self, x: torch.Tensor, member: Optional[int]) -> Tuple[torch.Tensor, torch.Tensor]:
        """Member `member`'s output (B,) and dy/dx (B, n_inputs); None: the committee mean's."""
        if member is None:
            return self.output_and_gradient(x)
        if member < 0 or member >= self.n_members:
            raise ValueError("member " + str(member) + " asked of a committee of " + str(self.n_members))
        output = torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device)
        grad = torch.zeros_like(x)
        for k, net in enumerate(self.members):  # (TorchScript indexes ModuleLists by constants only)
            if k == member:
                output, grad = net.output_and_gradient(x)
        return output, grad

    @torch.jit.unused
    def reset_parameters(self, generator: torch.Generator) -> None:
        """Each member drawn in turn from `generator` (so members differ)."""
        for member in self.members:
            member.reset_parameters(generator)
