"""Labelling structures with the labeller (any ASE calculator, or a model file standing in for
DFT), each once, in worker processes. Every result is its own file, written atomically
(`<folder>/<index>.extxyz`, or `<index>.failed` with the error): a run killed half-way and
resumed labels only what has no file yet, and a failure is recorded and skipped, never fatal."""

import importlib
import traceback
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import ase.io
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from ..atomic_write import write_atomically, write_text_atomically
from .config import Labeller

_calculators: Dict[Tuple[Optional[str], Optional[str]], Any] = {}  # one labeller per worker process


def make_calculator(labeller: Labeller) -> Any:
    """The labeller's ASE calculator: `module:factory()` or a BPNNCalculator on its model file."""
    if labeller.model is not None:
        from ..calculator import BPNNCalculator
        return BPNNCalculator(labeller.model, extrapolation="ignore")
    assert labeller.calculator is not None
    module_name, factory_name = labeller.calculator.split(":")
    try:
        factory = getattr(importlib.import_module(module_name), factory_name)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"`labeller.calculator`: cannot import {labeller.calculator} ({error})") from None
    return factory()


def _calculator(labeller: Labeller) -> Any:
    key = (labeller.calculator, labeller.model)
    if key not in _calculators:
        _calculators[key] = make_calculator(labeller)
    return _calculators[key]


def label_one(labeller: Labeller, atoms: Atoms, path: str) -> bool:
    """Label `atoms` (energy, forces; stress where periodic on all axes) and write it to `path`
    atomically; on any error write `<path>.failed` with the error instead. True if labelled."""
    try:
        structure = Atoms(atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        structure.info.update({k: v for k, v in atoms.info.items() if isinstance(v, (int, float, str))})
        calculator = _calculator(labeller)
        structure.calc = calculator
        results = {"energy": float(structure.get_potential_energy()), "forces": structure.get_forces().copy()}
        if structure.pbc.all():
            results["stress"] = structure.get_stress().copy()
        structure.calc = SinglePointCalculator(structure, **results)
        write_atomically(path, lambda temporary: ase.io.write(temporary, structure, format="extxyz"))
        return True
    except Exception as error:  # a labeller failure is recorded and skipped
        text = f"{type(error).__name__}: {error}\n{traceback.format_exc()}"
        write_text_atomically(path + ".failed", text)
        return False


def label_all(labeller: Labeller, structures: Sequence[Atoms], folder: Path,
              log: Callable[[str], None] = print) -> Tuple[List[Atoms], int]:
    """Label every structure without a result file in `folder` (resume: the others are kept);
    returns the labelled structures in order and the number of failures."""
    folder.mkdir(parents=True, exist_ok=True)
    todo = [(k, atoms) for k, atoms in enumerate(structures)
            if not (folder / f"{k:05d}.extxyz").is_file() and not (folder / f"{k:05d}.extxyz.failed").is_file()]
    if todo:
        log(f"labelling {len(todo)} of {len(structures)} structures ({labeller.workers} worker(s))")
    paths = [str(folder / f"{k:05d}.extxyz") for k, _ in todo]
    if labeller.workers > 1 and len(todo) > 1:
        with ProcessPoolExecutor(labeller.workers, mp_context=get_context("spawn")) as pool:
            list(pool.map(label_one, [labeller] * len(todo), [atoms for _, atoms in todo], paths))
    else:
        for (_, atoms), path in zip(todo, paths):
            label_one(labeller, atoms, path)
    labelled: List[Atoms] = []
    failures = 0
    for k in range(len(structures)):
        done = folder / f"{k:05d}.extxyz"
        if done.is_file():
            structure = ase.io.read(done, index=0, format="extxyz")
            assert isinstance(structure, Atoms)
            labelled.append(structure)
        else:
            failures += 1
            first_line = (folder / f"{k:05d}.extxyz.failed").read_text().splitlines()[0]
            log(f"structure {k} could not be labelled (skipped): {first_line}")
    return labelled, failures
