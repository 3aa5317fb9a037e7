"""The door to model files: `export`, `load`, `inspect` (contract: export/CONTRACT.md). The
formats themselves live in bpnn_ts/formats/, which never imports this module back.
"""

import warnings
from pathlib import Path
from typing import Any, Dict, Optional, Union

from .errors import UntrainedModelWarning
from .formats.loading import load
from .formats.records import FormatWarning, ModelFileError, inspect, is_model_file, quiet_jit, reexport_command
from .formats.torchscript import write_torchscript
from .model.engine import BPNNModel

FORMATS = ("torchscript", "pt2", "metatomic")

__all__ = ["FORMATS", "FormatWarning", "ModelFileError", "UntrainedModelWarning", "export", "inspect",
           "is_model_file", "load", "quiet_jit", "reexport_command"]


def export(model: BPNNModel, path: Union[str, Path], dtype: Optional[str] = None,
           description: str = "", provenance: Optional[Dict[str, Any]] = None,
           native_kernels: Optional[bool] = None, format: Optional[str] = None) -> Path:
    """Write `model` (a BPNNModel in eval mode) to `path` atomically; returns the path.

    `format`: "torchscript" (the contract; default) or "pt2" (torch.export + AOTInductor, compiled
    for this machine's CPU: bpnn_ts/formats/pt2.py; needs the fused kernels; a minute or more to
    compile) or "metatomic" (a metatomic model for ASE, i-PI, LAMMPS-metatomic ...:
    bpnn_ts/formats/metatomic.py; needs `metatomic-torch`; with the fused kernels, the file names
    the op library engines load with it). None: "pt2" if `path` ends in .pt2, else "torchscript".

    `dtype`: "float64", "float32" or "mixed" (float32 descriptors and nets, float64 inputs,
    outputs and sums; bpnn_ts/precision.py); None keeps the model's.

    `native_kernels`: True/False switches the fused C++ descriptor kernels (torch.ops.bpnn,
    CPU; several times faster) on or off in the file; None (default) switches them on where
    they can be built here. Files with them need the ops wherever they are loaded:
    `bpnn_ts.load` builds them, the C++ loader and the LAMMPS plugin contain them.
    """
    if not isinstance(model, BPNNModel):
        raise TypeError(f"`model` must be a BPNNModel (BPNNModel.from_spec(), ModelConfig.build(), bpnn_ts.load ... "
                        f"is already a model file), got {type(model).__name__}")
    if getattr(model, "weights_origin", None) == "initial":
        warnings.warn(f"exporting {path}: the model still has its initial random weights (never trained, loaded or "
                      "given weights), so its energies and forces mean nothing; train it first (`bpnn-ts train`, "
                      "`bpnn_ts.training.Trainer`) or load weights (load_state_dict, `bpnn-ts import-n2p2`)",
                      UntrainedModelWarning, stacklevel=2)
    if format is None:
        format = "pt2" if str(path).endswith(".pt2") else "torchscript"
    if format not in FORMATS:
        raise ValueError(f"`format` must be one of {list(FORMATS)}, got {format!r}")
    if format == "pt2":
        if native_kernels is False:
            raise ValueError("a .pt2 file always uses the fused C++ kernels: native_kernels=False needs the "
                             "TorchScript format")
        from .formats.pt2 import export_pt2
        return export_pt2(model, path, dtype, description, provenance)
    if format == "metatomic":
        try:
            from .formats.metatomic import export_metatomic
        except ImportError as error:
            raise ModelFileError(f"format='metatomic' needs the package metatomic-torch "
                                 f"(pip install metatomic-torch): {error}") from None
        return export_metatomic(model, path, dtype, description, native_kernels=native_kernels)
    return write_torchscript(model, path, dtype, description, provenance, native_kernels)
