"""The TorchScript model file, the contract (export/CONTRACT.md): one archive of a scripted
BPNNModel (neighbour search, descriptors, nets and the force path in one graph, typed getters)
with its two JSON records."""

import json
import warnings
from pathlib import Path
from typing import Any, Dict, Optional, Union

import torch

from .. import keys
from ..atomic_write import write_atomically
from ..errors import error_message, user_stacklevel
from ..graph_optimizer import apply_environment
from ..model.engine import BPNNModel
from .frozen import frozen_copy
from .records import (
    FormatWarning,
    ModelFileError,
    ParameterHashError,
    metadata,
    parameters_hash,
    provenance,
    quiet_jit,
    reexport_command,
)


def write_torchscript(model: BPNNModel, path: Union[str, Path], dtype: Optional[str], description: str,
                      extra_provenance: Optional[Dict[str, Any]], native_kernels: Optional[bool]) -> Path:
    """Script `model` (in eval mode) and write it with its records to `path`, atomically.
    `native_kernels` None: the fused kernels where they build here."""
    wanted = True if native_kernels is None else bool(native_kernels)
    frozen = frozen_copy(model, dtype, wanted)
    if frozen.uses_native_kernels() != wanted and native_kernels:
        from ..native import load_error
        raise ModelFileError(f"native_kernels=True, but the C++ kernels cannot be built here: {load_error()}")
    with quiet_jit():
        scripted = torch.jit.script(frozen)
    record = provenance(model.model_spec(), parameters_hash(scripted), description, extra_provenance)
    extra_files = {keys.METADATA_FILE: json.dumps(metadata(scripted), indent=1),
                   keys.PROVENANCE_FILE: json.dumps(record, indent=1)}

    def save(temporary: str) -> None:
        with quiet_jit():
            torch.jit.save(scripted, temporary, _extra_files=extra_files)

    return write_atomically(path, save)


def load_torchscript(path: Union[str, Path], info: Dict[str, Any], device: Union[str, torch.device],
                     verify: bool) -> Any:
    """A TorchScript model file of format 1 or 2 whose records `info` were read (`inspect`), on
    `device`, its parameter hash checked with `verify`; format 1 upgraded in memory."""
    version = info["metadata"].get("format_version")
    if info["metadata"].get("native_kernels"):
        from ..native import load_error, load_ops
        if not load_ops():
            raise ModelFileError(f"{path} uses bpnn_ts's fused C++ kernels, which cannot be built here "
                                 f"({load_error()}); re-export it with native_kernels=False, or point "
                                 "BPNN_OPS_LIBRARY at a built libbpnn.so")
    apply_environment()
    try:
        with quiet_jit():
            model = torch.jit.load(str(path), map_location=device)
    except RuntimeError as error:
        raise ModelFileError(f"{path} could not be loaded (damaged?): {error_message(str(error))}") from None
    if int(model.format_version()) != version:
        raise ModelFileError(f"{path}: metadata and model disagree on the format version")
    recorded = info["provenance"].get("parameters_sha256")
    if verify and not recorded:
        raise ParameterHashError(f"{path} has no parameter hash (parameters_sha256 in provenance.json): it was not "
                                 "written by bpnn_ts.export, or was modified; re-export it")
    if verify and parameters_hash(model) != recorded:
        raise ParameterHashError(f"{path}: its parameters do not match the hash recorded when it was exported "
                                 "(the file was modified or damaged)")
    if version == 1:
        from .format1 import upgrade
        warnings.warn(f"{path} is a format-1 model file: upgraded in memory; to use it in C++ or LAMMPS, "
                      f"re-export it: {reexport_command(path)}", FormatWarning, stacklevel=user_stacklevel())
        eager = upgrade(model, info["metadata"]).to(device)
        with quiet_jit():
            model = torch.jit.script(eager)
    return model.eval()
