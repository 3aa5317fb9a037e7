"""Data-parallel training: `torchrun --nproc_per_node 2 bpnn-ts train` (gloo, CPU) takes the same
steps as one process with the same global batch (Adam) or the same structures per update
(Kalman filter), to 1e-10."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import ase.io
import pytest
import torch
import yaml
from ase.build import bulk

from bpnn_ts.demo_data import md_snapshots
from bpnn_ts.training.checkpoint import load_checkpoint

TORCHRUN = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
BPNN_TS = shutil.which("bpnn-ts") or str(Path(sys.executable).parent / "bpnn-ts")
pytestmark = pytest.mark.skipif(not Path(TORCHRUN).exists(), reason="torchrun (from torch) not found")


@pytest.fixture(scope="module")
def cu_structures(tmp_path_factory):
    path = tmp_path_factory.mktemp("ddp") / "cu.xyz"
    ase.io.write(path, md_snapshots(bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2), 600, 10, 5, seed=4))
    return path


def write_config(folder: Path, data: Path, optimizer: str) -> Path:
    training = {"epochs": 1, "optimizer": optimizer, "seed": 5, "progress": False, "early_stopping": 0}
    if optimizer == "adam":
        training.update(batch_size=2, learning_rate=0.01)  # 10 structures: 5 steps
    else:  # 5 energy updates of 2 structures, 2 force updates of 2 x 3 components
        training["kalman"] = {"structures_per_update": 2, "force_components": 3, "force_fraction": 0.013}
    config = {"model": {"elements": ["Cu"], "cutoff": 4.5, "hidden_layers": [6, 6], "seed": 1,
                        "symmetry_functions": {"auto": {"n_radial": 4, "angular_eta": [0.02]}}},
              "data": {"train": str(data), "split": {"validation": 0.0, "test": 0.0}},
              "loss": {"energy": 1.0, "forces": 2.0}, "training": training, "output": str(folder / "run")}
    path = folder / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def train(config: Path, processes: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    command = [BPNN_TS, "train", str(config), "--threads", "1"]
    if processes > 1:
        command = [TORCHRUN, "--standalone", f"--nproc_per_node={processes}", "--no-python"] + command
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return load_checkpoint(config.parent / "run" / "checkpoint.ckpt")


@pytest.mark.parametrize("optimizer", ["adam", "kalman"])
def test_two_processes_take_the_steps_of_one(cu_structures, tmp_path, optimizer):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one = train(write_config(tmp_path / "one", cu_structures, optimizer), 1)
    two = train(write_config(tmp_path / "two", cu_structures, optimizer), 2)
    for name, value in one["model_state"].items():
        other = two["model_state"][name]
        assert torch.allclose(value, other, rtol=1e-10, atol=1e-12), (name, float((value - other).abs().max()))
    assert one["history"][0]["train_loss"] == pytest.approx(two["history"][0]["train_loss"], rel=1e-10)
    if optimizer == "kalman":
        for p_one, p_two in zip(one["kalman"]["filter"]["covariances"], two["kalman"]["filter"]["covariances"]):
            assert torch.allclose(p_one, p_two, rtol=1e-10, atol=1e-12)
        assert one["kalman"]["filter"]["n_updates"] == 7
    # the run did move the weights: a fresh model of the same seed differs
    from bpnn_ts.training import parse_train_config
    fresh = parse_train_config(yaml.safe_load((tmp_path / "one" / "train.yaml").read_text())).model.build()
    moved = [not torch.allclose(fresh.state_dict()[k].to(v.dtype), v) for k, v in one["model_state"].items()
             if k.endswith("weight")]
    assert any(moved)
