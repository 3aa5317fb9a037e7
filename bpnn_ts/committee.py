"""Committees: K models with the same symmetry functions and network architecture, combined
into one model whose element nets are CommitteeMLPs (energies and forces are the members'
mean; `compute_uncertainty=True` adds their spread, bpnn_ts/model/uncertainty.py).

Members may have been trained apart (other seeds, other data): their input scalings, energy
scales and reference energies are folded exactly into their first and last layers, so they
all share the committee's one scaling, whose training range is the union of theirs.
"""

from typing import List, Sequence, Tuple

import torch

from .model.engine import BPNNModel
from .model.nn import CommitteeMLP, ElementMLP
from .model.spec import ModelSpec
from .model_parts import AnyModel, committee_nets, element_models, element_net, energy_shifts, linear_layers

# spec entries that members must share: descriptors and network architecture
SHARED = ("atomic_numbers", "functions", "cutoff_type", "cutoff_alpha", "hidden_layers", "activations")
STATISTICS = ("g_min", "g_max", "g_mean", "g_sigma")  # the scaling buffers that record the training range


def eager_copy(model: AnyModel) -> BPNNModel:
    """A float64 eager BPNNModel with the weights of `model` (eager or a loaded model file); the
    fused-kernel tables are left out (they follow from the architecture)."""
    target = ModelSpec.from_json(model.model_spec()).build()
    wanted = target.state_dict()
    state = {name: value.detach().cpu().double() if value.is_floating_point() else value.detach().cpu()
             for name, value in model.state_dict().items() if name in wanted}
    missing = sorted(set(wanted) - set(state))
    if missing:
        raise ValueError(f"the model lacks parameters {missing[:5]}: not a bpnn_ts model of this version")
    target.load_state_dict(state)
    return target.eval()


def committee_member(model: AnyModel, member: int) -> BPNNModel:
    """Member `member` of a committee as a model of its own (float64, eager)."""
    size = int(model.committee_size())
    if not 0 <= member < size:
        raise ValueError(f"member must be in [0, {size}), got {member}")
    source = eager_copy(model)
    if size == 1:
        return source
    single = ModelSpec.from_json(source.model_spec()).replace(committee_size=1).build()
    state = {}
    marker = f".net.members.{member}."
    for name, value in source.state_dict().items():
        if ".net.members." not in name:
            state[name] = value
        elif marker in name:
            state[name.replace(marker, ".net.")] = value
    single.load_state_dict(state)
    return single.eval()


def build_committee(models: Sequence[AnyModel]) -> BPNNModel:
    """One committee model (float64, eager, eval mode) of all `models` (eager models or loaded
    model files; committees among them contribute each of their members).

    They must share elements, symmetry functions, cutoff function and network architecture.
    Scalings, energy scales and reference energies may differ; a member whose output layer is
    not linear must share the first member's energy scale and reference energies."""
    members = [committee_member(m, k) for m in models for k in range(int(m.committee_size()))]
    if len(members) < 2:
        raise ValueError(f"a committee needs at least 2 networks per element, got {len(members)}")
    specs = [ModelSpec.from_json(m.model_spec()) for m in members]
    for k, spec in enumerate(specs[1:], start=1):
        differing = [key for key in SHARED if getattr(spec, key) != getattr(specs[0], key)]
        if differing:
            raise ValueError(f"member {k} differs from member 0 in {differing}: committee members need the same "
                             "symmetry functions and network architecture")
    shifts = torch.stack([energy_shifts(m) for m in members]).mean(dim=0)  # (n_elements,)
    committee = specs[0].replace(atomic_energy_shift=dict(zip(specs[0].atomic_numbers, shifts.tolist())),
                                 committee_size=len(members)).build()
    with torch.no_grad():
        for s, element in enumerate(element_models(committee)):
            scalings = [element_models(m)[s].scaling for m in members]
            if all(sc.has_statistics for sc in scalings):
                stats = [torch.stack([sc.get_buffer(name) for name in STATISTICS]) for sc in scalings]
                stacked = torch.stack(stats)  # (K, 4, F)
                element.scaling.set_statistics(stacked[:, 0].min(dim=0).values, stacked[:, 1].max(dim=0).values,
                                               stacked[:, 2].mean(dim=0), stacked[:, 3].max(dim=0).values)
            committee_net = element_net(element)
            assert isinstance(committee_net, CommitteeMLP)  # committee_size >= 2
            for k, member in enumerate(members):
                member_net = element_net(element_models(member)[s])
                assert isinstance(member_net, ElementMLP)  # committee_member: committee_size 1
                layers = [_copy_layer(layer) for layer in linear_layers(member_net)]
                _fold_input_scaling(layers[0], scalings[k], element.scaling)
                _fold_output(layers[-1], member, committee, s, k)
                for target, layer in zip(linear_layers(committee_nets(committee_net)[k]), layers):
                    target.weight.copy_(layer[0])
                    target.bias.copy_(layer[1])
    return committee.eval()


def _copy_layer(layer: torch.nn.Linear) -> List[torch.Tensor]:
    return [layer.weight.detach().clone(), layer.bias.detach().clone()]


def _input_map(own, reference) -> Tuple[torch.Tensor, torch.Tensor]:
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


def _fold_input_scaling(first: List[torch.Tensor], own, reference) -> None:
    """First layer on reference-scaled inputs computing what it computed on its own scaling."""
    a, c = _input_map(own, reference)
    weight, bias = first
    first[1] = bias + weight @ c
    first[0] = weight * a.unsqueeze(0)


def _fold_output(last: List[torch.Tensor], member: BPNNModel, committee: BPNNModel, s: int, k: int) -> None:
    """Last layer giving energies in the committee's energy scale and reference energies."""
    own, shared = member.potential, committee.potential
    ratio = own.energy_scale / shared.energy_scale
    offset = float(energy_shifts(member)[s] - energy_shifts(committee)[s]) / shared.energy_scale
    if ratio == 1.0 and offset == 0.0:
        return
    net = element_net(element_models(member)[s])
    assert isinstance(net, ElementMLP)  # committee_member: committee_size 1
    output_activation = net.activation_names[-1]
    if output_activation not in ("identity", "l"):
        raise ValueError(f"member {k}: its output activation {output_activation!r} is not linear, so its energy "
                         "scale and reference energies must equal member 0's")
    last[0] = last[0] * ratio
    last[1] = last[1] * ratio + offset

