"""Training a committee: K members from one training config, then one committee file."""

import dataclasses
from pathlib import Path
from typing import Callable, List, Optional, Sequence

from ..committee_merge import build_committee
from ..export import export
from .checkpoint import load_checkpoint
from .config import TrainConfig
from .output import check_output
from .trainer import Trainer, model_from_checkpoint


def member_config(config: TrainConfig, k: int, initial_weights: Optional[str] = None) -> TrainConfig:
    """Member k: initial weights from model seed + k (or from `initial_weights`, a warm start),
    output in <output>/member_k; the same data split, loss and training options as every other
    member."""
    seed = config.model.seed + k
    raw = dict(config.raw, model=dict(config.raw.get("model", {}), seed=seed))
    training = config.training
    if initial_weights is not None:
        training = dataclasses.replace(training, initial_weights=str(initial_weights))
    return dataclasses.replace(config, model=dataclasses.replace(config.model, seed=seed), training=training,
                               output=str(Path(config.output) / f"member_{k}"), raw=raw)


def check_committee_output(config: TrainConfig, size: int, resume: bool, overwrite: bool) -> None:
    """Before any member trains: refuse a folder that holds a committee run (committee.pt, or a
    member folder with checkpoints or model.pt) unless `resume` or `overwrite`."""
    check_output(Path(config.output), resume, overwrite, names=("committee.pt",))
    for k in range(size):
        check_output(Path(member_config(config, k).output), resume, overwrite)


def train_committee(config: TrainConfig, size: int, resume: bool = False, log: Callable[[str], None] = print,
                    overwrite: bool = False, initial_weights: Sequence[str] = ()) -> Path:
    """Train `size` members (member_config) one after the other, then write <output>/committee.pt
    from their best checkpoints; returns its path. With `resume`, finished members are kept, an
    interrupted one continues from its checkpoint and one with no checkpoint starts afresh.
    A folder holding an earlier committee run is refused unless `resume` or `overwrite`
    (which replaces every member's files). `initial_weights`: one checkpoint or model file per
    member to warm-start it from (training.initial_weights)."""
    if initial_weights and len(initial_weights) != size:
        raise ValueError(f"initial_weights: one file per member ({size}), got {len(initial_weights)}")
    if size < 2:
        raise ValueError(f"a committee needs at least 2 members, got {size}")
    check_committee_output(config, size, resume, overwrite)
    if overwrite:
        (Path(config.output) / "committee.pt").unlink(missing_ok=True)
    best: List[Path] = []
    for k in range(size):
        member = member_config(config, k, initial_weights[k] if initial_weights else None)
        output = Path(member.output)
        finished = resume and (output / "best.ckpt").is_file() and load_checkpoint(output / "best.ckpt").get("finished")
        if finished:
            log(f"member {k}: finished earlier ({output / 'best.ckpt'})")
        else:
            log(f"member {k} of {size}: model seed {member.model.seed}, output {output}")
            resumable = resume and (output / "checkpoint.ckpt").is_file()
            # under `resume`, a member with nothing to resume from replaces whatever is left in its folder
            Trainer(member, resume=resumable, log=log, overwrite=overwrite or (resume and not resumable)).run()
        best.append(output / "best.ckpt")
    committee = build_committee([model_from_checkpoint(path) for path in best])
    path = export(committee, Path(config.output) / "committee.pt", description=f"committee of {size} members",
                  provenance={"members": [str(path.resolve()) for path in best]})
    log(f"wrote {path} ({size} networks per element)")
    return path
