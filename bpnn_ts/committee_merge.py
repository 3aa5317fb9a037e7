"""Committees: K models with the same symmetry functions and network architecture merged into
one model whose element nets are CommitteeMLPs (energies and forces are the members' mean;
`compute_uncertainty=True` adds their spread, bpnn_ts/model/uncertainty.py), and a member taken
back out (`committee_member`).

Members may have been trained apart (other seeds, other data): their input scalings, energy
scales and reference energies are folded exactly into their first and last layers, so they
all share the committee's one scaling, whose training range is the union of theirs.
"""

from typing import Any, Sequence, Tuple

import torch

from .formats.eager import eager_copy
from .model.descriptors.scaling import Scaling
from .model.engine import BPNNModel

# spec entries that members must share: descriptors and network architecture
SHARED = ("atomic_numbers", "functions", "cutoff_type", "cutoff_alpha", "hidden_layers", "activations")
Layer = Tuple[torch.Tensor, torch.Tensor]  # weight (n_out, n_in), bias (n_out,)


def committee_member(model: Any, member: int) -> BPNNModel:
    """Member `member` of a committee (eager, or a loaded model file) as a model of its own
    (float64, eager)."""
    size = int(model.committee_size())
    if not 0 <= member < size:
        raise ValueError(f"member must be in [0, {size}), got {member}")
    source = eager_copy(model)
    if size == 1:
        return source
    single = BPNNModel.from_spec(source.spec().replace(committee_size=1))
    state = {}
    marker = f".net.members.{member}."
    for name, value in source.state_dict().items():
        if ".net.members." not in name:
            state[name] = value
        elif marker in name:
            state[name.replace(marker, ".net.")] = value
    single.load_state_dict(state)
    return single.eval()


def build_committee(models: Sequence[Any]) -> BPNNModel:
    """One committee model (float64, eager, eval mode) of all `models` (eager models or loaded
    model files; committees among them contribute each of their members).

    They must share elements, symmetry functions, cutoff function and network architecture.
    Scalings, energy scales and reference energies may differ; a member whose output layer is
    not linear must share the first member's energy scale and reference energies."""
    members = [committee_member(m, k) for m in models for k in range(int(m.committee_size()))]
    if len(members) < 2:
        raise ValueError(f"a committee needs at least 2 networks per element, got {len(members)}")
    specs = [m.spec() for m in members]
    for k, spec in enumerate(specs[1:], start=1):
        differing = [key for key in SHARED if getattr(spec, key) != getattr(specs[0], key)]
        if differing:
            raise ValueError(f"member {k} differs from member 0 in {differing}: committee members need the same "
                             "symmetry functions and network architecture")
    shifts = torch.stack([m.energy_shifts() for m in members]).mean(dim=0)  # (n_elements,)
    committee = BPNNModel.from_spec(specs[0].replace(
        atomic_energy_shift=dict(zip(specs[0].atomic_numbers, shifts.tolist())), committee_size=len(members)))
    member_parts = [m.element_parts() for m in members]
    with torch.no_grad():
        for s, part in enumerate(committee.element_parts()):
            scalings = [parts[s].scaling for parts in member_parts]
            if all(sc.has_statistics for sc in scalings):
                stacked = torch.stack([sc.statistics() for sc in scalings])  # (K, F, 4)
                part.scaling.set_statistics(stacked[:, :, 0].min(dim=0).values, stacked[:, :, 1].max(dim=0).values,
                                            stacked[:, :, 2].mean(dim=0), stacked[:, :, 3].max(dim=0).values)
                held_by_all = torch.stack([sc.factor == 0 for sc in scalings]).all(dim=0)  # (negligible functions)
                part.scaling.hold(held_by_all & (part.scaling.g_max > part.scaling.g_min))
            for k, member in enumerate(members):
                (member_net,) = member_parts[k][s].nets  # committee_member: one network each
                layers = member_net.get_layers()
                layers[0] = _fold_input_scaling(layers[0], scalings[k], part.scaling)
                layers[-1] = _fold_output(layers[-1], member, committee, s, k)
                part.nets[k].set_layers(layers)
    committee.weights_origin = "committee"
    return committee.eval()


def _input_map(own: Scaling, reference: Scaling) -> Tuple[torch.Tensor, torch.Tensor]:
    """(a, c) with own(G) = a * reference(G) + c for scalings of the form (G - shift) * factor
    + offset; where the reference factor is 0 (a function constant in training) G is taken
    at the reference's Gmin."""
    usable = reference.factor != 0
    safe = torch.where(usable, reference.factor, torch.ones_like(reference.factor))
    g_at_reference_zero = reference.shift - reference.offset / safe  # G where reference(G) = 0
    constant_g = torch.where(usable, g_at_reference_zero, reference.g_min)
    a = torch.where(usable, own.factor / safe, torch.zeros_like(safe))
    c = (constant_g - own.shift) * own.factor + own.offset
    return a, c


def _fold_input_scaling(first: Layer, own: Scaling, reference: Scaling) -> Layer:
    """The first layer on reference-scaled inputs computing what it computed on its own scaling."""
    a, c = _input_map(own, reference)
    weight, bias = first
    return weight * a.unsqueeze(0), bias + weight @ c


def _fold_output(last: Layer, member: BPNNModel, committee: BPNNModel, s: int, k: int) -> Layer:
    """The last layer giving energies in the committee's energy scale and reference energies."""
    own, shared = member.spec(), committee.spec()
    ratio = own.energy_scale / shared.energy_scale
    offset = float(member.energy_shifts()[s] - committee.energy_shifts()[s]) / shared.energy_scale
    if ratio == 1.0 and offset == 0.0:
        return last
    output_activation = own.activations[-1]
    if output_activation not in ("identity", "l"):
        raise ValueError(f"member {k}: its output activation {output_activation!r} is not linear, so its energy "
                         "scale and reference energies must equal member 0's")
    weight, bias = last
    return weight * ratio, bias * ratio + offset


