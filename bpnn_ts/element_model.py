"""One centre element's part of the potential: its symmetry functions, their scaling and its
network (or committee of networks), with dE/dG by autograd through the network only."""

from typing import List, Tuple

import torch

from .descriptors.acsf import ElementDescriptor, Scaling
from .native.kernel import DescriptorKernel, NoKernel


class ElementModel(torch.nn.Module):
    """Descriptor, input scaling and network of one centre element; `kernel` is the
    fused C++ descriptor (NativeKernel) or a placeholder (NoKernel). `net`: an ElementMLP or a
    CommitteeMLP; `member` arguments pick one committee member (-1: the mean)."""

    kernel: DescriptorKernel

    def __init__(self, descriptor: ElementDescriptor, scaling: Scaling, net: torch.nn.Module):
        super().__init__()
        self.descriptor = descriptor
        self.scaling = scaling
        self.net = net
        self.kernel = NoKernel()

    def forward(self, vectors: List[torch.Tensor], distances: List[torch.Tensor], member: int = -1
                ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Raw G (B, F), scaled G (B, F) and network output (B,)."""
        g = self.descriptor(vectors, distances)
        g_hat = self.scaling(g)
        return g, g_hat, self.net.member_output(g_hat, member)

    @torch.jit.export
    def energies_and_slopes(self, g: torch.Tensor, energy_scale: float, energy_shift: torch.Tensor,
                            create_graph: bool, member: int = -1) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Energies (B,) = energy_scale * NN(scaled G) + energy_shift, scaled G, and dE/dG (B, F)
        (autograd through the network only; differentiable w.r.t. the weights if `create_graph`)."""
        g_hat = self.scaling(g).detach().requires_grad_(True)
        energies = self.net.member_output(g_hat, member) * energy_scale + energy_shift
        d_g_hat = torch.autograd.grad([energies.sum()], [g_hat], create_graph=create_graph)[0]
        assert d_g_hat is not None
        return energies, g_hat, d_g_hat * self.scaling.factor

    @torch.jit.export
    def with_gradients(self, vectors: List[torch.Tensor], distances: List[torch.Tensor],
                       energy_scale: float, energy_shift: torch.Tensor, create_graph: bool, member: int = -1
                       ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, List[torch.Tensor]]:
        """Energies (B,) = energy_scale * NN + energy_shift, raw and scaled G (B, F), and
        dE/d(neighbour vectors) per species (B, M_s, 3): autograd only through the
        (small) network, then dE/dG contracted with analytic descriptor derivatives."""
        g, saved = self.descriptor.forward_saving(vectors, distances)
        energies, g_hat, d_g = self.energies_and_slopes(g, energy_scale, energy_shift, create_graph, member)
        block_grads = self.descriptor.backward(d_g, saved, vectors, distances)
        return energies, g, g_hat, block_grads
