"""The function an `openmm.PythonForce` calls: OpenMM state -> bpnn_ts model -> energy, forces.

Picklable (openmm-ml's `interpolate=True` copies the force, `XmlSerializer` writes it): the
pickled state is the model file's absolute path, the atoms' atomic numbers and the settings,
never the model; unpickling loads the file again, after checking that its parameters are still
the ones the force was made with. Unpickling never raises (OpenMM 8.6.1 crashes, segmentation
fault, when it does inside XmlSerializer.deserialize): what went wrong is raised by the first
evaluation instead. Forces of the same file and device share one loaded model (the
copies openmm-ml and the serializer make, the ML parts of several Systems): loading and the first
calls of a TorchScript model, which optimize it, take seconds.
"""

from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from openmm import unit

from .. import graph_optimizer, keys
from ..errors import error_message
from ..export import inspect, load
from ..precision import input_dtype
from ..threads import check_threads, torch_threads
from ..units import ANGSTROM_PER_NM, EV_IN_KJ_PER_MOL

FORCE_FACTOR = EV_IN_KJ_PER_MOL * ANGSTROM_PER_NM  # eV/Å -> kJ/mol/nm


@lru_cache(maxsize=4)
def shared_model(model_path: str, parameters_sha256: Optional[str], device: str) -> Any:
    """The model file loaded on `device`, once per process for each (file, parameters, device)."""
    return load(model_path, device).eval()


class BPNNForceComputation:
    """`(state) -> (energy kJ/mol, forces (n_atoms, 3) kJ/mol/nm)` for the force's particles.

    model_path: a bpnn_ts model file (TorchScript or `.pt2`); atomic_numbers: (n_atoms,) of the
    force's particles, in their order; periodic: use the state's box vectors (rows a, b, c) as the
    cell with pbc on all axes, else no cell; device: torch device of the model; threads: intra-op
    threads of each evaluation (None: torch's setting; bpnn_ts/threads.py).
    """

    def __init__(self, model_path: Union[str, Path], atomic_numbers: Sequence[int], periodic: bool,
                 device: Union[str, torch.device] = "cpu", threads: Optional[int] = 1):
        self.model_path = str(Path(model_path).resolve())
        self.atomic_numbers = [int(z) for z in atomic_numbers]
        self.periodic = bool(periodic)
        self.device = str(torch.device(device))
        self.threads = check_threads(threads)
        self.parameters_sha256: Optional[str] = inspect(self.model_path)["provenance"].get("parameters_sha256")
        self.problem: Optional[str] = None  # why an unpickled copy could not load its model
        self._load()

    def _load(self) -> None:
        """Load the model and make the inputs that stay the same from step to step."""
        self.model: Any = shared_model(self.model_path, self.parameters_sha256, self.device)
        self.dtype = input_dtype(self.model)
        self._numbers = torch.tensor(self.atomic_numbers, dtype=torch.long, device=self.device)  # (n_atoms,)
        self._pbc = torch.tensor([self.periodic] * 3, dtype=torch.bool, device=self.device)  # (3,)
        self._no_cell = torch.zeros((3, 3), dtype=self.dtype, device=self.device)

    def supported_atomic_numbers(self) -> List[int]:
        """The elements the model knows (its `atomic_numbers()` getter)."""
        return [int(z) for z in self.model.atomic_numbers()]

    def _tensor(self, quantity: Any) -> torch.Tensor:
        """An OpenMM length Quantity (nm) as a tensor in Å of the model's dtype."""
        array = np.asarray(quantity.value_in_unit(unit.nanometer), dtype=np.float64) * ANGSTROM_PER_NM
        return torch.as_tensor(array, dtype=self.dtype, device=self.device)

    def __call__(self, state: Any) -> Tuple[float, np.ndarray]:
        if self.problem is not None:
            raise ValueError(self.problem)
        positions = self._tensor(state.getPositions(asNumpy=True))  # (n_atoms, 3) Å
        if positions.shape != (len(self.atomic_numbers), 3):
            raise ValueError(f"the bpnn force was made for {len(self.atomic_numbers)} particles, but the state holds "
                             f"positions of shape {tuple(positions.shape)}: add it only to the System it was made for")
        cell = self._tensor(state.getPeriodicBoxVectors(asNumpy=True)) if self.periodic else self._no_cell  # (3, 3) Å
        try:
            with torch_threads(self.threads), graph_optimizer.scope():
                out = self.model(positions, self._numbers, cell, self._pbc, compute_forces=True)
        except torch.jit.Error as error:
            raise ValueError(error_message(str(error))) from None
        energy = float(out[keys.ENERGY].detach().cpu()) * EV_IN_KJ_PER_MOL
        forces = out[keys.FORCES].detach().cpu().double().numpy() * FORCE_FACTOR  # (n_atoms, 3)
        return energy, forces

    def __getstate__(self) -> Dict[str, Any]:
        return {"model_path": self.model_path, "atomic_numbers": self.atomic_numbers, "periodic": self.periodic,
                "device": self.device, "threads": self.threads, "parameters_sha256": self.parameters_sha256}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.problem = None
        try:
            now = inspect(self.model_path)["provenance"].get("parameters_sha256")
            if now != self.parameters_sha256:
                raise ValueError(f"the model file {self.model_path} has changed since this bpnn force was made (its "
                                 "parameter hash differs): put the original file back, or build the System again")
            self._load()
        except Exception as error:  # raised here, it would crash OpenMM's deserializer: raised by __call__
            self.problem = f"the bpnn force could not load its model again: {error}"
