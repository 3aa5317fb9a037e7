"""The README's Python example runs as written (in a scratch folder) and gives a trained model."""

import os
import re
import warnings
from pathlib import Path

import numpy as np

from bpnn_ts.errors import UntrainedModelWarning
from bpnn_ts.extrapolation import ExtrapolationWarning

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_python_example_runs_as_written(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) == 1
    monkeypatch.chdir(tmp_path)
    scope = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExtrapolationWarning)  # the example stays inside the training range
        warnings.simplefilter("error", UntrainedModelWarning)
        exec(compile(blocks[0], str(README), "exec"), scope)  # noqa: S102 (our own README)
    atoms = scope["atoms"]
    assert os.path.isfile("cu_run/model.pt")
    from ase.calculators.emt import EMT
    reference = atoms.copy()
    reference.calc = EMT()
    error = abs(atoms.get_potential_energy() - reference.get_potential_energy()) / len(atoms)
    assert error < 0.01, f"{error * 1000:.1f} meV/atom"  # trained (a seeded net is off by ~1 eV/atom)
    force_error = np.sqrt(((atoms.get_forces() - reference.get_forces()) ** 2).mean())
    assert force_error < 0.5 * np.sqrt((reference.get_forces() ** 2).mean()), force_error
