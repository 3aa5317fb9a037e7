"""Long-run stability (slow; `pytest -m slow tests/test_long_nve.py`): NVE with the imported
n2p2 water potential, float64, in the C++ loader's velocity-Verlet loop (`bpnn_run --md`),
10^5 steps of 0.5 fs (50 ps) on the 48-atom training cell. The total energy may fluctuate
but must not drift: slope of a straight-line fit <= 1e-5 eV/atom/ps.

BPNN_LONG_NVE_STEPS changes the number of steps (e.g. for a quicker look)."""

import json
import os

import numpy as np
import pytest
from test_cpp import BPNN_RUN, run

from bpnn_ts import export
from bpnn_ts.io.n2p2 import load_n2p2
from bpnn_ts.io.n2p2_data import read_input_data

from helpers import N2P2_TRAIN, N2P2_WATER

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not N2P2_WATER.is_dir(), reason="needs ../shared (n2p2 water)"),
              pytest.mark.skipif(not BPNN_RUN.is_file(), reason="needs the C++ build (bpnn_run)")]
STEPS = int(os.environ.get("BPNN_LONG_NVE_STEPS", "100000"))


def test_nve_energy_does_not_drift(tmp_path):
    import ase.io
    model = export(load_n2p2(N2P2_WATER, "bohr", "hartree").eval(), tmp_path / "water.pt")
    cell = next(a for a in read_input_data(N2P2_TRAIN / "input.data", "bohr", "hartree") if len(a) == 48)
    ase.io.write(tmp_path / "water48.xyz", cell, format="extxyz")
    result = run(model, tmp_path / "water48.xyz", "--md", STEPS, "--dt", 0.5, "--every", 100,
                 "--extrapolation", "ignore")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    t_ps = np.array([line["time_fs"] for line in lines]) / 1000.0
    total = np.array([line["total"] for line in lines]) / len(cell)
    drift, _ = np.polyfit(t_ps, total, 1)
    kinetic = np.array([line["kinetic"] for line in lines]) / len(cell)
    report = (f"{STEPS} steps, {t_ps[-1]:.1f} ps: drift {drift:.2e} eV/atom/ps, total-energy RMS "
              f"{np.std(total):.2e} eV/atom, mean kinetic {kinetic.mean():.3e} eV/atom")
    print(report)
    (tmp_path / "report.txt").write_text(report + "\n")
    assert kinetic.mean() > 1e-3, "the system should move (it starts at rest, off its minimum)"
    assert abs(drift) <= 1e-5, report
