"""OpenMM through openmm-ml: `MLPotential("bpnn", modelPath="model.pt")` (docs/openmm.md).

Importing this package is cheap and never needs OpenMM: openmm-ml imports it through its
entry point (`openmmml.potentials`) whenever `openmmml` is imported.
"""

from .factory import BPNNPotentialImplFactory, register

__all__ = ["BPNNPotentialImplFactory", "register"]
