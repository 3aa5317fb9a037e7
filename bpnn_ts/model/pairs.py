"""What travels between the stages of an evaluation: the pair list an engine (or the model's own
neighbour search) gives, the pairs ordered by centre for per-element work, and the chunk plan
of the dense torch path. Free functions build them; every field has its shape and meaning.

Centres are ranked by element (stable): the centres of element s have the ranks
element_first[s] .. element_first[s + 1] - 1, so each element's work is one slice.
"""

from typing import List, NamedTuple, Tuple

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


class CentrePairs(NamedTuple):
    """A PairList ordered by centre rank (and, for the dense path, neighbour element)."""

    vectors: torch.Tensor  # (P, 3) r_ij in the model's dtype
    geometry: torch.Tensor  # (P, 3) the same r_ij in the dtype of the sums (float64 in mixed precision)
    centres: torch.Tensor  # (P,) atom index i
    neighbours: torch.Tensor  # (P,) atom index j
    neighbour_species: torch.Tensor  # (P,) species of j
    centre_rank: torch.Tensor  # (P,) rank of i
    rank: torch.Tensor  # (n_local,) rank of each local atom
    rank_species: torch.Tensor  # (n_local,) species of the centre of each rank
    element_first: List[int]  # (n_species + 1,) first rank of each element's centres, then n_local
    n_atoms: int
    order: torch.Tensor  # (P,) index in the PairList of each pair here


class ChunkPlan(NamedTuple):
    """Chunks of centres of one element for the dense torch path, with their block widths."""

    first_rank: List[int]  # (n_chunks,) rank of each chunk's first centre
    n_centres: List[int]  # (n_chunks,) centres in each chunk
    element_chunks: List[int]  # (n_species + 1,) chunks of element s: element_chunks[s] .. [s + 1] - 1
    widths: List[List[int]]  # (n_chunks, n_species) neighbour slots of each element in a chunk's block
    pair_start: List[int]  # (n_chunks + 1,) pairs of chunk c: pair_start[c] .. pair_start[c + 1] - 1
    slot: torch.Tensor  # (P,) position of each pair's centre within its chunk
    within: torch.Tensor  # (P,) position of each pair's neighbour among its centre's neighbours of that element


class BlockIndex(NamedTuple):
    """Where the pairs of one chunk sit in its dense block (B, n_species, max width, 3)."""

    slot: torch.Tensor  # (P_c,) centre within the chunk
    species: torch.Tensor  # (P_c,) neighbour element
    within: torch.Tensor  # (P_c,) neighbour slot
    n_centres: int  # B
    widths: List[int]  # (n_species,) neighbour slots of each element


def centre_pairs(pair_list: PairList, n_species: int, dtype: torch.dtype, by_neighbour_species: bool) -> CentrePairs:
    """`pair_list` with its local centres ranked by element and its pairs sorted by centre rank
    (stable), or with `by_neighbour_species` by (centre rank, neighbour species)."""
    n_local = pair_list.n_local
    device = pair_list.vectors.device
    local_species = pair_list.species[:n_local]
    order = torch.argsort(local_species, stable=True)  # rank -> atom
    rank = torch.empty_like(order)
    rank[order] = torch.arange(n_local, device=device)
    neighbour_species = pair_list.species[pair_list.neighbours]
    if by_neighbour_species:
        key_sorted, perm = torch.sort(rank[pair_list.centres] * n_species + neighbour_species)
        centre_rank = torch.div(key_sorted, n_species, rounding_mode="floor")
        neighbour_species = key_sorted % n_species
    else:
        centre_rank, perm = torch.sort(rank[pair_list.centres], stable=True)
        neighbour_species = neighbour_species[perm]
    geometry = pair_list.vectors[perm]
    vectors = geometry.to(dtype)
    counts: List[int] = torch.bincount(local_species, minlength=n_species).tolist()
    element_first = [0]
    for count in counts:
        element_first.append(element_first[-1] + count)
    return CentrePairs(vectors, geometry, pair_list.centres[perm], pair_list.neighbours[perm], neighbour_species,
                       centre_rank, rank, local_species[order], element_first, pair_list.species.shape[0], perm)


def neighbour_counts(pairs: CentrePairs, n_species: int) -> Tuple[torch.Tensor, torch.Tensor, List[List[int]]]:
    """For pairs sorted by (centre rank, neighbour species): neighbours of each element per centre
    rank (n_local, n_species), each pair's slot among its centre's neighbours of that element
    (P,), and the most neighbours of each element any centre of each element has
    (n_species x n_species: [centre element][neighbour element])."""
    n_local = pairs.rank.shape[0]
    device = pairs.vectors.device
    key = pairs.centre_rank * n_species + pairs.neighbour_species
    group_count = torch.bincount(key, minlength=n_local * n_species)
    within = torch.arange(key.shape[0], device=device) - (torch.cumsum(group_count, 0) - group_count)[key]
    counts = group_count.reshape(n_local, n_species)
    widest_t = torch.zeros((n_species, n_species), dtype=torch.long, device=device)
    widest_t = widest_t.scatter_reduce(0, pairs.rank_species.unsqueeze(1).expand(-1, n_species), counts, "amax")
    widest: List[List[int]] = widest_t.tolist()
    return counts, within, widest


def plan_chunks(pairs: CentrePairs, counts: torch.Tensor, within: torch.Tensor, widest: List[List[int]],
                centres_per_chunk: List[int], uniform_blocks: bool) -> ChunkPlan:
    """Cut each element's centres into chunks of at most `centres_per_chunk[s]`. With
    `uniform_blocks` every chunk of an element gets that element's widest block (equal
    allocations chunk after chunk: no heap fragmentation), else each chunk its own."""
    n_local, n_species = counts.shape[0], counts.shape[1]
    device = counts.device
    first_rank: List[int] = []
    n_centres: List[int] = []
    element_chunks: List[int] = [0]
    first = pairs.element_first
    for s in range(n_species):
        for start in range(first[s], first[s + 1], centres_per_chunk[s]):
            first_rank.append(start)
            n_centres.append(min(centres_per_chunk[s], first[s + 1] - start))
        element_chunks.append(len(first_rank))
    species = pairs.rank_species
    first_t = torch.tensor(first[:n_species], device=device, dtype=torch.long)
    base_t = torch.tensor(element_chunks[:n_species], device=device, dtype=torch.long)
    size_t = torch.tensor(centres_per_chunk, device=device, dtype=torch.long)[species]
    offset_in_element = torch.arange(n_local, device=device) - first_t[species]
    slot = (offset_in_element % size_t)[pairs.centre_rank]
    widths: List[List[int]] = []
    if uniform_blocks:
        for s in range(n_species):
            for _ in range(element_chunks[s], element_chunks[s + 1]):
                widths.append(widest[s])
    else:
        chunk_of_rank = base_t[species] + torch.div(offset_in_element, size_t, rounding_mode="floor")
        chunk_widths = torch.zeros((len(first_rank), n_species), dtype=torch.long, device=device)
        chunk_widths = chunk_widths.scatter_reduce(0, chunk_of_rank.unsqueeze(1).expand(-1, n_species), counts, "amax")
        per_chunk: List[List[int]] = chunk_widths.tolist()
        widths = per_chunk
    pair_end = torch.cumsum(counts.sum(dim=1), 0)
    firsts = torch.tensor(first_rank, dtype=torch.long, device=device)
    starts = torch.where(firsts > 0, pair_end[torch.clamp(firsts - 1, min=0)], torch.zeros_like(firsts))
    pair_start: List[int] = starts.tolist()
    pair_start.append(int(pairs.vectors.shape[0]))
    return ChunkPlan(first_rank, n_centres, element_chunks, widths, pair_start, slot, within)


def block_index(plan: ChunkPlan, pairs: CentrePairs, chunk: int) -> BlockIndex:
    """The BlockIndex of chunk `chunk`'s pairs."""
    p0, p1 = plan.pair_start[chunk], plan.pair_start[chunk + 1]
    return BlockIndex(plan.slot[p0:p1], pairs.neighbour_species[p0:p1], plan.within[p0:p1],
                      plan.n_centres[chunk], plan.widths[chunk])


def dense_block(vectors: torch.Tensor, index: BlockIndex, padding: float) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
    """A chunk's pair vectors (P_c, 3) as per-element dense blocks: vectors (B, M_e, 3) and
    distances (B, M_e) for each neighbour element e; empty slots sit at `padding` Å, beyond
    every cutoff."""
    widths = index.widths
    padded = torch.zeros((index.n_centres, len(widths), max(widths), 3), dtype=vectors.dtype, device=vectors.device)
    padded[:, :, :, 0] = padding
    padded = padded.index_put((index.slot, index.species, index.within), vectors)
    block_vectors = [padded[:, e, : widths[e]] for e in range(len(widths))]
    block_distances = [torch.linalg.norm(b, dim=-1) for b in block_vectors]
    return block_vectors, block_distances


def gather_pairs(blocks: List[torch.Tensor], index: BlockIndex) -> torch.Tensor:
    """Per-pair rows (P_c, ...) from per-element block values (B, M_e, ...) (the inverse of
    `dense_block`'s scatter)."""
    m_max = max(index.widths)
    padded: List[torch.Tensor] = []
    for b in blocks:
        pad: List[int] = [0, 0] * (b.dim() - 2) + [0, m_max - b.shape[1]]
        padded.append(torch.nn.functional.pad(b, pad))
    return torch.stack(padded, dim=1)[index.slot, index.species, index.within]
