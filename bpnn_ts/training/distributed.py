"""Data-parallel training over processes with torch.distributed, launched by `torchrun`
(gloo on CPUs, NCCL on GPUs): one process per rank, each owning the structures i with
i % world_size == rank (it builds batches and descriptor caches of those only).

Every rank draws the same epoch order and update plan from the same seeds; a global batch (Adam)
or update (Kalman filter) is split by ownership, each rank computes its part, and the parts are
summed (gradients, loss counts) or gathered (Kalman observations) so that every rank takes the
same step: the run equals one process with the same global batch, up to summation order.
Outside torchrun (no WORLD_SIZE), `ProcessGroup` is the single process and does nothing.
"""

import os
from typing import Any, List, Sequence, TypeVar

import torch

T = TypeVar("T")


class ProcessGroup:
    """This process's rank among `world_size` training processes."""

    def __init__(self, device: torch.device):
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = 0
        self.device = device
        if self.world_size > 1:
            import torch.distributed as dist
            if not dist.is_initialized():
                backend = "nccl" if device.type == "cuda" else "gloo"
                dist.init_process_group(backend=backend)
            self.rank = dist.get_rank()
            if device.type == "cuda" and device.index is None:
                self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that logs and writes files."""
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        return self.world_size > 1

    def owns(self, index: int) -> bool:
        """Whether structure `index` (of a split) is this rank's."""
        return index % self.world_size == self.rank

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum `tensor` over ranks, in place; returns it."""
        if self.parallel:
            import torch.distributed as dist
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def sum_gradients(self, parameters: Sequence[torch.nn.Parameter]) -> None:
        """Every parameter's .grad summed over ranks (zeros where a rank has none)."""
        if not self.parallel:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in parameters]
        flat = self.sum_(torch.cat([g.reshape(-1) for g in grads]))
        first = 0
        for parameter in parameters:
            n = parameter.numel()
            parameter.grad = flat[first:first + n].view_as(parameter).clone()
            first += n

    def gather(self, value: T) -> List[T]:
        """`value` of every rank, in rank order (any picklable object)."""
        if not self.parallel:
            return [value]
        import torch.distributed as dist
        values: List[Any] = [None] * self.world_size
        dist.all_gather_object(values, value)
        return values

    def barrier(self) -> None:
        if self.parallel:
            import torch.distributed as dist
            dist.barrier()


def shutdown() -> None:
    """Close the process group torchrun's ranks opened (at the end of a run): left open, a rank can
    abort at exit ("terminate called without an active exception") while gloo's threads still
    wait for ranks that have gone. Nothing outside torchrun."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
