"""Export a small random-weight H/O model and a periodic water structure into a folder (CTest)."""

import sys
from pathlib import Path

import ase.io
import numpy as np
import torch
from ase import Atoms

from bpnn_ts import export, parse_model_config

folder = Path(sys.argv[1])
model = parse_model_config({"elements": ["H", "O"], "cutoff": 4.0, "hidden_layers": [8, 8], "seed": 1,
                            "symmetry_functions": {"auto": {"n_radial": 4, "angular_eta": [0.02]}}}).build()
with torch.no_grad():
    for p in model.parameters():
        p.normal_(0, 0.3, generator=torch.Generator().manual_seed(0))
export(model.eval(), folder / "model.pt")
rng = np.random.default_rng(0)
atoms = Atoms("OH2" * 4, positions=rng.uniform(0, 5, (12, 3)), cell=[[5.5, 0, 0], [0.8, 5.2, 0], [0.3, -0.4, 5.0]], pbc=True)
ase.io.write(folder / "water.xyz", atoms, format="extxyz")
