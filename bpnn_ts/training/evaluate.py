"""Metrics of an exported model file on any data set (`bpnn-ts eval`)."""

from typing import Dict, List, Optional, Sequence, Union

import torch
from ase import Atoms

from .. import keys
from ..batching import DEFAULT_BATCH_ATOMS, evaluate_many
from ..export import load
from ..io.datasets import check_structures, read_many
from ..model_parts import AnyModel
from ..precision import INPUT_DTYPES
from .batch import labelled_batch
from .metrics import accumulate, summarize


def evaluate_structures(model: AnyModel, structures: Sequence[Atoms],
                        batch_atoms: int = DEFAULT_BATCH_ATOMS) -> Dict[str, float]:
    """Energy (meV/atom), force (eV/Å) and stress errors of `model` (a module or a loaded
    model file) over labelled structures, evaluated in forward_batch calls of at most
    `batch_atoms` atoms (0, or a model without forward_batch: one call per structure)."""
    elements = [int(z) for z in model.atomic_numbers()]
    check_structures(structures, elements, need_forces=False)
    dtype = INPUT_DTYPES[str(model.dtype_name())]  # mixed-precision models take float64 positions
    store: Dict[str, List[torch.Tensor]] = {}
    for atoms, out in zip(structures, evaluate_many(model, structures, batch_atoms, compute_virial=True)):
        batch = labelled_batch(atoms, dtype, torch.device("cpu"))
        prediction = {keys.ENERGY: out[keys.ENERGY].reshape(1), keys.FORCES: out[keys.FORCES],
                      keys.VIRIAL: out[keys.VIRIAL].reshape(1, 3, 3)}
        accumulate(batch, prediction, store)
    metrics = summarize(store, elements)
    metrics["structures"] = len(structures)
    metrics["atoms"] = sum(len(a) for a in structures)
    return metrics


def evaluate_model_file(path, data: Union[str, Sequence[str]], format: Optional[str] = None,
                        length_unit: str = "angstrom", energy_unit: str = "eV",
                        batch_atoms: int = DEFAULT_BATCH_ATOMS) -> Dict[str, float]:
    """`bpnn-ts eval`: load a model file and evaluate it on data files (`batch_atoms`: as
    evaluate_structures)."""
    model = load(path)
    return evaluate_structures(model, read_many(data, format, length_unit, energy_unit), batch_atoms)
