"""One centre element's part of the potential: its symmetry functions, their scaling, its network
(or committee of networks) and its descriptor-kernel slot, and `evaluate`, the one per-element
routine every evaluation path calls (BPNNPotential's loop, the `.pt2` programs): from the pairs
of its centres to their energies, dE/dr_ij per pair, and on request G, dG/dr and extrapolation
counts, per committee member asked for.

Two ways to compute the descriptors, chosen by the caller (`fused`): the fused kernel over all
centres at once (C++/CUDA, torch.ops.bpnn), or dense torch blocks chunk by chunk (the oracle).
dE/dG comes from the network's hand-written backpropagation (`analytic_net_gradient`; False:
autograd through the network, the test oracle); with `create_graph` (training) energies and
dE/dr_ij are differentiable w.r.t. the weights (the fused kernels' own autograd,
bpnn_ts/native/cpu/acsf_autograd.h, carries dE/dr_ij).
"""

from typing import List, NamedTuple, Optional, Tuple

import torch

from .chunks import BlockIndex, DenseSettings, block_index, chunk_bounds, dense_block, gather_pairs, neighbour_slots
from .descriptors.element_descriptor import ElementDescriptor
from .descriptors.scaling import Scaling
from .kernels import DescriptorKernel, NoKernel
from .nn import CommitteeMLP, ElementMLP
from .pairs import ElementPairs, Request, needs_pair_gradients


class ElementOutput(NamedTuple):
    """An element's results for its B centres with P_s pairs (in ElementPairs' order)."""

    energies: List[torch.Tensor]  # per member (B,) eV
    d_vectors: List[torch.Tensor]  # per member (P_s, 3) dE/dr_ij (an empty list without forces, virial or gradients)
    descriptors: torch.Tensor  # (B, F) raw G ((0, F) unless asked for)
    scaled_descriptors: torch.Tensor  # (B, F) network inputs ((0, F) unless asked for)
    jacobian: torch.Tensor  # (P_s, F, 3) dG_i/dr_ij ((0, F, 3) unless asked for)
    extrapolation: torch.Tensor  # (B,) functions outside the training range ((0,) unless asked for)


class ElementParts(NamedTuple):
    """One element's parts as the host code changes them (committee folding, weights from n2p2)."""

    atomic_number: int
    scaling: Scaling
    nets: List[ElementMLP]  # the network, or each committee member's


class ElementModel(torch.nn.Module):
    """Descriptor, input scaling and network of one centre element; `kernel` is the fused C++
    descriptor (NativeKernel) or a placeholder (NoKernel). `net`: an ElementMLP or a
    CommitteeMLP; `member` arguments pick one committee member (None: the mean)."""

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

    @torch.jit.unused
    def parts(self, atomic_number: int) -> ElementParts:
        """This element's scaling and network(s) (host side)."""
        nets = list(self.net.members) if isinstance(self.net, CommitteeMLP) else [self.net]
        return ElementParts(atomic_number, self.scaling, nets)

    @torch.jit.export
    def evaluate(self, pairs: ElementPairs, members: List[Optional[int]], request: Request, fused: bool,
                 dense: DenseSettings, create_graph: bool, analytic_forces: bool, energy_scale: float,
                 energy_shift: torch.Tensor) -> ElementOutput:
        """Energies (eV) = energy_scale * NN(scaled G) + energy_shift of every centre, per member,
        with dE/dr_ij where `request` needs them, G on request, and dG/dr (dense path only) and
        extrapolation counts. `fused`: the fused kernel (else dense torch blocks chunked by
        `dense`); `analytic_forces` False: autograd through the dense descriptor (the oracle)."""
        if fused:
            return self._evaluate_fused(pairs, members, request, create_graph, energy_scale, energy_shift)
        return self._evaluate_dense(pairs, members, request, dense, create_graph, analytic_forces, energy_scale,
                                    energy_shift)

    @torch.jit.export
    def energies_and_slopes(self, g: torch.Tensor, energy_scale: float, energy_shift: torch.Tensor,
                            create_graph: bool, member: Optional[int] = None
                            ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Energies (B,) eV, scaled G (B, F), and dE/dG (B, F) eV (through the network only, not the
        descriptor). With `create_graph` energies and dE/dG are differentiable w.r.t. the weights;
        without it they carry no graph (and record none: the weights of a model that is not a
        frozen file require gradients). Under no_grad (the `.pt2` programs are traced so) the
        analytic branch changes no autograd mode."""
        if self.analytic_net_gradient:
            g_hat = self.scaling(g).detach()
            if create_graph or not torch.is_grad_enabled():
                output, d_output = self.net.member_output_and_gradient(g_hat, member)
            else:
                with torch.no_grad():
                    output, d_output = self.net.member_output_and_gradient(g_hat, member)
            if not create_graph:
                output, d_output = output.detach(), d_output.detach()
            return output * energy_scale + energy_shift, g_hat, d_output * energy_scale * self.scaling.factor
        grad_was_enabled = torch.is_grad_enabled()
        torch.set_grad_enabled(True)
        g_hat = self.scaling(g).detach().requires_grad_(True)
        energies = self.net.member_output(g_hat, member) * energy_scale + energy_shift
        d_g_hat = torch.autograd.grad([energies.sum()], [g_hat], create_graph=create_graph)[0]
        torch.set_grad_enabled(grad_was_enabled)
        assert d_g_hat is not None
        if not create_graph:
            energies = energies.detach()
        return energies, g_hat.detach(), d_g_hat * self.scaling.factor

    def _evaluate_fused(self, pairs: ElementPairs, members: List[Optional[int]], request: Request,
                        create_graph: bool, energy_scale: float, energy_shift: torch.Tensor) -> ElementOutput:
        """All centres with the fused kernel: one descriptor pass shared by the `members`, one force
        contraction per member. With `create_graph` the energies and dE/dr_ij keep their graph to
        the weights (the kernel's backward: acsf_jvp). dG/dr_ij on request: one contraction per
        function (a training cache: 3x faster than the dense path on mlearn's Ge)."""
        need_grad = needs_pair_gradients(request) and not request.jacobian
        g = self.kernel(pairs.vectors, pairs.offsets, pairs.neighbour_species, None)  # (B, F)
        g_hat = self.scaling(g)
        energies: List[torch.Tensor] = []
        d_vectors: List[torch.Tensor] = []
        for member in members:
            if need_grad:
                member_energies, g_hat, d_g = self.energies_and_slopes(g, energy_scale, energy_shift, create_graph,
                                                                       member)
                d_vectors.append(self.kernel(pairs.vectors, pairs.offsets, pairs.neighbour_species, d_g))
            else:
                member_energies = self.net.member_output(g_hat, member) * energy_scale + energy_shift
            energies.append(member_energies if create_graph else member_energies.detach())
        descriptors, scaled = self._extras(g, g_hat, request)
        jacobian = self._no_jacobian(pairs.vectors)
        if request.jacobian:  # column f: the kernel's contraction with dE/dG = e_f at every centre
            columns: List[torch.Tensor] = []
            for f in range(g.shape[1]):
                unit = torch.zeros_like(g)
                unit[:, f] = 1.0
                columns.append(self.kernel(pairs.vectors, pairs.offsets, pairs.neighbour_species, unit))
            jacobian = torch.stack(columns, dim=1) if len(columns) > 0 else jacobian
        return ElementOutput(energies, d_vectors, descriptors, scaled, jacobian, self._extrapolation(g, request))

    def _evaluate_dense(self, pairs: ElementPairs, members: List[Optional[int]], request: Request,
                        dense: DenseSettings, create_graph: bool, analytic_forces: bool, energy_scale: float,
                        energy_shift: torch.Tensor) -> ElementOutput:
        """In dense blocks, chunk by chunk; descriptors once per chunk, shared by the members."""
        vectors = pairs.vectors
        dtype, device = vectors.dtype, vectors.device
        n_centres, n_pairs, n_functions = pairs.offsets.shape[0] - 1, vectors.shape[0], self.descriptor.n_functions
        slots = neighbour_slots(pairs, self.descriptor.n_species)
        per_chunk = self.centres_per_chunk(slots.widest, dense.most_centres, dense.block_budget)
        first_centre, first_pair, widths = chunk_bounds(slots, pairs.offsets, per_chunk, dense.uniform_blocks)
        need_grad = needs_pair_gradients(request) and not request.jacobian
        # Outside training, results go into buffers allocated before the loop: small long-lived
        # allocations made between chunks would fragment the heap.
        energy_out: List[torch.Tensor] = []
        grad_out: List[torch.Tensor] = []
        energy_parts: List[List[torch.Tensor]] = []
        grad_parts: List[List[torch.Tensor]] = []
        for _ in members:
            energy_out.append(torch.zeros(n_centres, dtype=dtype, device=device))
            grad_out.append(torch.zeros((n_pairs if need_grad else 0, 3), dtype=dtype, device=device))
            energy_parts.append([])
            grad_parts.append([])
        want_g = request.descriptors or request.extrapolation or request.jacobian
        g_out = torch.zeros((n_centres if want_g else 0, n_functions), dtype=dtype, device=device)
        jac_out = torch.zeros((n_pairs if request.jacobian else 0, n_functions, 3), dtype=dtype, device=device)
        for c in range(len(first_centre) - 1):
            r0, r1, p0, p1 = first_centre[c], first_centre[c + 1], first_pair[c], first_pair[c + 1]
            index = block_index(slots, first_centre, first_pair, widths, c)
            chunk_vectors = vectors[p0:p1]
            if request.jacobian:
                block_vectors, block_distances = dense_block(chunk_vectors, index, dense.padding)
                g, saved = self.descriptor.forward_saving(block_vectors, block_distances)
                jac_out[p0:p1] = gather_pairs(self.descriptor.jacobian(saved, block_vectors, block_distances), index)
                chunk: List[Tuple[torch.Tensor, torch.Tensor]] = []
                for _ in members:
                    chunk.append((torch.zeros(r1 - r0, dtype=dtype, device=device), torch.zeros(0)))
            elif need_grad and analytic_forces:
                chunk, g = self._chunk_analytic(chunk_vectors, index, dense.padding, members, create_graph,
                                                energy_scale, energy_shift)
            else:
                chunk, g = self._chunk_autograd(chunk_vectors, index, dense.padding, members, need_grad, create_graph,
                                                energy_scale, energy_shift)
            for m in range(len(members)):
                energies, grads = chunk[m]
                if create_graph:
                    energy_parts[m].append(energies)
                    grad_parts[m].append(grads)
                else:
                    energy_out[m][r0:r1] = energies.detach()
                    if need_grad:
                        grad_out[m][p0:p1] = grads.detach()
            if want_g:
                g_out[r0:r1] = g.detach()
        energies_list: List[torch.Tensor] = []
        d_vectors: List[torch.Tensor] = []
        for m in range(len(members)):
            energies_list.append(torch.cat(energy_parts[m]) if create_graph else energy_out[m])
            if need_grad:
                d_vectors.append(torch.cat(grad_parts[m]) if create_graph else grad_out[m])
        jacobian = jac_out if request.jacobian else self._no_jacobian(vectors)
        descriptors, scaled = self._extras(g_out, self.scaling(g_out), request)
        return ElementOutput(energies_list, d_vectors, descriptors, scaled, jacobian, self._extrapolation(g_out, request))

    def _chunk_analytic(self, vectors: torch.Tensor, index: BlockIndex, padding: float,
                        members: List[Optional[int]], create_graph: bool, energy_scale: float,
                        energy_shift: torch.Tensor) -> Tuple[List[Tuple[torch.Tensor, torch.Tensor]], torch.Tensor]:
        """Per member: energies (B_c,) and dE/dr_ij (P_c, 3) of one chunk by the descriptor's analytic
        dG/dr; and G (B_c, F)."""
        block_vectors, block_distances = dense_block(vectors, index, padding)
        g, saved = self.descriptor.forward_saving(block_vectors, block_distances)
        out: List[Tuple[torch.Tensor, torch.Tensor]] = []
        for member in members:
            energies, _, d_g = self.energies_and_slopes(g, energy_scale, energy_shift, create_graph, member)
            block_grads = self.descriptor.backward(d_g, saved, block_vectors, block_distances)
            out.append((energies, gather_pairs(block_grads, index)))
        return out, g

    def _chunk_autograd(self, vectors: torch.Tensor, index: BlockIndex, padding: float,
                        members: List[Optional[int]], need_grad: bool, create_graph: bool, energy_scale: float,
                        energy_shift: torch.Tensor) -> Tuple[List[Tuple[torch.Tensor, torch.Tensor]], torch.Tensor]:
        """Per member: energies (B_c,) and, with `need_grad`, dE/dr_ij (P_c, 3) by autograd through the
        descriptor and the network (the oracle); and G (B_c, F)."""
        grad_was_enabled = torch.is_grad_enabled()
        if need_grad:
            torch.set_grad_enabled(True)
            vectors = vectors.detach().requires_grad_(True)
        block_vectors, block_distances = dense_block(vectors, index, padding)
        g = self.descriptor(block_vectors, block_distances)
        g_hat = self.scaling(g)
        out: List[Tuple[torch.Tensor, torch.Tensor]] = []
        for k, member in enumerate(members):
            energies = self.net.member_output(g_hat, member) * energy_scale + energy_shift
            grad = torch.zeros(0)
            if need_grad:
                last = k == len(members) - 1
                grads = torch.autograd.grad([energies.sum()], [vectors], create_graph=create_graph,
                                            retain_graph=create_graph or not last, allow_unused=True)
                found = grads[0]
                grad = torch.zeros_like(vectors) if found is None else found
            out.append((energies, grad))
        torch.set_grad_enabled(grad_was_enabled)
        return out, g

    @torch.jit.export
    def centres_per_chunk(self, widths: List[int], most: int, budget: int) -> int:
        """Centres per chunk: at most `most`, and few enough that the largest block (B x K x Mj
        x Mk, with `widths` neighbours of each element) stays near `budget` elements, which
        keeps blocks in cache on CPUs."""
        return max(1, min(most, budget // max(self.descriptor.largest_block(widths), 1)))

    def _extras(self, g: torch.Tensor, g_hat: torch.Tensor, request: Request) -> Tuple[torch.Tensor, torch.Tensor]:
        """Raw and scaled G when asked for, else (0, F) each."""
        if request.descriptors:
            return g.detach(), g_hat.detach()
        empty = torch.zeros((0, self.descriptor.n_functions), dtype=g.dtype, device=g.device)
        return empty, empty

    def _extrapolation(self, g: torch.Tensor, request: Request) -> torch.Tensor:
        """(B,) functions outside the training range per centre when asked for, else (0,)."""
        if request.extrapolation:
            return self.scaling.count_outside(g.detach())
        return torch.zeros(0, dtype=torch.long, device=g.device)

    def _no_jacobian(self, like: torch.Tensor) -> torch.Tensor:
        return torch.zeros((0, self.descriptor.n_functions, 3), dtype=like.dtype, device=like.device)
