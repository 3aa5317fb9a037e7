"""Linear-scaling neighbour list (cell list) in pure, scriptable torch, and the model's pair-search
slot (`PairSearch`: the torch cell list, or the whole search as one C++ op, `native_pair_search`,
with the fused kernels: TorchScript and `.pt2` files).

Convention (also in export/CONTRACT.md): for a pair (i, j) with integer cell
shift S (3,), the vector from i to j is r_ij = R_j - R_i + S @ cell, where the
rows of `cell` are the lattice vectors. The list is *full*: (i, j, S) and
(j, i, -S) are both present. Periodic images of an atom are neighbours of it
(cutoffs larger than the cell work); (i, i, 0) never appears.
"""

from typing import List, Tuple

import torch

from .jit import interface


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / torch.linalg.norm(v)


def _axes(pbc: List[bool], periodic: bool) -> List[int]:
    """Indices k of the axes whose pbc[k] equals `periodic`."""
    axes: List[int] = []
    for k in range(3):
        if pbc[k] == periodic:
            axes.append(k)
    return axes


def effective_cell(cell: torch.Tensor, pbc: List[bool]) -> torch.Tensor:
    """(3, 3) cell whose non-periodic rows are replaced by unit vectors orthogonal
    to the periodic ones, so that fractional coordinates along periodic axes are
    defined whatever the non-periodic rows hold (zeros included)."""
    periodic = _axes(pbc, True)
    loose = _axes(pbc, False)
    if len(periodic) == 3:
        return cell
    rows = [cell[0], cell[1], cell[2]]
    if len(periodic) == 0:
        return torch.eye(3, dtype=cell.dtype, device=cell.device)
    if len(periodic) == 2:
        rows[loose[0]] = _unit(torch.linalg.cross(cell[periodic[0]], cell[periodic[1]]))
    else:
        u = _unit(cell[periodic[0]])
        helper = torch.zeros(3, dtype=cell.dtype, device=cell.device)
        if float(torch.abs(u[0])) < 0.9:
            helper[0] = 1.0
        else:
            helper[1] = 1.0
        v1 = _unit(torch.linalg.cross(u, helper))
        rows[loose[0]] = v1
        rows[loose[1]] = torch.linalg.cross(u, v1)
    return torch.stack(rows)


def check_cell(cell: torch.Tensor, pbc: List[bool], name: str = "cell") -> None:
    """Raise if the periodic lattice vectors span no volume (3 periodic axes), area (2) or length
    (1): that measure must exceed 1e-10 of the product of their lengths (every pbc pattern;
    NaN-safe). `name`: the argument the message names."""
    periodic = _axes(pbc, True)
    if len(periodic) == 0:
        return
    lengths = 1.0
    for k in periodic:
        length = float(torch.linalg.norm(cell[k]))
        if not length >= 1e-8:
            raise ValueError("`" + name + "` row " + str(k) + " is zero but pbc is True along that axis; "
                             + "give a lattice vector or set pbc False there")
        lengths = lengths * length
    if len(periodic) == 3:
        measure = float(torch.abs(torch.linalg.det(cell)))
    elif len(periodic) == 2:
        measure = float(torch.linalg.norm(torch.linalg.cross(cell[periodic[0]], cell[periodic[1]])))
    else:
        measure = lengths
    if not measure > 1e-10 * lengths:  # (also catches NaN)
        what = ["length", "area", "volume"][len(periodic) - 1]
        values: List[List[float]] = cell.tolist()
        raise ValueError("`" + name + "` has zero " + what + " along its periodic axes " + str(periodic)
                         + " (the periodic lattice vectors are linearly dependent); got cell "
                         + str(values) + " with pbc " + str(pbc))


def image_counts(reach: torch.Tensor, pbc: List[bool], cutoff: float, n_atoms: int, cell: torch.Tensor) -> List[int]:
    """Images needed along each axis (0 where not periodic) for fractional reach `reach` (3,);
    refuses a cell far too small for the cutoff (more than 5e7 atom images to consider)."""
    periodic = torch.tensor(pbc, device=reach.device)
    n_images: List[int] = torch.where(periodic, torch.ceil(reach), torch.zeros_like(reach)).long().tolist()
    n_shifts = (2 * n_images[0] + 1) * (2 * n_images[1] + 1) * (2 * n_images[2] + 1)
    if n_shifts * max(n_atoms, 1) > 50_000_000:  # atoms x images to consider: beyond this the cell is absurd
        values: List[List[float]] = cell.tolist()
        raise ValueError("`cell`: the cell is far too small for the cutoff (" + str(cutoff) + " Å): every atom would need "
                         + str(n_shifts) + " periodic images; check the cell's units and shape, got cell "
                         + str(values))
    return n_images


def check_images(cell: torch.Tensor, pbc: List[bool], cutoff: float, n_atoms: int) -> None:
    """Refuse a (checked, non-degenerate) cell far too small for the cutoff, as the searches do."""
    if pbc[0] or pbc[1] or pbc[2]:
        inverse = torch.linalg.inv(effective_cell(cell, pbc))
        image_counts(cutoff * torch.linalg.norm(inverse, dim=0) + 1e-6, pbc, cutoff, n_atoms, cell)


def _periodic_images(
    positions: torch.Tensor, cell: torch.Tensor, pbc: List[bool], cutoff: float
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Wrap atoms into the cell and add the images within `cutoff` of it.

    Returns points (M, 3), the atom of each point (M,), the integer shift of each
    point relative to its wrapped atom (M, 3), and each atom's wrap (N, 3); the
    first N points are the wrapped atoms themselves (shift 0).
    """
    n_atoms = positions.shape[0]
    device = positions.device
    index = torch.arange(n_atoms, device=device)
    zero_shift = torch.zeros((n_atoms, 3), dtype=torch.long, device=device)
    if not (pbc[0] or pbc[1] or pbc[2]):
        return positions, index, zero_shift, zero_shift
    periodic = torch.tensor(pbc, device=device)
    eff = effective_cell(cell, pbc)
    inverse = torch.linalg.inv(eff)
    frac = positions @ inverse  # (n_atoms, 3)
    wrap = torch.where(periodic, torch.floor(frac), torch.zeros_like(frac))
    wrapped = positions - wrap @ eff
    frac = frac - wrap
    reach = cutoff * torch.linalg.norm(inverse, dim=0) + 1e-6  # (3,) cutoff in fractional units
    n_images = image_counts(reach, pbc, cutoff, n_atoms, cell)
    grid = torch.stack(torch.meshgrid(
        torch.arange(-n_images[0], n_images[0] + 1, device=device),
        torch.arange(-n_images[1], n_images[1] + 1, device=device),
        torch.arange(-n_images[2], n_images[2] + 1, device=device), indexing="ij"), dim=-1)
    shifts = grid.reshape(-1, 3)
    shifts = shifts[(shifts != 0).any(dim=1)]  # (n_shifts, 3)
    image_frac = frac.unsqueeze(0) + shifts.unsqueeze(1).to(frac.dtype)  # (n_shifts, n_atoms, 3)
    inside = (image_frac > -reach) & (image_frac < 1.0 + reach)
    keep = (inside | ~periodic).all(dim=2)
    kept = torch.nonzero(keep)  # (n_images, 2): shift index, atom index
    shift_index, atom_index = kept[:, 0], kept[:, 1]
    image_shift = shifts[shift_index]  # (n_images, 3)
    image_positions = wrapped[atom_index] + image_shift.to(positions.dtype) @ eff
    points = torch.cat([wrapped, image_positions])
    point_atom = torch.cat([index, atom_index])
    point_shift = torch.cat([zero_shift, image_shift])
    return points, point_atom, point_shift, wrap.long()


def neighbor_list(
    positions: torch.Tensor,
    cell: torch.Tensor,
    pbc: torch.Tensor,
    cutoff: float,
    max_candidates: int = 2_000_000,
    check: bool = True,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """All pairs closer than `cutoff` (Å): pairs (2, n_pairs) [i; j] and shifts
    (n_pairs, 3) int64, grouped by centre i. Cost and memory are linear in the
    number of atoms; at most `max_candidates` candidate pairs live at once. `check`: refuse a
    degenerate periodic cell first (False where the caller has checked it: BPNNModel)."""
    if cutoff <= 0.0:
        raise ValueError("`cutoff` must be positive, got " + str(cutoff))
    device = positions.device
    n_atoms = positions.shape[0]
    pbc_list: List[bool] = pbc.tolist()
    empty = torch.zeros((2, 0), dtype=torch.long, device=device)
    if n_atoms == 0:
        return empty, torch.zeros((0, 3), dtype=torch.long, device=device)
    if check:
        check_cell(cell, pbc_list)
    points, point_atom, point_shift, wrap = _periodic_images(positions, cell, pbc_list, cutoff)
    n_points = points.shape[0]

    # Cartesian bins at least `cutoff` wide: every neighbour sits in one of 27 bins.
    low = points.min(dim=0).values
    extent = points.max(dim=0).values - low
    n_bins_t = torch.clamp(torch.floor(extent / cutoff), min=1.0).long()
    n_bins: List[int] = n_bins_t.tolist()
    max_bins = max(64, 4 * n_points)  # far-apart atoms: coarser bins, never a huge grid
    while n_bins[0] * n_bins[1] * n_bins[2] > max_bins:
        n_bins = [max(1, (n_bins[0] + 1) // 2), max(1, (n_bins[1] + 1) // 2), max(1, (n_bins[2] + 1) // 2)]
    n_bins_t = torch.tensor(n_bins, device=device)
    bin_length = torch.clamp(extent / n_bins_t.to(extent.dtype), min=cutoff)
    bin3 = torch.floor((points - low) / bin_length).long()
    bin3 = torch.minimum(torch.clamp(bin3, min=0), n_bins_t - 1)  # (n_points, 3)
    strides = torch.tensor([n_bins[1] * n_bins[2], n_bins[2], 1], device=device)
    bin_id = (bin3 * strides).sum(dim=1)
    order = torch.argsort(bin_id, stable=True)
    bin_count = torch.bincount(bin_id, minlength=n_bins[0] * n_bins[1] * n_bins[2])
    bin_start = torch.cumsum(bin_count, 0) - bin_count

    offsets = torch.stack(torch.meshgrid(
        torch.arange(-1, 2, device=device), torch.arange(-1, 2, device=device),
        torch.arange(-1, 2, device=device), indexing="ij"), dim=-1).reshape(27, 3)
    near3 = bin3[:n_atoms].unsqueeze(1) + offsets.unsqueeze(0)  # (n_atoms, 27, 3)
    valid = ((near3 >= 0) & (near3 < n_bins_t)).all(dim=2)
    near_id = (torch.minimum(torch.clamp(near3, min=0), n_bins_t - 1) * strides).sum(dim=2)
    count = torch.where(valid, bin_count[near_id], torch.zeros_like(near_id))  # (n_atoms, 27)
    start = bin_start[near_id]

    # Chunks of centres holding about `max_candidates` candidate pairs each.
    cumulative = torch.cumsum(count.sum(dim=1), 0)
    total = int(cumulative[-1])
    targets = torch.arange(1, total // max_candidates + 1, device=device) * max_candidates
    inner: List[int] = torch.searchsorted(cumulative, targets).tolist()
    edges: List[int] = [0] + inner + [n_atoms]
    cutoff2 = cutoff * cutoff
    pair_i: List[torch.Tensor] = []
    pair_j: List[torch.Tensor] = []
    pair_shift: List[torch.Tensor] = []
    for c in range(len(edges) - 1):
        a, b = edges[c], edges[c + 1]
        if b <= a:
            continue
        group_count = count[a:b].reshape(-1)
        n_candidates = int(group_count.sum())
        group = torch.repeat_interleave(torch.arange(group_count.shape[0], device=device),
                                        group_count, output_size=n_candidates)
        group_first = torch.cumsum(group_count, 0) - group_count
        within = torch.arange(n_candidates, device=device) - group_first[group]
        point = order[start[a:b].reshape(-1)[group] + within]  # (n_candidates,)
        centre = a + torch.div(group, 27, rounding_mode="floor")
        delta = points[point] - points[centre]
        keep = ((delta * delta).sum(dim=1) < cutoff2) & (point != centre)
        i = centre[keep]
        j_point = point[keep]
        j = point_atom[j_point]
        pair_i.append(i)
        pair_j.append(j)
        pair_shift.append(point_shift[j_point] - wrap[j] + wrap[i])
    if len(pair_i) == 0:
        return empty, torch.zeros((0, 3), dtype=torch.long, device=device)
    pairs = torch.stack([torch.cat(pair_i), torch.cat(pair_j)])
    return pairs, torch.cat(pair_shift)


def native_neighbor_list(positions: torch.Tensor, cell: torch.Tensor, pbc: torch.Tensor,
                         cutoff: float, check: bool = True) -> Tuple[torch.Tensor, torch.Tensor]:
    """`neighbor_list` with the pair search in C++ (torch.ops.bpnn.cell_list; CPU, or CUDA), the periodic
    images in torch: the same pairs and shifts in the same order. TorchScript files of bpnn_ts
    0.3.0 before this change called it (the `.pt2` loader's Python side still does); files now call
    `native_pair_search`. Only scripted where the C++ ops are registered."""
    if cutoff <= 0.0:
        raise ValueError("`cutoff` must be positive, got " + str(cutoff))
    n_atoms = positions.shape[0]
    pbc_list: List[bool] = pbc.tolist()
    if n_atoms == 0:
        return (torch.zeros((2, 0), dtype=torch.long, device=positions.device),
                torch.zeros((0, 3), dtype=torch.long, device=positions.device))
    if check:
        check_cell(cell, pbc_list)
    points, point_atom, point_shift, wrap = _periodic_images(positions, cell, pbc_list, cutoff)
    found = torch.ops.bpnn.cell_list(points, n_atoms, cutoff)
    i, j_point = found[0], found[1]
    j = point_atom[j_point]
    return torch.stack([i, j]), point_shift[j_point] - wrap[j] + wrap[i]


def native_pair_search(positions: torch.Tensor, cell: torch.Tensor, pbc: torch.Tensor,
                       cutoff: float, check: bool = True) -> Tuple[torch.Tensor, torch.Tensor]:
    """`neighbor_list` as one C++ op, periodic images included (torch.ops.bpnn.neighbor_list,
    bpnn_ts/native/cpu/neighbor_list.h; CPU; 2-3x faster than `native_neighbor_list`): the same pairs
    and shifts, for float64 input also in the same order (by centre, then as the cell list visits
    the candidates); float32 input is searched in float64. `.pt2` files call the op."""
    if cutoff <= 0.0:
        raise ValueError("`cutoff` must be positive, got " + str(cutoff))
    if positions.shape[0] == 0:
        return (torch.zeros((2, 0), dtype=torch.long, device=positions.device),
                torch.zeros((0, 3), dtype=torch.long, device=positions.device))
    if check:
        pbc_list: List[bool] = pbc.tolist()
        check_cell(cell, pbc_list)
    found = torch.ops.bpnn.neighbor_list(positions, cell, pbc, cutoff)
    return found[0], found[1]


@interface
class PairSearch(torch.nn.Module):
    def forward(self, positions: torch.Tensor, cell: torch.Tensor, pbc: torch.Tensor,
                cutoff: float) -> Tuple[torch.Tensor, torch.Tensor]:
        """pairs (2, P) and integer shifts (P, 3) of every pair closer than `cutoff` (Å), for a
        cell the caller has checked (`check_cell`)."""
        pass


class TorchPairSearch(torch.nn.Module):
    """The pure-torch cell list (`neighbor_list`)."""

    def forward(self, positions: torch.Tensor, cell: torch.Tensor, pbc: torch.Tensor,
                cutoff: float) -> Tuple[torch.Tensor, torch.Tensor]:
        return neighbor_list(positions, cell, pbc, cutoff, check=False)


class NativePairSearch(torch.nn.Module):
    """The whole search in C++ (`native_pair_search`: torch.ops.bpnn.neighbor_list, periodic
    images included): on the CPU, and on CUDA where the op library holds the CUDA kernels
    (torch.ops.bpnn.cuda_kernels(): bpnn_ts/native/cuda/neighbor_list_cuda.cu, the same list); other
    devices, or CUDA without those kernels: the torch cell list. Both ops are in bpnn_ts >= 0.3
    libraries, which files of 0.3 need anyway."""

    def forward(self, positions: torch.Tensor, cell: torch.Tensor, pbc: torch.Tensor,
                cutoff: float) -> Tuple[torch.Tensor, torch.Tensor]:
        if positions.device.type != "cpu" and not (positions.device.type == "cuda" and torch.ops.bpnn.cuda_kernels()):
            return neighbor_list(positions, cell, pbc, cutoff, check=False)
        return native_pair_search(positions, cell, pbc, cutoff, check=False)
