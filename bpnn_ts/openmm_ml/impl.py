"""openmm-ml's implementation of bpnn_ts models: adds one `openmm.PythonForce` to a System.

`MLPotential("bpnn", modelPath="model.pt")` makes one (through `factory.py`); `createSystem`
and `createMixedSystem` call `addForces`. Energies reach OpenMM in kJ/mol, forces in kJ/mol/nm.
"""

import os
from pathlib import Path
from typing import Any, Iterable, List, Optional, Sequence, Union

import openmm
import openmm.app
from openmmml.mlpotential import MLPotentialImpl

from ..elements import symbol
from ..threads import check_threads

OPTIONS = ("modelPath", "device", "threads")  # what MLPotential("bpnn", ...) takes


class BPNNPotentialImpl(MLPotentialImpl):
    """A bpnn_ts model file in OpenMM.

    modelPath: the model file (TorchScript `.pt` or `.pt2`, from `bpnn_ts.export` or
    `bpnn-ts export`); device: torch device, default "cpu"; threads: intra-op threads of each
    evaluation, default 1 (None: torch's setting). device and threads may also be given to
    createSystem / createMixedSystem, which take precedence.
    """

    def __init__(self, name: str, modelPath: Optional[Union[str, "os.PathLike[str]"]] = None,
                 device: str = "cpu", threads: Optional[int] = 1, **args: Any):
        if args:
            raise TypeError(f"MLPotential({name!r}) got unknown argument(s) {sorted(args)}; it takes {list(OPTIONS)}")
        if modelPath is None:
            raise ValueError(f"MLPotential({name!r}) needs `modelPath`, the bpnn_ts model file: "
                             f"MLPotential({name!r}, modelPath='model.pt')")
        if not isinstance(modelPath, (str, os.PathLike)):
            raise TypeError(f"`modelPath` must be a file path, got {type(modelPath).__name__}")
        if not Path(modelPath).is_file():
            raise FileNotFoundError(f"`modelPath`: no model file at {os.fspath(modelPath)!r}")
        self.name = name
        self.modelPath = os.fspath(modelPath)
        self.device = device
        self.threads = check_threads(threads)

    def addForces(self, topology: openmm.app.Topology, system: openmm.System, atoms: Optional[Iterable[int]],
                  forceGroup: int, **args: Any) -> None:
        """Add the model's force for `atoms` (all atoms if None) of `topology` to `system`."""
        from .compute import BPNNForceComputation
        everything = list(topology.atoms())
        indices = None if atoms is None else [int(i) for i in atoms]
        included = everything if indices is None else [everything[i] for i in indices]
        numbers = atomic_numbers(included)
        periodic = topology.getPeriodicBoxVectors() is not None or system.usesPeriodicBoundaryConditions()
        computation = BPNNForceComputation(self.modelPath, numbers, periodic, args.get("device", self.device),
                                           check_threads(args.get("threads", self.threads)))
        check_elements(included, numbers, computation.supported_atomic_numbers(), self.modelPath)
        force = openmm.PythonForce(computation)
        force.setName("BPNNForce")
        force.setForceGroup(forceGroup)
        force.setUsesPeriodicBoundaryConditions(periodic)
        if indices is not None:
            force.setParticles(indices)
        system.addForce(force)

    def getMLLongRange(self) -> bool:
        """False: a BPNN is short-ranged (nothing beyond its cutoff), as ML/MM embedding asks."""
        return False


def describe(atom: openmm.app.topology.Atom) -> str:
    """`atom 7 (H1 of HOH 2)`: an atom as a user finds it in the topology."""
    residue = atom.residue
    return f"atom {atom.index} ({atom.name} of {residue.name} {residue.id})"


def atomic_numbers(atoms: Sequence[openmm.app.topology.Atom]) -> List[int]:
    """Each atom's atomic number; a ValueError naming the first atom without an element."""
    missing = [atom for atom in atoms if atom.element is None]
    if missing:
        raise ValueError(f"{describe(missing[0])} has no element ({len(missing)} such atoms): bpnn needs the element of "
                         "every atom it models; leave virtual sites and extra particles out of its atoms")
    return [int(atom.element.atomic_number) for atom in atoms]


def check_elements(atoms: Sequence[openmm.app.topology.Atom], numbers: Sequence[int], supported: Sequence[int],
                   model_path: str) -> None:
    """A ValueError naming the first atom whose element the model does not know."""
    known = set(supported)
    unknown = [(atom, z) for atom, z in zip(atoms, numbers) if z not in known]
    if unknown:
        atom, z = unknown[0]
        raise ValueError(f"{describe(atom)} is {symbol(z)} (Z={z}), an element the model {model_path} does not know "
                         f"({len(unknown)} such atoms); it knows {[symbol(s) for s in supported]}: model those atoms "
                         "with a force field (createMixedSystem) or use a model trained on them")
