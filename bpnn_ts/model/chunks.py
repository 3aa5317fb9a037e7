"""The dense torch path's layout of one element's pairs: each centre's neighbours of each
element get slots in a block (B, n_species, width, 3), in the order the pairs come, and the
centres are cut into chunks small enough that the largest triplet block stays in cache. The
pairs stay where they are (grouped by centre, so each chunk's pairs are one slice).
"""

from typing import List, NamedTuple, Tuple

import torch

from .pairs import ElementPairs


class DenseSettings(NamedTuple):
    """How the dense path chunks (results do not depend on it)."""

    most_centres: int  # at most this many centres per chunk
    block_budget: int  # elements of the largest triplet block per chunk
    uniform_blocks: bool  # every chunk of an element gets the widest block (equal allocations: no fragmentation)
    padding: float  # Å where empty slots sit (beyond every cutoff)


class NeighbourSlots(NamedTuple):
    """Each pair of one element (in ElementPairs' order) with its block slot."""

    centre: torch.Tensor  # (P_s,) centre (0 .. B - 1) of each pair
    species: torch.Tensor  # (P_s,) neighbour element of each pair
    within: torch.Tensor  # (P_s,) its slot among its centre's neighbours of that element (in pair order)
    counts: torch.Tensor  # (B, n_species) neighbours of each element per centre
    widest: List[int]  # (n_species,) most neighbours of each element any centre has


class BlockIndex(NamedTuple):
    """Where the pairs of one chunk sit in its dense block (B_c, n_species, max width, 3)."""

    slot: torch.Tensor  # (P_c,) centre within the chunk
    species: torch.Tensor  # (P_c,) neighbour element
    within: torch.Tensor  # (P_c,) neighbour slot
    n_centres: int  # B_c
    widths: List[int]  # (n_species,) neighbour slots of each element


def neighbour_slots(pairs: ElementPairs, n_species: int) -> NeighbourSlots:
    """The slots of one element's pairs (one host read: the widest neighbour counts). A pair's
    slot counts its centre's earlier pairs with a neighbour of the same element: per element e,
    the running count of e-pairs less that count at the centre's first pair."""
    offsets, species = pairs.offsets, pairs.neighbour_species
    device = species.device
    n_centres, n_pairs = offsets.shape[0] - 1, species.shape[0]
    centre = torch.searchsorted(offsets[1:], torch.arange(n_pairs, device=device), right=True)  # (P_s,)
    first_pair = offsets[:-1][centre]  # (P_s,) the first pair of each pair's centre
    within = torch.zeros_like(species)
    for e in range(n_species):
        is_e = (species == e).long()
        before = torch.cumsum(is_e, 0) - is_e  # (P_s,) e-pairs before each pair
        within = within + is_e * (before - before[first_pair])
    key = centre * n_species + species
    counts = torch.zeros(n_centres * n_species, dtype=torch.long, device=device)
    counts = counts.index_add(0, key, torch.ones_like(key)).reshape(n_centres, n_species)
    widest: List[int] = counts.max(dim=0).values.tolist()
    return NeighbourSlots(centre, species, within, counts, widest)


def chunk_bounds(slots: NeighbourSlots, offsets: torch.Tensor, centres_per_chunk: int,
                 uniform_blocks: bool) -> Tuple[List[int], List[int], List[List[int]]]:
    """First centre and first pair of each chunk of at most `centres_per_chunk` centres
    (each list ends with B, P_s), and each chunk's block widths (n_chunks, n_species)."""
    n_centres = offsets.shape[0] - 1
    first_centre = list(range(0, n_centres, centres_per_chunk)) + [n_centres]
    device = offsets.device
    first_pair: List[int] = offsets[torch.tensor(first_centre, dtype=torch.long, device=device)].tolist()
    n_chunks = len(first_centre) - 1
    if uniform_blocks:
        return first_centre, first_pair, [slots.widest for _ in range(n_chunks)]
    n_species = slots.counts.shape[1]
    chunk_of_centre = torch.div(torch.arange(n_centres, device=device), centres_per_chunk, rounding_mode="floor")
    widths = torch.zeros((n_chunks, n_species), dtype=torch.long, device=device)
    widths = widths.scatter_reduce(0, chunk_of_centre.unsqueeze(1).expand(-1, n_species), slots.counts, "amax")
    per_chunk: List[List[int]] = widths.tolist()
    return first_centre, first_pair, per_chunk


def block_index(slots: NeighbourSlots, first_centre: List[int], first_pair: List[int], widths: List[List[int]],
                chunk: int) -> BlockIndex:
    """The BlockIndex of chunk `chunk`'s pairs."""
    p0, p1 = first_pair[chunk], first_pair[chunk + 1]
    return BlockIndex(slots.centre[p0:p1] - first_centre[chunk], slots.species[p0:p1], slots.within[p0:p1],
                      first_centre[chunk + 1] - first_centre[chunk], widths[chunk])


def dense_block(vectors: torch.Tensor, index: BlockIndex, padding: float) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
    """A chunk's pair vectors (P_c, 3) as per-element dense blocks: vectors (B, M_e, 3) and
    distances (B, M_e) for each neighbour element e; empty slots sit at `padding` Å, beyond
    every cutoff."""
    widths = index.widths
    padded = torch.zeros((index.n_centres, len(widths), max(max(widths), 1), 3), dtype=vectors.dtype,
                         device=vectors.device)
    padded[:, :, :, 0] = padding
    padded = padded.index_put((index.slot, index.species, index.within), vectors)
    block_vectors = [padded[:, e, : widths[e]] for e in range(len(widths))]
    block_distances = [torch.linalg.norm(b, dim=-1) for b in block_vectors]
    return block_vectors, block_distances


def gather_pairs(blocks: List[torch.Tensor], index: BlockIndex) -> torch.Tensor:
    """Per-pair rows (P_c, ...) from per-element block values (B, M_e, ...) (the inverse of
    `dense_block`'s scatter)."""
    m_max = max(max(index.widths), 1)
    padded: List[torch.Tensor] = []
    for b in blocks:
        pad: List[int] = [0, 0] * (b.dim() - 2) + [0, m_max - b.shape[1]]
        padded.append(torch.nn.functional.pad(b, pad))
    return torch.stack(padded, dim=1)[index.slot, index.species, index.within]
