"""Training a committee: K members from one training config, then one committee file."""

import dataclasses
from pathlib import Path
from typing import Callable, List

from ..committee import build_committee
from ..export import export
from .checkpoint import load_checkpoint
from .config import TrainConfig
from .trainer import Trainer, model_from_checkpoint


def member_config(config: TrainConfig, k: int) -> TrainConfig:
    """Member k: initial weights from model seed + k, output in <output>/member_k; the same data
    split, loss and training options as every other member."""
    seed = config.model.seed + k
    raw = dict(config.raw, model=dict(config.raw.get("model", {}), seed=seed))
    return dataclasses.replace(config, model=dataclasses.replace(config.model, seed=seed),
                               output=str(Path(config.output) / f"member_{k}"), raw=raw)


def train_committee(config: TrainConfig, size: int, resume: bool = False, log: Callable[[str], None] = print) -> Path:
    """Train `size` members (member_config) one after the other, then write <output>/committee.pt
    from their best checkpoints; returns its path. With `resume`, finished members are kept and
    an interrupted one continues from its checkpoint."""
    if size < 2:
        raise ValueError(f"a committee needs at least 2 members, got {size}")
    best: List[Path] = []
    for k in range(size):
        member = member_config(config, k)
        output = Path(member.output)
        finished = resume and (output / "best.ckpt").is_file() and load_checkpoint(output / "best.ckpt").get("finished")
        if finished:
            log(f"member {k}: finished earlier ({output / 'best.ckpt'})")
        else:
            log(f"member {k} of {size}: model seed {member.model.seed}, output {output}")
            Trainer(member, resume=resume and (output / "checkpoint.ckpt").is_file(), log=log).run()
        best.append(output / "best.ckpt")
    committee = build_committee([model_from_checkpoint(path) for path in best])
    path = export(committee, Path(config.output) / "committee.pt", description=f"committee of {size} members",
                  provenance={"members": [str(path.resolve()) for path in best]})
    log(f"wrote {path} ({size} networks per element)")
    return path
