"""What travels between the stages of an evaluation: the pair list an engine (or the model's own
neighbour search) gives, the local pairs within the cutoff (`local_pairs`, shared by BPNNModel
and the `.pt2` programs), and the pairs ordered by centre for the per-element loop
(`centre_pairs`). Every field has its shape and meaning.

Centres are ranked by element (stable): the centres of element s have the ranks
element_first[s] .. element_first[s + 1] - 1 and own the pairs element_pair_first[s] ..
element_pair_first[s + 1] - 1, so each element's work is one slice.
"""

from typing import List, NamedTuple

import torch


class PairList(NamedTuple):
    """Pairs (i, j) of local centres i closer than the cutoff, as the potential takes them."""

    centres: torch.Tensor  # (P,) int64 atom index i (< n_local)
    neighbours: torch.Tensor  # (P,) int64 atom index j (ghosts included)
    vectors: torch.Tensor  # (P, 3) r_ij = R_j - R_i + shift @ cell, Å, in the dtype of the sums
    species: torch.Tensor  # (n_atoms,) int64 species index of every atom
    n_local: int  # atoms 0 .. n_local - 1 are centres; the rest are ghosts


class Request(NamedTuple):
    """What an evaluation computes besides the energies."""

    forces: bool  # forces (n_atoms, 3)
    virial: bool  # virial (3, 3) and atomic virials (n_atoms, 3, 3)
    descriptors: bool  # raw and scaled G of every local atom
    jacobian: bool  # dG_i/dr_ij of every pair (training caches; the dense torch path)
    extrapolation: bool  # per atom, functions outside the training range
    pair_gradients: bool = False  # dE/dr_ij (P, 3) of every pair of the PairList, in its order


def needs_pair_gradients(request: Request) -> bool:
    """True if the request needs dE/dr_ij (forces, virials or the pair gradients themselves)."""
    return request.forces or request.virial or request.pair_gradients


class LocalPairs(NamedTuple):
    """The pairs of a pair list that carry energy, with the closest pair of the whole list."""

    centres: torch.Tensor  # (P_kept,) atom index i
    neighbours: torch.Tensor  # (P_kept,) atom index j
    vectors: torch.Tensor  # (P_kept, 3) r_ij, Å
    kept: torch.Tensor  # (P_kept,) index of each kept pair in the given list
    closest_pair: torch.Tensor  # (2,) atoms of the closest pair of the given list (-1, -1: none, or not looked for)
    min_distance: torch.Tensor  # () its distance, Å (inf: none, or not looked for)


def local_pairs(positions: torch.Tensor, cell: torch.Tensor, pairs: torch.Tensor, shifts: torch.Tensor,
                n_local: torch.Tensor, cutoff: float, keep_all: bool, find_closest: bool) -> LocalPairs:
    """r_ij = R_j - R_i + shifts @ cell of pairs (2, P) with integer shifts (P, 3) (positions (N, 3)
    and cell (3, 3) in the dtype of the sums), keeping the pairs of local centres (i < n_local, a
    0-d tensor) closer than `cutoff` (Å); `keep_all`: the list is known to hold only such pairs
    (the model's own search). With `find_closest`, the closest pair of the whole list (before
    the filter); no host synchronisation either way but the filter's `nonzero`."""
    device = positions.device
    vectors = positions[pairs[1]] - positions[pairs[0]] + shifts.to(positions.dtype) @ cell  # (P, 3)
    squares = (vectors * vectors).sum(dim=1)  # (P,)
    closest_pair = torch.full((2,), -1, dtype=torch.long, device=device)
    min_distance = torch.full((), float("inf"), dtype=positions.dtype, device=device)
    if find_closest:  # padded with a non-pair (-1, -1) at infinity: no branch on the number of pairs
        padded = torch.cat([squares, torch.full((1,), float("inf"), dtype=squares.dtype, device=device)])
        closest = torch.argmin(padded).reshape(1)
        none = torch.full((2, 1), -1, dtype=torch.long, device=device)
        closest_pair = torch.cat([pairs, none], dim=1).index_select(1, closest).reshape(2)  # a copy: no view keeps the list
        min_distance = torch.sqrt(padded.index_select(0, closest)).reshape(())
    if keep_all:
        kept = torch.arange(pairs.shape[1], device=device)
        return LocalPairs(pairs[0], pairs[1], vectors, kept, closest_pair, min_distance)
    kept = torch.nonzero((pairs[0] < n_local) & (squares < cutoff * cutoff)).squeeze(1)
    return LocalPairs(pairs[0][kept], pairs[1][kept], vectors[kept], kept, closest_pair, min_distance)


class CentrePairs(NamedTuple):
    """A PairList with its pairs sorted by centre rank (stable)."""

    vectors: torch.Tensor  # (P, 3) r_ij in the model's dtype
    geometry: torch.Tensor  # (P, 3) the same r_ij in the dtype of the sums (float64 in mixed precision)
    centres: torch.Tensor  # (P,) atom index i
    neighbours: torch.Tensor  # (P,) atom index j
    neighbour_species: torch.Tensor  # (P,) species of j
    pair_end: torch.Tensor  # (n_local,) the pairs of rank r end before pair_end[r]
    rank: torch.Tensor  # (n_local,) rank of each local atom
    element_first: List[int]  # (n_species + 1,) first rank of each element's centres, then n_local
    element_pair_first: List[int]  # (n_species + 1,) first pair of each element's centres, then P
    n_atoms: int
    order: torch.Tensor  # (P,) index in the PairList of each pair here


class ElementPairs(NamedTuple):
    """One element's B centres and their P_s pairs, grouped by centre: the input of
    ElementModel.evaluate (the kernels' layout)."""

    vectors: torch.Tensor  # (P_s, 3) r_ij in the model's dtype
    offsets: torch.Tensor  # (B + 1,) centre b owns pairs offsets[b] .. offsets[b + 1] - 1
    neighbour_species: torch.Tensor  # (P_s,) species of j


def centre_pairs(pair_list: PairList, n_species: int, dtype: torch.dtype) -> CentrePairs:
    """`pair_list` with its local centres ranked by element and its pairs sorted by centre rank
    (stable); one host read (the element bounds)."""
    n_local = pair_list.n_local
    device = pair_list.vectors.device
    local_species = pair_list.species[:n_local]
    by_element = torch.argsort(local_species, stable=True)  # rank -> atom
    rank = torch.empty_like(by_element)
    rank[by_element] = torch.arange(n_local, device=device)
    centre_rank, perm = torch.sort(rank[pair_list.centres], stable=True)
    geometry = pair_list.vectors[perm]
    pair_end = torch.searchsorted(centre_rank, torch.arange(1, n_local + 1, device=device))
    ones = torch.ones_like(centre_rank)
    counts = torch.zeros((2, n_species), dtype=torch.long, device=device)
    counts[0] = counts[0].index_add(0, local_species, torch.ones_like(local_species))
    counts[1] = counts[1].index_add(0, local_species[pair_list.centres], ones)
    per_element: List[List[int]] = counts.tolist()
    element_first = [0]
    element_pair_first = [0]
    for s in range(n_species):
        element_first.append(element_first[-1] + per_element[0][s])
        element_pair_first.append(element_pair_first[-1] + per_element[1][s])
    centres = pair_list.centres[perm]
    return CentrePairs(geometry.to(dtype), geometry, centres, pair_list.neighbours[perm],
                       pair_list.species[pair_list.neighbours[perm]], pair_end, rank, element_first,
                       element_pair_first, pair_list.species.shape[0], perm)


def element_pairs(pairs: CentrePairs, s: int) -> ElementPairs:
    """The pairs of element s's centres (it must have some)."""
    r0, r1 = pairs.element_first[s], pairs.element_first[s + 1]
    p0, p1 = pairs.element_pair_first[s], pairs.element_pair_first[s + 1]
    zero = torch.zeros(1, dtype=torch.long, device=pairs.vectors.device)
    return ElementPairs(pairs.vectors[p0:p1], torch.cat([zero, pairs.pair_end[r0:r1] - p0]),
                        pairs.neighbour_species[p0:p1])
