"""Training quality on real public data: the mlearn sets of ../shared/reference/mlearn (Ge, Li;
Zuo et al., J. Phys. Chem. A 124, 731 (2020); BSD-3) against the published n2p2 fits to the same
training sets, with the same symmetry functions (`{from: nnp/input.nn}`) and 24-24 tanh nets.

    python benchmarks/bench_training_mlearn.py [--elements Ge Li] [--seeds 0 1 2] [--epochs 30]
        [--threads 1] [--set training.kalman.force_components=1 ...] [--stress 0.1] [--curves]

Prints one row per run: setup time (data, scaling, descriptor cache), seconds per epoch, and
RMSE of energies per atom (meV) and force components (meV/Å) of the kept model on the training
and test structures; then the median over seeds beside the published fit. Every epoch also
evaluates the test set (the run and the model kept are unchanged): `worst F/final` is the largest
test force RMSE of an epoch after epoch 5 over the kept model's (the bar: <= 2). `--curves` prints the per-epoch
test figures. `--set` changes the training config (dotted keys, YAML values); `--stress W` adds
the structures' stresses to the loss with weight W (and reports the stress RMSE, meV/Å^3).

mlearn's `virial_stress` is VASP's stress in kBar, order xx yy zz xy yz zx, positive under
compression; ASE's (ours) is in eV/Å^3, order xx yy zz yz xz xy, positive under tension:
stress_ase = -0.1 GPa x virial_stress, reordered (`mlearn_structures`).
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import yaml
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.units import GPa

ROOT = Path(__file__).resolve().parents[1]
MLEARN = ROOT.parent / "shared" / "reference" / "mlearn"
PUBLISHED = {"Ge": (7.63, 125.3), "Li": (0.98, 23.4)}  # test RMSE: meV/atom, meV/Å (mlearn README)
VOIGT_FROM_VASP = [0, 1, 2, 4, 5, 3]  # VASP xx yy zz xy yz zx -> ASE xx yy zz yz xz xy


def mlearn_structures(path: Path) -> List[Atoms]:
    """An mlearn JSON file as labelled ase.Atoms (eV, Å; stress in ASE's convention)."""
    structures = []
    for record in json.loads(path.read_text()):
        structure = record["structure"]
        atoms = Atoms([site["species"][0]["element"] for site in structure["sites"]],
                      positions=[site["xyz"] for site in structure["sites"]],
                      cell=structure["lattice"]["matrix"], pbc=True)
        outputs = record["outputs"]
        stress = -0.1 * GPa * np.asarray(outputs["virial_stress"], dtype=float)[VOIGT_FROM_VASP]
        atoms.calc = SinglePointCalculator(atoms, energy=float(outputs["energy"]),
                                           forces=np.asarray(outputs["forces"], dtype=float), stress=stress)
        atoms.info["group"] = record.get("group", "")
        structures.append(atoms)
    return structures


def write_data(element: str, folder: Path) -> Dict[str, Path]:
    import ase.io
    paths = {}
    for split in ("training", "test"):
        paths[split] = folder / f"{element}-{split}.xyz"
        ase.io.write(paths[split], mlearn_structures(MLEARN / element / f"{split}.json"), format="extxyz")
    return paths


def set_dotted(config: Dict[str, Any], key: str, value: Any) -> None:
    node = config
    *parents, last = key.split(".")
    for name in parents:
        node = node.setdefault(name, {})
    node[last] = value


def run_config(element: str, data: Dict[str, Path], seed: int, epochs: int, output: Path, changes: List[str],
               stress: float) -> Dict[str, Any]:
    config: Dict[str, Any] = {
        "model": {"symmetry_functions": {"from": str(MLEARN / element / "nnp" / "input.nn"), "length_unit": "bohr"},
                  "hidden_layers": [24, 24], "activation": "tanh", "seed": seed},
        "data": {"train": str(data["training"]), "test": str(data["test"]), "split": {"validation": 0.0, "test": 0.0}},
        "training": {"epochs": epochs, "seed": seed, "progress": False, "plots": False, "model_file": False,
                     "checkpoint_every": 10_000},
        "output": str(output)}
    if stress > 0:
        config["loss"] = {"stress": stress}
    for change in changes:
        key, _, value = change.partition("=")
        set_dotted(config, key, yaml.safe_load(value))
    return config


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--elements", nargs="+", default=["Ge", "Li"], choices=sorted(PUBLISHED))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--set", dest="changes", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--stress", type=float, default=0.0, help="loss.stress weight (0: off)")
    parser.add_argument("--curves", action="store_true", help="print the per-epoch test figures")
    parser.add_argument("--keep", default=None, help="folder: keep each run's outputs there (model.pt, metrics.csv)")
    parser.add_argument("--negligible", type=float, default=None,
                        help="fit_scaling's floor (default: the library's; 0: every function scaled, as n2p2)")
    args = parser.parse_args(argv)
    if not MLEARN.is_dir():
        raise SystemExit(f"needs the mlearn reference data at {MLEARN}")
    import torch

    from bpnn_ts import input_scaling
    from bpnn_ts.training import Trainer, parse_train_config
    torch.set_num_threads(args.threads)
    if args.negligible is not None:
        input_scaling.NEGLIGIBLE = args.negligible
    work = Path(tempfile.mkdtemp(prefix="bpnn_mlearn_"))
    print(f"changes: {args.changes or 'none (defaults)'}; stress weight {args.stress}; {args.epochs} epochs; "
          f"{args.threads} thread(s); negligible {input_scaling.NEGLIGIBLE:g}")
    print("| set | seed | setup s | s/epoch | setup % | train E | train F | test E | test F | worst F/final | test S |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for element in args.elements:
        data = write_data(element, work)
        rows = []
        for seed in args.seeds:
            output = Path(args.keep or work) / f"{element}-{seed}"
            changes = args.changes + (["training.model_file=true"] if args.keep else [])
            config = parse_train_config(run_config(element, data, seed, args.epochs, output, changes, args.stress))
            started = time.perf_counter()
            trainer = Trainer(config, log=lambda _line: None)
            setup = time.perf_counter() - started
            curve: List[Dict[str, float]] = []
            trainer.on_epoch_end = lambda _epoch, _row, trainer=trainer, curve=curve: curve.append(
                trainer.evaluate("test"))
            started = time.perf_counter()
            results = trainer.run()
            per_epoch = (time.perf_counter() - started) / args.epochs  # (includes the test-set evaluations)
            share = 100 * setup / (setup + per_epoch * args.epochs)
            forces = [c["force_rmse"] * 1000 for c in curve]
            worst = max(forces[5:], default=float("nan")) / (results["test_force_rmse"] * 1000)  # vs the kept model
            row = [results["train_energy_rmse_mev_atom"], results["train_force_rmse"] * 1000,
                   results["test_energy_rmse_mev_atom"], results["test_force_rmse"] * 1000, worst,
                   results.get("test_stress_rmse_mev_a3", float("nan"))]
            rows.append(row)
            print(f"| {element} | {seed} | {setup:.1f} | {per_epoch:.2f} | {share:.0f} | {row[0]:.2f} | {row[1]:.1f} "
                  f"| {row[2]:.2f} "
                  f"| {row[3]:.1f} | {row[4]:.2f} | {row[5]:.3f} |", flush=True)
            if args.curves:
                print("  test E per epoch: " + " ".join(f"{c['energy_rmse_mev_atom']:.1f}" for c in curve))
                print("  test F per epoch: " + " ".join(f"{f:.0f}" for f in forces))
        median = [statistics.median(column) for column in zip(*rows)]
        energy, force = PUBLISHED[element]
        print(f"| {element} | median | | | | {median[0]:.2f} | {median[1]:.1f} | **{median[2]:.2f}** | **{median[3]:.1f}** "
              f"| {median[4]:.2f} | {median[5]:.3f} |")
        print(f"| {element} | published n2p2 fit | | | | | | {energy} | {force} | | |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
