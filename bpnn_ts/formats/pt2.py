"""`.pt2` model files: the model compiled ahead of time by torch.export and AOTInductor, the
second runtime beside TorchScript (which PyTorch deprecated in 2.11).

A `.pt2` file is an AOTInductor package (a zip) with two compiled programs of
bpnn_ts/model/pt2_program.py, "system" (the model's own neighbour search) and "engine" (an engine's
pair list with ghosts), plus the same metadata.json and provenance.json records as a
TorchScript file (under `<archive>/extra/`, so `bpnn_ts.inspect` reads them without loading
code). The programs call the fused C++ ops (torch.ops.bpnn), which loaders register first;
they are compiled for the CPU (for CUDA where exported on a GPU machine) and one dtype.

`Pt2Model` is the Python front end: BPNNModel's forward signature, getters and input checks
(bpnn_ts/model/inputs.py), so `bpnn_ts.load`, the calculator and `bpnn-ts eval` take either file.
"""

import json
import os
import shutil
import tempfile
import warnings
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

import torch

from .. import keys
from ..atomic_write import write_atomically
from ..elements import SYMBOLS, species_table
from ..model.engine import BPNNModel
from ..model.inputs import check_engine_list, check_overlap, check_requests, check_system, species_of
from ..model.neighbors import check_cell, check_images
from ..model.pt2_program import EngineProgram, GraphEvaluation, SystemProgram, output_names
from ..precision import input_dtype
from .frozen import frozen_copy
from .records import metadata as metadata_record
from .records import parameters_hash
from .records import provenance as provenance_record

FORMAT = "pt2"
PROGRAMS = ("system", "engine")
MIN_TORCH = (2, 6)  # torch.export with unbacked sizes, register_fake, multi-model AOTI packages


def torch_version() -> Tuple[int, int]:
    major, minor = torch.__version__.split(".")[:2]
    return int(major), int("".join(c for c in minor if c.isdigit()) or 0)


def _require_torch(what: str) -> None:
    if torch_version() < MIN_TORCH:
        raise RuntimeError(f"{what} needs torch >= {MIN_TORCH[0]}.{MIN_TORCH[1]} (torch.export and AOTInductor); "
                           f"this is torch {torch.__version__}: use the TorchScript format, or upgrade torch")


def _ops(what: str) -> None:
    """Register the bpnn ops and their fake implementations (an error saying why if impossible)."""
    from ..native import load_error, load_ops
    from ..native.fake import register_fakes
    if not load_ops():
        raise RuntimeError(f"{what} needs bpnn_ts's fused C++ kernels, which cannot be built here ({load_error()}); "
                           "point BPNN_OPS_LIBRARY at a built libbpnn.so")
    register_fakes()


def example_system(model: BPNNModel, n_atoms: int = 8) -> Tuple[torch.Tensor, ...]:
    """A small periodic system of the model's elements (positions, atomic numbers, cell, pbc) in
    its input dtype: the example inputs of torch.export (sizes stay symbolic)."""
    dtype = input_dtype(model)
    numbers = model.atomic_numbers()
    grid = torch.tensor([[i % 2, (i // 2) % 2, i // 4] for i in range(n_atoms)], dtype=dtype)
    positions = 1.7 * grid + 0.1 * torch.arange(n_atoms, dtype=dtype).unsqueeze(1)
    atomic_numbers = torch.tensor([numbers[i % len(numbers)] for i in range(n_atoms)], dtype=torch.long)
    side = max(2.0 * model.cutoff(), 8.0)
    return positions, atomic_numbers, side * torch.eye(3, dtype=dtype), torch.ones(3, dtype=torch.bool)


def _exported_programs(evaluation: GraphEvaluation, system: Tuple[torch.Tensor, ...]) -> Dict[str, Any]:
    """torch.export of both programs, with symbolic numbers of atoms (0 and 1 included) and pairs."""
    from torch.export import Dim
    from torch.export import export as torch_export

    from ..model.neighbors import native_neighbor_list
    positions, atomic_numbers, cell, pbc = system
    pairs, shifts = native_neighbor_list(positions, cell, pbc, evaluation.cutoff)
    n_atoms, n_pairs = Dim("n_atoms", min=0), Dim("n_pairs", min=0)
    atoms_dim = {0: n_atoms}
    engine_inputs = (positions, atomic_numbers, cell, pairs, shifts, torch.tensor(positions.shape[0]))
    with torch.no_grad():  # inference programs: ElementModel.evaluate then switches no autograd mode
        system_program = torch_export(SystemProgram(evaluation), system, strict=False,
                                      dynamic_shapes=(atoms_dim, atoms_dim, None, None))
        engine_program = torch_export(EngineProgram(evaluation), engine_inputs, strict=False,
                                      dynamic_shapes=(atoms_dim, atoms_dim, None, {1: n_pairs}, {0: n_pairs}, None))
    return {"system": (system_program, system), "engine": (engine_program, engine_inputs)}


def compile_options() -> Dict[str, Any]:
    """AOTInductor settings of the programs: the lower bound of 2 on dynamic sizes is not checked
    (0 and 1 atoms are valid), and the kernels' OpenMP teams take the thread count of the process
    that runs them (torch.set_num_threads, `bpnn_run --threads`), not the count of the machine
    that compiled them, which inductor otherwise writes into the code."""
    return {"aot_inductor.package": True, "aot_inductor.check_lowerbound": False, "cpp.dynamic_threads": True}


TORCH_INTERNAL_DEPRECATIONS = (r".*isinstance\(treespec, LeafSpec\)` is deprecated",)  # (torch 2.13's pytree)


@contextmanager
def without_torch_deprecations() -> Iterator[None]:
    """Silence deprecation notices torch.export and AOTInductor raise about torch's own internals
    (nothing a user of bpnn_ts can act on); every other warning passes."""
    with warnings.catch_warnings():
        for message in TORCH_INTERNAL_DEPRECATIONS:
            warnings.filterwarnings("ignore", message=message, category=FutureWarning)
        yield


def export_pt2(model: BPNNModel, path: Union[str, Path], dtype: Optional[str] = None, description: str = "",
               provenance: Optional[Dict[str, Any]] = None, log: Callable[[str], None] = lambda _: None) -> Path:
    """Compile `model` (a BPNNModel in eval mode) to a `.pt2` file at `path` (atomically); returns
    the path. `dtype`: "float64", "float32" or "mixed" (None: the model's). Takes about a minute
    or more per program (a C++ compilation)."""
    _require_torch("exporting a .pt2 file")
    if not isinstance(model, BPNNModel):
        raise TypeError(f"`model` must be a BPNNModel, got {type(model).__name__}")
    _ops("a .pt2 model file")
    frozen = frozen_copy(model, dtype, True)
    evaluation = GraphEvaluation(frozen).eval()
    metadata = dict(metadata_record(frozen), format=FORMAT, programs=list(PROGRAMS), outputs=output_names(frozen),
                    op_library="bpnn", device="cpu", model_spec=json.loads(frozen.model_spec()))
    record = provenance_record(model.model_spec(), parameters_hash(frozen), description, provenance)
    with without_torch_deprecations(), tempfile.TemporaryDirectory(prefix="bpnn_pt2_") as folder:
        programs = _exported_programs(evaluation, example_system(frozen))
        files: Dict[str, Any] = {}
        for name, (program, inputs) in programs.items():
            log(f"compiling the {name} program with AOTInductor ...")
            options = dict(compile_options(), **{"aot_inductor.output_path": os.path.join(folder, name),
                                                 "aot_inductor.metadata": flat_metadata(metadata, record)})
            files[name] = torch._inductor.aot_compile(program.module(), inputs, options=options)

        package = os.path.join(folder, "model.pt2")
        from torch._inductor.package import package_aoti
        package_aoti(package, files)
        _add_records(package, {keys.METADATA_FILE: metadata, keys.PROVENANCE_FILE: record})

        def copy_package(temporary: str) -> None:
            shutil.copyfile(package, temporary)

        return write_atomically(path, copy_package)


def flat_metadata(metadata: Dict[str, Any], provenance: Dict[str, Any]) -> Dict[str, str]:
    """The records C++ loaders read through AOTIModelPackageLoader::get_metadata(), as strings:
    numbers in decimal, lists comma-separated, booleans "1"/"0"."""
    def text(value: Any) -> str:
        if isinstance(value, bool):
            return "1" if value else "0"
        if isinstance(value, (list, tuple)):
            return ",".join(text(v) for v in value)
        return repr(value) if isinstance(value, float) else str(value)
    names = ("format", "format_version", "cutoff", "atomic_numbers", "dtype", "length_unit", "energy_unit",
             "committee_size", "training_range_known", "outputs", "programs", "op_library", "device")
    flat = {"bpnn_" + name: text(metadata[name]) for name in names}
    flat["bpnn_parameters_sha256"] = str(provenance.get("parameters_sha256", ""))
    return flat


def _add_records(path: str, records: Dict[str, Dict[str, Any]]) -> None:
    """Append JSON records as `<archive>/extra/<name>` (where TorchScript files keep theirs)."""
    with zipfile.ZipFile(path, "a") as archive:
        root = archive.namelist()[0].split("/")[0]
        for name, record in records.items():
            archive.writestr(f"{root}/extra/{name}", json.dumps(record, indent=1))


def is_pt2(path: Union[str, Path]) -> bool:
    """True if `path` is an AOTInductor package (a zip with `archive_format` "pt2"), by content."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith("/archive_format") or n == "archive_format"]
            return bool(names) and archive.read(names[0]).decode().strip() == "pt2"
    except (zipfile.BadZipFile, OSError):
        return False


class Pt2Model:
    """A loaded `.pt2` file with the interface of a loaded TorchScript model file: forward (the
    engine contract of export/CONTRACT.md, same input checks and errors), typed getters, eval()
    and to() (its device only: a package is compiled for one)."""

    def __init__(self, path: Union[str, Path], metadata: Dict[str, Any], provenance: Dict[str, Any]):
        _require_torch("loading a .pt2 file")
        _ops(f"{path} (a .pt2 model file)")
        from torch._inductor.package import load_package
        self.path = Path(path)
        self.metadata = metadata
        self.provenance = provenance
        self.names: List[str] = list(metadata["outputs"])
        self.programs = {name: load_package(str(path), model_name=name) for name in PROGRAMS}
        self.element_symbols: List[str] = list(metadata["elements"])
        self.all_symbols = ["X"] + list(SYMBOLS)
        self.species_of_z = species_table(metadata["atomic_numbers"])
        self.input_dtype = input_dtype(self)
        self.training = False

    # ---- the getters of a model file ----
    def format_version(self) -> int:
        return int(self.metadata["format_version"])

    def cutoff(self) -> float:
        return float(self.metadata["cutoff"])

    def atomic_numbers(self) -> List[int]:
        return [int(z) for z in self.metadata["atomic_numbers"]]

    def committee_size(self) -> int:
        return int(self.metadata["committee_size"])

    def dtype_name(self) -> str:
        return str(self.metadata["dtype"])

    def length_unit(self) -> str:
        return str(self.metadata["length_unit"])

    def energy_unit(self) -> str:
        return str(self.metadata["energy_unit"])

    def training_range_known(self) -> bool:
        return bool(self.metadata["training_range_known"])

    def uses_native_kernels(self) -> bool:
        return True

    def model_spec(self) -> str:
        return json.dumps(self.metadata["model_spec"])

    def eval(self) -> "Pt2Model":
        return self

    def to(self, device: Union[str, torch.device] = "cpu", dtype: Any = None) -> "Pt2Model":
        if torch.device(device).type != self.metadata.get("device", "cpu") or dtype is not None:
            raise ValueError(f"{self.path} is compiled for {self.metadata.get('device', 'cpu')} in "
                             f"{self.dtype_name()}; export a .pt2 file for {device} (on a machine with it) or "
                             "use the TorchScript file")
        return self

    def compute_descriptors(self, *args: Any, **kwargs: Any) -> Dict[str, torch.Tensor]:
        raise ValueError(f"{self.path} is a .pt2 file: it computes energies, forces and virials only; descriptors "
                         "come from the TorchScript model file (bpnn-ts export without --format pt2)")

    compute_descriptor_jacobian = compute_descriptors

    def state_dict(self) -> Dict[str, torch.Tensor]:
        raise ValueError(f"{self.path} is a .pt2 file: its weights are compiled in and cannot be taken out; "
                         "re-export, build committees from or convert the TorchScript file or the checkpoint")

    # ---- the engine forward ----
    def __call__(self, *args: Any, **kwargs: Any) -> Dict[str, torch.Tensor]:
        return self.forward(*args, **kwargs)

    def forward(self, positions: torch.Tensor, atomic_numbers: torch.Tensor, cell: Optional[torch.Tensor] = None,
                pbc: Optional[torch.Tensor] = None, pairs: Optional[torch.Tensor] = None,
                shifts: Optional[torch.Tensor] = None, n_local: Optional[int] = None, compute_forces: bool = True,
                compute_virial: bool = False, count_extrapolation: bool = False,
                compute_uncertainty: bool = False) -> Dict[str, torch.Tensor]:
        """As BPNNModel.forward (export/CONTRACT.md); every output is computed, those asked for are returned."""
        check_requests(compute_uncertainty, self.committee_size(), count_extrapolation, self.training_range_known())
        dtype = self.input_dtype
        device = positions.device
        if cell is None:
            cell = torch.zeros((3, 3), dtype=dtype, device=device)
        if pbc is None:
            pbc = torch.zeros(3, dtype=torch.bool, device=device)
        check_system(positions, atomic_numbers, cell, pbc, True)
        species_of(atomic_numbers, self.species_of_z.to(device), self.all_symbols, self.element_symbols)
        n_atoms = positions.shape[0]
        inputs = [positions.to(dtype).contiguous(), atomic_numbers.long().contiguous(), cell.to(dtype).contiguous()]
        if pairs is None:
            if n_atoms > 0:  # the program's search trusts the cell: the checks of the TorchScript file first
                check_cell(cell.to(dtype), pbc.tolist())
                check_images(cell.to(dtype), pbc.tolist(), self.cutoff(), n_atoms)
            outputs = self.programs["system"](*inputs, pbc.contiguous())
            n_local = n_atoms
        else:
            pairs, shifts, n_local = check_engine_list(pairs, shifts, n_local, n_atoms, device)
            outputs = self.programs["engine"](*inputs, pairs.contiguous(), shifts.contiguous(),
                                              torch.tensor(n_local, dtype=torch.long))
        values = dict(zip(self.names, outputs))
        check_overlap(values[keys.MIN_DISTANCE], values[keys.CLOSEST_PAIR])
        return self._asked_for(values, n_local, compute_forces, compute_virial, count_extrapolation,
                               compute_uncertainty)

    def _asked_for(self, values: Dict[str, torch.Tensor], n_local: int, forces: bool, virial: bool,
                   extrapolation: bool, uncertainty: bool) -> Dict[str, torch.Tensor]:
        """The outputs BPNNModel.forward returns for these flags, per-atom rows of local atoms only."""
        per_local = {keys.ENERGIES: 0, keys.EXTRAPOLATION: 0, keys.COMMITTEE_ENERGIES: 1, keys.ENERGIES_UNCERTAINTY: 0}
        wanted = [keys.ENERGY, keys.ENERGIES, keys.MIN_DISTANCE, keys.CLOSEST_PAIR]
        wanted += [keys.FORCES] if forces else []
        wanted += [keys.VIRIAL, keys.ATOMIC_VIRIALS] if virial else []
        wanted += [keys.EXTRAPOLATION] if extrapolation else []
        if uncertainty:
            wanted += [keys.COMMITTEE_ENERGY, keys.COMMITTEE_ENERGIES, keys.ENERGY_UNCERTAINTY,
                       keys.ENERGIES_UNCERTAINTY]
            wanted += [keys.COMMITTEE_FORCES, keys.FORCES_UNCERTAINTY] if forces else []
            wanted += [keys.COMMITTEE_VIRIAL] if virial else []
        result = {}
        for name in wanted:
            value = values[name]
            if name in per_local:
                value = value.narrow(per_local[name], 0, n_local)
            result[name] = value
        return result


def load_pt2(path: Union[str, Path], info: Dict[str, Any], device: Union[str, torch.device] = "cpu") -> Pt2Model:
    """A `.pt2` file whose records `info` (bpnn_ts.inspect) were read, as a Pt2Model on `device`."""
    return Pt2Model(path, info["metadata"], info["provenance"]).to(device)
