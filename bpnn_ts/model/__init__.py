"""Everything compiled into the model file (torch.jit.script): cutoffs, neighbour search,
descriptors, networks, the per-element module, forces, committee reduction, the potential
(physics) and BPNNModel (the engine contract). Nothing here imports numpy, yaml or warnings."""

from .engine import BPNNModel
from .potential import BPNNPotential
from .spec import ModelSpec

__all__ = ["BPNNModel", "BPNNPotential", "ModelSpec"]
