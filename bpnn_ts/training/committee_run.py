"""Training a committee: K members from one training config, then one committee file."""

import dataclasses
import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

import torch

from ..committee_merge import build_committee
from ..export import export
from .checkpoint import load_checkpoint
from .config import TrainConfig
from .distributed import ProcessGroup
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


def _silent(line: str) -> None:
    """The log of processes other than rank 0 under torchrun."""


def _train_member_in_process(member: TrainConfig, resume: bool, overwrite: bool) -> None:
    """One member's training in a worker process: one torch thread, the log in <member>/train.log."""
    torch.set_num_threads(1)
    output = Path(member.output)
    output.mkdir(parents=True, exist_ok=True)
    with open(output / "train.log", "a") as handle:
        def log(line: str) -> None:
            handle.write(line + "\n")
            handle.flush()
        Trainer(member, resume=resume, log=log, overwrite=overwrite).run()


def check_committee_output(config: TrainConfig, size: int, resume: bool, overwrite: bool) -> None:
    """Before any member trains: refuse a folder that holds a committee run (committee.pt, or a
    member folder with checkpoints or model.pt) unless `resume` or `overwrite`."""
    check_output(Path(config.output), resume, overwrite, names=("committee.pt",))
    for k in range(size):
        check_output(Path(member_config(config, k).output), resume, overwrite)


def train_committee(config: TrainConfig, size: int, resume: bool = False, log: Callable[[str], None] = print,
                    overwrite: bool = False, initial_weights: Sequence[str] = (), workers: int = 1) -> Path:
    """Train `size` members (member_config), one after the other or `workers` at a time in
    processes of their own (one torch thread each; their logs go to <member>/train.log), then
    write <output>/committee.pt from their best checkpoints; returns its path. With `resume`, finished members are kept, an
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
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    # under torchrun: the members' own process group (gloo on CPUs, NCCL with training.device cuda)
    group = ProcessGroup(torch.device(config.training.device)) if int(os.environ.get("WORLD_SIZE", "1")) > 1 else None
    if group is not None and workers > 1:
        raise ValueError(f"workers ({workers}): under torchrun the processes train each member together; "
                         "train members in parallel processes or with torchrun, not both")
    if group is not None and not group.is_main:
        log = _silent
    best: List[Path] = []
    todo: List[Tuple[TrainConfig, bool, bool]] = []  # (member, resume from its checkpoint, overwrite its folder)
    for k in range(size):
        member = member_config(config, k, initial_weights[k] if initial_weights else None)
        output = Path(member.output)
        best.append(output / "best.ckpt")
        finished = resume and (output / "best.ckpt").is_file() and load_checkpoint(output / "best.ckpt").get("finished")
        if finished:
            log(f"member {k}: finished earlier ({output / 'best.ckpt'})")
            continue
        log(f"member {k} of {size}: model seed {member.model.seed}, output {output}")
        resumable = resume and (output / "checkpoint.ckpt").is_file()
        # under `resume`, a member with nothing to resume from replaces whatever is left in its folder
        todo.append((member, resumable, overwrite or (resume and not resumable)))
    if workers > 1 and len(todo) > 1:
        with ProcessPoolExecutor(min(workers, len(todo)), mp_context=get_context("spawn")) as pool:
            list(pool.map(_train_member_in_process, *zip(*todo)))
    else:
        for member, resumable, replace in todo:
            Trainer(member, resume=resumable, log=log, overwrite=replace).run()
    path = Path(config.output) / "committee.pt"
    if group is None or group.is_main:  # under torchrun, rank 0 writes it
        committee = build_committee([model_from_checkpoint(best_path) for best_path in best])
        export(committee, path, description=f"committee of {size} members",
               provenance={"members": [str(best_path.resolve()) for best_path in best]})
        log(f"wrote {path} ({size} networks per element)")
    if group is not None:
        group.barrier()
    return path
