"""Shared fixtures, tolerances and helpers for the test suite."""

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms

from bpnn_ts import BPNNPotential, export, load, parse_model_config
from bpnn_ts.descriptors.params import RadialSF, auto_symmetry_functions

warnings.filterwarnings("ignore", message=".*(TorchScript|torch.jit).*")

# One table of tolerances (float64 unless named otherwise).
TOL = {
    "exact": 1e-12,  # same arithmetic, different route (eager vs scripted vs loaded)
    "fd_force": 1e-6,  # eV/Å, central differences vs autograd forces
    "fd_stress": 1e-7,  # eV/Å^3, strain derivative vs virial
    "invariance": 1e-10,  # eV, rotations/translations/permutations
    "reference_rel": 1e-8,  # relative, vs n2p2's own outputs
    "nve_drift": 1e-4,  # eV/atom over a short NVE run
}

SHARED = Path(__file__).resolve().parents[2] / "shared"
N2P2_WATER = SHARED / "reference" / "n2p2" / "H2O_RPBE-D3"
N2P2_TRAIN = SHARED / "reference" / "n2p2" / "H2O_RPBE-D3-train"
needs_shared = pytest.mark.skipif(not N2P2_WATER.is_dir(), reason=f"../shared reference data not found at {N2P2_WATER}")


def two_element_config(**overrides):
    """A small H/O model description with every angular kind (fast in tests)."""
    data = {"elements": ["H", "O"], "cutoff": 4.0, "cutoff_function": "cos",
            "symmetry_functions": {"auto": {"n_radial": 4, "angular_eta": [0.02], "zetas": [1.0, 2.0]}},
            "hidden_layers": [8, 8], "activation": "tanh", "seed": 3,
            "atomic_energies": {"H": -1.5, "O": -4.0}}
    data.update(overrides)
    return parse_model_config(data)


def randomized(model, seed: int = 0, scale: float = 0.4):
    """Give a model random (non-trivial) weights; returns it in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=generator, dtype=p.dtype) * scale)
    return model.eval()


def mixed_functions(cutoff: float = 4.0):
    """H/O functions of every kind: radial (two shifts), wide and narrow angular."""
    wide = auto_symmetry_functions([1, 8], cutoff, n_radial=4, angular_eta=[0.02], zetas=[1.0, 2.0])
    narrow = auto_symmetry_functions([1, 8], cutoff, n_radial=1, angular_eta=[0.05], zetas=[4.0],
                                     lambdas=[-1.0], narrow=True)
    return wide + [f for f in narrow if not isinstance(f, RadialSF)]


def mixed_model(cutoff_type: int = 1, cutoff_alpha: float = 0.0, seed: int = 0) -> BPNNPotential:
    """Random-weight H/O model (float64, eval) using `mixed_functions`."""
    model = BPNNPotential([1, 8], mixed_functions(), [8, 8], ["tanh", "softplus", "identity"],
                          cutoff_type, cutoff_alpha, atomic_energy_shift={1: -1.5, 8: -4.0})
    return randomized(model.double(), seed)


def ranged_model(seed: int = 0) -> BPNNPotential:
    """`mixed_model` that knows its training range: scaling statistics from three water boxes
    (`training_boxes`); `squeezed_box` is outside that range, the training boxes are not."""
    from bpnn_ts.scaling import fit_scaling
    model = mixed_model(seed=seed)
    fit_scaling(model, training_boxes())
    return model


def training_boxes():
    return [water_box(8, cell=[[5.6, 0, 0], [1.2, 5.3, 0], [-0.7, 0.9, 5.1]], seed=s) for s in (4, 5, 6)]


def squeezed_box() -> Atoms:
    """A training box compressed to 80%: denser than anything seen in training."""
    atoms = training_boxes()[0]
    atoms.set_cell(atoms.cell * 0.8, scale_atoms=True)
    return atoms


@pytest.fixture(scope="session")
def water_model():
    return mixed_model()


@pytest.fixture(scope="session")
def model_variants(water_model, tmp_path_factory):
    """The same model eager, scripted, and saved-then-loaded."""
    path = tmp_path_factory.mktemp("model") / "model.pt"
    export(water_model, path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.script(water_model)
    return {"eager": water_model, "scripted": scripted, "loaded": load(path)}


def water_box(n_molecules: int = 8, box: float = 6.0, seed: int = 0, cell=None) -> Atoms:
    """Random (non-overlapping) water-like H/O configuration in a periodic cell."""
    rng = np.random.default_rng(seed)
    cell = np.eye(3) * box if cell is None else np.asarray(cell, dtype=float)
    positions, numbers = [], []
    for _ in range(20000):
        if len(numbers) == 3 * n_molecules:
            break
        centre = rng.uniform(0, 1, 3) @ cell
        candidate = [centre, centre + [0.96, 0, 0], centre + [-0.24, 0.93, 0]]
        trial = Atoms([8, 1, 1] + numbers, positions=candidate + positions, cell=cell, pbc=True)
        if len(positions) and min(trial.get_distances(k, range(3, len(trial)), mic=True).min()
                                  for k in range(3)) < 1.4:
            continue
        positions += candidate
        numbers += [8, 1, 1]
    else:
        raise RuntimeError(f"could not place {n_molecules} molecules in cell {cell.tolist()}")
    return Atoms(numbers=numbers, positions=positions, cell=cell, pbc=True)


def evaluate(model, atoms: Atoms, **kwargs):
    """Run a model (eager or scripted) on ase.Atoms in float64."""
    return model(torch.tensor(atoms.positions), torch.tensor(atoms.numbers),
                 torch.tensor(np.asarray(atoms.cell.array)), torch.tensor(atoms.pbc), **kwargs)


def export_with_format_version(path, version: int):
    """Export `mixed_model()` claiming another model-file format version (in a subprocess,
    since TorchScript keeps the first compiled `format_version`)."""
    import subprocess
    import sys
    from pathlib import Path
    script = ("import bpnn_ts.keys as k; k.FORMAT_VERSION = %d\n"
              "import sys; sys.path.insert(0, %r)\n"
              "from conftest import mixed_model\n"
              "from bpnn_ts import export\n"
              "export(mixed_model(), %r)\n") % (version, str(Path(__file__).parent), str(path))
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
    return path


def tampered_copy(path, out):
    """`path` with one parameter changed by 1e-3 but its export-time records (hash) kept."""
    import zipfile
    with zipfile.ZipFile(path) as archive:
        extras = {name.split("/extra/")[-1]: archive.read(name).decode() for name in archive.namelist()
                  if "/extra/" in name}
    tampered = load(path)
    with torch.no_grad():
        next(iter(tampered.parameters()))[0] += 1e-3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(tampered, str(out), _extra_files=extras)
    return out
