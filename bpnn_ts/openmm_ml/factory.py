"""The entry point openmm-ml loads: a factory that makes `BPNNPotentialImpl`s.

openmm-ml imports every entry point of `openmmml.potentials` while `openmmml` itself is being
imported, and calls the factory class with no arguments. So this module imports neither OpenMM
nor openmm-ml (the implementation, `impl.py`, is imported on first use): subclassing
`MLPotentialImplFactory` here would import `openmmml` from inside its own import when a user
imports bpnn_ts's OpenMM code first. openmm-ml only calls `createImpl`, which this class has.
"""

from typing import Any

NAME = "bpnn"  # the potential's name in MLPotential(NAME, ...), as the entry point registers it


class BPNNPotentialImplFactory:
    """Makes the openmm-ml implementation of bpnn_ts models (duck-typed
    `openmmml.mlpotential.MLPotentialImplFactory`)."""

    def createImpl(self, name: str, **args: Any) -> Any:
        """A `BPNNPotentialImpl` for `MLPotential(name, **args)`; args: modelPath, device, threads."""
        from .impl import BPNNPotentialImpl
        return BPNNPotentialImpl(name, **args)


def register(name: str = NAME) -> None:
    """Register the factory with openmm-ml under `name`, for an installation without bpnn_ts's
    entry point (e.g. a source checkout on sys.path); an installed bpnn_ts registers itself."""
    from openmmml import MLPotential
    MLPotential.registerImplFactory(name, BPNNPotentialImplFactory())
