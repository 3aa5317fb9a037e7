"""Export / load / inspect the model file (contract: export/CONTRACT.md).

The file is one TorchScript archive of a BPNNModel: neighbour search, descriptors, element nets
and the force path in one graph, typed getters, and two JSON records (metadata.json,
provenance.json) readable without loading the model. Format-1 files (bpnn_ts 0.1) are upgraded
on load by bpnn_ts/format1.py.
"""

import copy
import datetime
import hashlib
import json
import warnings
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Union

import torch

from . import __version__, keys
from .atomic import write_atomically
from .elements import symbol
from .errors import error_message, user_stacklevel
from .model.engine import BPNNModel
from .model_parts import AnyModel
from .precision import PRECISIONS, set_precision


class ModelFileError(ValueError):
    """A model file that is missing, damaged, or of a contract this version cannot load."""


@contextmanager
def quiet_jit() -> Iterator[None]:
    """Hide torch.jit's deprecation warnings (expected in torch >= 2.10) from users."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(TorchScript|torch\\.jit|jit\\.script|jit\\.load|jit\\.save).*")
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="torch.jit")
        warnings.filterwarnings("ignore", category=FutureWarning, module="torch.jit")
        yield


def _metadata(model: AnyModel) -> Dict[str, Any]:
    """metadata.json: the typed getters of a (scripted) BPNNModel."""
    return {"format_version": int(model.format_version()), "cutoff": float(model.cutoff()),
            "atomic_numbers": [int(z) for z in model.atomic_numbers()],
            "elements": [symbol(int(z)) for z in model.atomic_numbers()],
            "dtype": str(model.dtype_name()), "length_unit": str(model.length_unit()),
            "energy_unit": str(model.energy_unit()), "native_kernels": bool(model.uses_native_kernels()),
            "committee_size": int(model.committee_size()),
            "training_range_known": bool(model.training_range_known())}


def parameters_hash(model: torch.nn.Module) -> str:
    """SHA-256 of every parameter and buffer (names and bytes, sorted by name): recorded in the
    provenance at export, checked by `load`."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


FORMATS = ("torchscript", "pt2", "metatomic")


def frozen_copy(model: BPNNModel, dtype: Optional[str], native_kernels: bool) -> BPNNModel:
    """What every export writes: a copy of `model` (a BPNNModel in eval mode) in `dtype`
    ("float64", "float32", "mixed"; None: the model's), with the fused kernels on or off and no
    parameter requiring gradients. Returns the copy; raises on a model in training mode or an
    unknown dtype. Kernels asked for but not buildable here: the copy has them off."""
    if not isinstance(model, BPNNModel):
        raise TypeError(f"`model` must be a BPNNModel, got {type(model).__name__}")
    if model.training:
        raise ValueError("export refuses a model in training mode; call model.eval() first")
    if dtype is not None and dtype not in PRECISIONS:
        raise ValueError(f"`dtype` must be one of {list(PRECISIONS)}, got {dtype!r}")
    frozen = copy.deepcopy(model)
    if dtype is not None:
        frozen = set_precision(frozen, dtype)
    frozen.use_native_kernels(native_kernels)
    for parameter in frozen.parameters():
        parameter.requires_grad_(False)
    return frozen


def export(model: torch.nn.Module, path: Union[str, Path], dtype: Optional[str] = None,
           description: str = "", provenance: Optional[Dict[str, Any]] = None,
           native_kernels: Optional[bool] = None, format: Optional[str] = None) -> Path:
    """Script `model` (a BPNNModel in eval mode) and write it to `path` atomically; returns the path.

    `format`: "torchscript" (the contract; default) or "pt2" (torch.export + AOTInductor, compiled
    for this machine's CPU: bpnn_ts/pt2.py; needs the fused kernels; a minute or more to compile)
    or "metatomic" (a metatomic model for ASE, i-PI, LAMMPS-metatomic ...: bpnn_ts/metatomic.py;
    needs `metatomic-torch`; torch path, no op library). None: "pt2" if `path` ends in .pt2, else
    "torchscript".

    `dtype`: "float64", "float32" or "mixed" (float32 descriptors and nets, float64 inputs,
    outputs and sums; bpnn_ts/precision.py); None keeps the model's.

    `native_kernels`: True/False switches the fused C++ descriptor kernels (torch.ops.bpnn,
    CPU; several times faster) on or off in the file; None (default) switches them on where
    they can be built here. Files with them need the ops wherever they are loaded:
    `bpnn_ts.load` builds them, the C++ loader and the LAMMPS plugin contain them.
    """
    if not isinstance(model, BPNNModel):
        raise TypeError(f"`model` must be a BPNNModel (ModelSpec.build(), ModelConfig.build(), bpnn_ts.load ... "
                        f"is already a model file), got {type(model).__name__}")
    if format is None:
        format = "pt2" if str(path).endswith(".pt2") else "torchscript"
    if format not in FORMATS:
        raise ValueError(f"`format` must be one of {list(FORMATS)}, got {format!r}")
    if format == "pt2":
        if native_kernels is False:
            raise ValueError("a .pt2 file always uses the fused C++ kernels: native_kernels=False needs the "
                             "TorchScript format")
        from .pt2 import export_pt2
        return export_pt2(model, path, dtype, description, provenance)
    if format == "metatomic":
        if native_kernels:
            raise ValueError("a metatomic file runs on the torch path (engines load no bpnn_ts op library): "
                             "native_kernels=True needs the TorchScript or .pt2 format")
        try:
            from .metatomic import export_metatomic
        except ImportError as error:
            raise ModelFileError(f"format='metatomic' needs the package metatomic-torch "
                                 f"(pip install metatomic-torch): {error}") from None
        return export_metatomic(model, path, dtype, description)
    wanted = True if native_kernels is None else bool(native_kernels)
    frozen = frozen_copy(model, dtype, wanted)
    if frozen.uses_native_kernels() != wanted and native_kernels:
        from .native import load_error
        raise ModelFileError(f"native_kernels=True, but the C++ kernels cannot be built here: {load_error()}")
    with quiet_jit():
        scripted = torch.jit.script(frozen)
    metadata = _metadata(scripted)
    record = {"package": "bpnn_ts", "package_version": __version__, "torch_version": torch.__version__,
              "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "description": description, "model": json.loads(model.model_spec())}
    record.update(provenance or {})
    record["parameters_sha256"] = parameters_hash(scripted)
    extra_files = {keys.METADATA_FILE: json.dumps(metadata, indent=1),
                   keys.PROVENANCE_FILE: json.dumps(record, indent=1)}

    def save(temporary: str) -> None:
        with quiet_jit():
            torch.jit.save(scripted, temporary, _extra_files=extra_files)

    return write_atomically(path, save)


def inspect(path: Union[str, Path]) -> Dict[str, Any]:
    """Metadata and provenance of a model file, read from the archive without loading code."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist")
    try:
        with zipfile.ZipFile(path) as archive:
            records = {}
            for name in archive.namelist():
                for wanted in (keys.METADATA_FILE, keys.PROVENANCE_FILE):
                    if name.endswith("/extra/" + wanted):
                        records[wanted] = json.loads(archive.read(name))
    except (zipfile.BadZipFile, OSError, json.JSONDecodeError, EOFError) as error:
        raise ModelFileError(f"{path} is not a bpnn_ts model file (damaged or truncated?): {error}") from None
    if keys.METADATA_FILE not in records:
        raise ModelFileError(f"{path} has no {keys.METADATA_FILE}: not a bpnn_ts model file (write model files with "
                             "bpnn_ts.export or bpnn-ts export)")
    return {"metadata": records[keys.METADATA_FILE], "provenance": records.get(keys.PROVENANCE_FILE, {})}


def is_model_file(path: Union[str, Path]) -> bool:
    """True if `path` is a zip archive with a bpnn_ts metadata record (any format version)."""
    try:
        inspect(path)
        return True
    except ModelFileError:
        return False


def load(path: Union[str, Path], device: Union[str, torch.device] = "cpu",
         verify: bool = True) -> Any:
    """Load a model file after checking its contract (format version) and, with `verify`, that
    its parameters still match the hash recorded at export. Format-1 files are upgraded in
    memory (with a FormatWarning; re-export them for C++ and LAMMPS). A `.pt2` file (told by its
    content, not its name) loads as a bpnn_ts.pt2.Pt2Model with the same interface (its compiled
    weights are not re-hashed). Loading a model file runs code from it: load only files you trust."""
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
    if info["metadata"].get("native_kernels"):
        from .native import load_error, load_ops
        if not load_ops():
            raise ModelFileError(f"{path} uses bpnn_ts's fused C++ kernels, which cannot be built here "
                                 f"({load_error()}); re-export it with native_kernels=False, or point "
                                 "BPNN_OPS_LIBRARY at a built libbpnn.so")
    try:
        with quiet_jit():
            model = torch.jit.load(str(path), map_location=device)
    except RuntimeError as error:
        raise ModelFileError(f"{path} could not be loaded (damaged?): {error_message(str(error))}") from None
    if int(model.format_version()) != version:
        raise ModelFileError(f"{path}: metadata and model disagree on the format version")
    recorded = info["provenance"].get("parameters_sha256")
    if verify and not recorded:
        raise ModelFileError(f"{path} has no parameter hash (parameters_sha256 in provenance.json): it was not "
                             "written by bpnn_ts.export, or was modified; re-export it, or skip the check with "
                             "load(..., verify=False)")
    if verify and parameters_hash(model) != recorded:
        raise ModelFileError(f"{path}: its parameters do not match the hash recorded when it was exported "
                             "(the file was modified or damaged); load(..., verify=False) skips this check")
    if version == 1:
        from .format1 import upgrade
        warnings.warn(f"{path} is a format-1 model file: upgraded in memory; to use it in C++ or LAMMPS, "
                      f"re-export it: {reexport_command(path)}", FormatWarning, stacklevel=user_stacklevel())
        eager = upgrade(model, info["metadata"]).to(device)
        with quiet_jit():
            model = torch.jit.script(eager)
    return model.eval()


class FormatWarning(UserWarning):
    """A model file of an older format was upgraded in memory."""


def reexport_command(path: Union[str, Path]) -> str:
    """The command that rewrites an older model file in the current format."""
    path = Path(path)
    return f"bpnn-ts export {path} -o {path.with_name(path.stem + '-v' + str(keys.FORMAT_VERSION) + path.suffix)}"
