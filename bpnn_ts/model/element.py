"""One centre element's part of the potential: its symmetry functions, their scaling, its network
(or committee of networks) and its descriptor-kernel slot, with the two ways to evaluate its
centres: dense torch blocks of one chunk (`evaluate_chunk`) or the fused kernel over all of
them (`evaluate_fused`). dE/dG comes from the network's hand-written backpropagation
(`analytic_net_gradient`; False: autograd through the network, the test oracle); with
`create_graph` (training) both paths return energies and dE/dr_ij differentiable w.r.t. the
weights (the fused kernels' own autograd, bpnn_ts/native/acsf_autograd.h, carries dE/dr_ij)."""

from typing import List, NamedTuple, Optional, Tuple

import torch

from .descriptors.element_descriptor import ElementDescriptor
from .descriptors.scaling import Scaling
from .kernels import DescriptorKernel, NoKernel
from .pairs import BlockIndex, Request, dense_block, gather_pairs


class ChunkOutput(NamedTuple):
    """An element's results for one chunk of B centres with P_c pairs."""

    energies: torch.Tensor  # (B,) eV (zeros when only the Jacobian was asked for)
    descriptors: torch.Tensor  # (B, F) raw G
    scaled_descriptors: torch.Tensor  # (B, F) network inputs
    d_vectors: torch.Tensor  # (P_c, 3) dE/dr_ij (empty without forces or virial)
    jacobian: torch.Tensor  # (P_c, F, 3) dG_i/dr_ij (empty unless asked for)


class FusedOutput(NamedTuple):
    """An element's results for all its B centres with P_s pairs, per committee member asked for."""

    descriptors: torch.Tensor  # (B, F) raw G
    scaled_descriptors: torch.Tensor  # (B, F) network inputs
    energies: List[torch.Tensor]  # per member (B,) eV
    d_vectors: List[torch.Tensor]  # per member (P_s, 3) dE/dr_ij (empty list without forces or virial)


class ElementModel(torch.nn.Module):
    """Descriptor, input scaling and network of one centre element; `kernel` is the fused C++
    descriptor (NativeKernel) or a placeholder (NoKernel). `net`: an ElementMLP or a
    CommitteeMLP; `member` arguments pick one committee member (None: the mean).
    `analytic_net_gradient`: dE/dG by the network's own backpropagation (no autograd, so
    torch.export can trace it); False: by autograd (the test oracle). Results are the same."""

    kernel: DescriptorKernel
    analytic_net_gradient: bool = True

    def __init__(self, descriptor: ElementDescriptor, scaling: Scaling, net: torch.nn.Module):
        super().__init__()
        self.descriptor = descriptor
        self.scaling = scaling
        self.net = net
        self.kernel = NoKernel()
        self.analytic_net_gradient = True

    def forward(self, vectors: List[torch.Tensor], distances: List[torch.Tensor], member: Optional[int] = None
                ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Raw G (B, F), scaled G (B, F) and network output (B,) of a dense block."""
        g = self.descriptor(vectors, distances)
        g_hat = self.scaling(g)
        return g, g_hat, self.net.member_output(g_hat, member)

    @torch.jit.export
    def centres_per_chunk(self, widths: List[int], most: int, budget: int) -> int:
        """Centres per chunk: at most `most`, and few enough that the largest block (B x K x Mj
        x Mk, with `widths` neighbours of each element) stays near `budget` elements, which
        keeps blocks in cache on CPUs."""
        return max(1, min(most, budget // max(self.descriptor.largest_block(widths), 1)))

    @torch.jit.export
    def energies_and_slopes(self, g: torch.Tensor, energy_scale: float, energy_shift: torch.Tensor,
                            create_graph: bool, member: Optional[int] = None
                            ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Energies (B,) eV = energy_scale * NN(scaled G) + energy_shift, scaled G (B, F), and dE/dG
        (B, F) eV (through the network only, not the descriptor). With `create_graph` energies and
        dE/dG are differentiable w.r.t. the weights; without it they carry no graph."""
        if self.analytic_net_gradient:
            g_hat = self.scaling(g).detach()
            if create_graph:
                output, d_output = self.net.member_output_and_gradient(g_hat, member)
            else:
                with torch.no_grad():
                    output, d_output = self.net.member_output_and_gradient(g_hat, member)
            energies = output * energy_scale + energy_shift
            return energies, g_hat, d_output * energy_scale * self.scaling.factor
        g_hat = self.scaling(g).detach().requires_grad_(True)
        energies = self.net.member_output(g_hat, member) * energy_scale + energy_shift
        d_g_hat = torch.autograd.grad([energies.sum()], [g_hat], create_graph=create_graph)[0]
        assert d_g_hat is not None
        if not create_graph:
            energies = energies.detach()
        return energies, g_hat, d_g_hat * self.scaling.factor

    @torch.jit.export
    def evaluate_chunk(self, vectors: torch.Tensor, index: BlockIndex, padding: float, energy_scale: float,
                       energy_shift: torch.Tensor, member: Optional[int], request: Request, create_graph: bool,
                       analytic_forces: bool) -> ChunkOutput:
        """One chunk in dense blocks from its pair vectors (P_c, 3). Forces: dE/dG through the
        network (energies_and_slopes), contracted with the descriptor's analytic dG/dr (or, without
        `analytic_forces`, autograd through the descriptor: the test oracle)."""
        empty = torch.zeros((0, 3), dtype=vectors.dtype, device=vectors.device)
        need_grad = request.forces or request.virial or request.pair_gradients
        if request.jacobian:
            block_vectors, block_distances = dense_block(vectors, index, padding)
            g, saved = self.descriptor.forward_saving(block_vectors, block_distances)
            jacobian = gather_pairs(self.descriptor.jacobian(saved, block_vectors, block_distances), index)
            energies = torch.zeros(index.n_centres, dtype=vectors.dtype, device=vectors.device)
            return ChunkOutput(energies, g, self.scaling(g), empty, jacobian)
        if need_grad and analytic_forces:
            block_vectors, block_distances = dense_block(vectors, index, padding)
            g, saved = self.descriptor.forward_saving(block_vectors, block_distances)
            energies, g_hat, d_g = self.energies_and_slopes(g, energy_scale, energy_shift, create_graph, member)
            block_grads = self.descriptor.backward(d_g, saved, block_vectors, block_distances)
            return ChunkOutput(energies, g, g_hat, gather_pairs(block_grads, index), empty)
        if need_grad:  # the oracle
            vectors = vectors.detach().requires_grad_(True)
        block_vectors, block_distances = dense_block(vectors, index, padding)
        g, g_hat, output = self.forward(block_vectors, block_distances, member)
        energies = output * energy_scale + energy_shift
        d_vectors = empty
        if need_grad:
            grads = torch.autograd.grad([energies.sum()], [vectors], create_graph=create_graph, allow_unused=True)
            grad = grads[0]
            d_vectors = torch.zeros_like(vectors) if grad is None else grad
        return ChunkOutput(energies, g, g_hat, d_vectors, empty)

    @torch.jit.export
    def evaluate_fused(self, vectors: torch.Tensor, offsets: torch.Tensor, neighbour_species: torch.Tensor,
                       energy_scale: float, energy_shift: torch.Tensor, members: List[Optional[int]],
                       need_grad: bool, create_graph: bool) -> FusedOutput:
        """All this element's centres with the fused kernel: pairs (P_s, 3) grouped by centre
        (centre b owns offsets[b] .. offsets[b + 1] - 1), one descriptor pass shared by the
        `members`, one force contraction per member. With `create_graph` the energies and
        dE/dr_ij keep their graph to the weights (the kernel's backward: acsf_jvp)."""
        g = self.kernel(vectors, offsets, neighbour_species, None)
        g_hat = torch.empty(0) if need_grad else self.scaling(g)  # with forces: energies_and_slopes scales
        energies: List[torch.Tensor] = []
        d_vectors: List[torch.Tensor] = []
        for member in members:
            if need_grad:
                grad_was_enabled = torch.is_grad_enabled()
                torch.set_grad_enabled(True)
                member_energies, g_hat, d_g = self.energies_and_slopes(g, energy_scale, energy_shift, create_graph,
                                                                       member)
                if not create_graph:
                    d_g = d_g.detach()
                d_vectors.append(self.kernel(vectors, offsets, neighbour_species, d_g))
                torch.set_grad_enabled(grad_was_enabled)
            else:
                member_energies = self.net.member_output(g_hat, member) * energy_scale + energy_shift
            energies.append(member_energies if create_graph else member_energies.detach())
        return FusedOutput(g, g_hat.detach(), energies, d_vectors)
