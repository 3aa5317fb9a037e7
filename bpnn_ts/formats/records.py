"""The JSON records every model file carries (`<archive>/extra/metadata.json` and
`provenance.json`, export/CONTRACT.md), built in one place for every format; the parameter hash;
and reading the records without loading any code (`inspect`)."""

import datetime
import hashlib
import json
import warnings
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, Mapping, Optional, Union

import torch

from .. import keys
from ..elements import symbol
from ..version import __version__


class ModelFileError(ValueError):
    """A model file that is missing, damaged, or of a contract this version cannot load."""


class ParameterHashError(ModelFileError):
    """A model file whose parameters do not match the hash recorded at export (or that has none).
    `problem` says what is wrong; the message adds the Python way around the check, which the
    command line replaces by its own flag."""

    def __init__(self, problem: str):
        super().__init__(f"{problem}; load(..., verify=False) skips this check (trusted files only)")
        self.problem = problem


class FormatWarning(UserWarning):
    """A model file of an older format was upgraded in memory."""


@contextmanager
def quiet_jit() -> Iterator[None]:
    """Hide torch.jit's deprecation warnings (expected in torch >= 2.10) from users."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(TorchScript|torch\\.jit|jit\\.script|jit\\.load|jit\\.save).*")
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="torch.jit")
        warnings.filterwarnings("ignore", category=FutureWarning, module="torch.jit")
        yield


def metadata(model: Any) -> Dict[str, Any]:
    """metadata.json: the typed getters of a BPNNModel (eager or scripted)."""
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


def provenance(model_spec: str, parameters_sha256: str, description: str = "",
               extra: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """provenance.json: package and torch versions, date, description, the architecture (the JSON
    of `model_spec()`), the caller's `extra` entries, and the parameter hash (which `extra`
    cannot replace: `load` checks it)."""
    record: Dict[str, Any] = {"package": "bpnn_ts", "package_version": __version__, "torch_version": torch.__version__,
                              "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                              "description": description, "model": json.loads(model_spec)}
    record.update(extra or {})
    record["parameters_sha256"] = parameters_sha256
    return record


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


def reexport_command(path: Union[str, Path]) -> str:
    """The command that rewrites an older model file in the current format."""
    path = Path(path)
    return f"bpnn-ts export {path} -o {path.with_name(path.stem + '-v' + str(keys.FORMAT_VERSION) + path.suffix)}"
