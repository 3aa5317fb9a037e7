"""Intra-op threads: how many torch (and the fused kernels) use.

The defaults are 1 thread (the ASE calculator, `bpnn-ts train/eval/demo`, `bpnn_run`, LAMMPS):
on a machine whose cores are busy with other jobs, OpenMP threads that spin while they wait for
each other made steps 10-30x slower, and one thread never is (benchmarks/bench_threads.py).
Ask for more where the cores are yours (docs/performance.md says what to set on clusters).
"""

from contextlib import contextmanager
from typing import Iterator, Optional

import torch


def check_threads(threads: Optional[int], name: str = "threads") -> Optional[int]:
    """`threads` if it is None or a positive integer, else a ValueError naming it."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"`{name}` must be a positive integer or None (torch's own setting), got {threads!r}")
    return threads


@contextmanager
def torch_threads(threads: Optional[int]) -> Iterator[None]:
    """Run the block with `threads` intra-op threads (None: as torch is set), then restore
    torch's setting (setting it costs about a microsecond)."""
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
