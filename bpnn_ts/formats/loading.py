"""`load`: a model file of any format and version this bpnn_ts reads, told by its content."""

from pathlib import Path
from typing import Any, Union

import torch

from .. import keys
from ..errors import error_message
from ..version import __version__
from .records import ModelFileError, inspect, reexport_command
from .torchscript import load_torchscript


def load(path: Union[str, Path], device: Union[str, torch.device] = "cpu", verify: bool = True) -> Any:
    """Load a model file after checking its contract (format version) and, with `verify`, that
    its parameters still match the hash recorded at export. Format-1 files are upgraded in
    memory (with a FormatWarning; re-export them for C++ and LAMMPS). A `.pt2` file (told by its
    content, not its name) loads as a bpnn_ts.formats.pt2.Pt2Model with the same interface (its
    compiled weights are not re-hashed). Loading a model file runs code from it: load only files
    you trust."""
    info = inspect(path)
    version = info["metadata"].get("format_version")
    if version not in (1, keys.FORMAT_VERSION):
        newer = isinstance(version, int) and version > keys.FORMAT_VERSION
        advice = ("it was written by a newer bpnn_ts: upgrade bpnn_ts to use it" if newer else
                  f"convert it with an older bpnn_ts, or re-export the model: {reexport_command(path)}")
        raise ModelFileError(f"{path} has model-file format version {version}; this bpnn_ts "
                             f"({__version__}) reads versions 1 and {keys.FORMAT_VERSION} ({advice})")
    if info["metadata"].get("format") == "pt2":
        from .pt2 import is_pt2, load_pt2
        if not is_pt2(path):
            raise ModelFileError(f"{path}: its metadata says .pt2, but it is no AOTInductor package (damaged?)")
        try:
            return load_pt2(path, info, device)
        except RuntimeError as error:
            raise ModelFileError(f"{path} could not be loaded: {error_message(str(error))}") from None
    return load_torchscript(path, info, device, verify)
