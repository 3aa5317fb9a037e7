"""TorchScript's graph optimiser (the profiling executor) for the calls of loaded model files.

With it on (torch's default) the first two calls of a freshly loaded file spend seconds profiling
and optimising its graph (1.7 + 2.3 s on a 1,080-atom box); with it off the first call costs what
every later one does, and the steady state is 0-3 % slower (benchmarks/bench_first_calls.py;
docs/performance.md). bpnn_ts's runtimes therefore call files with it off: the ASE calculator
and OpenMM force (Python, for their own calls only: `scope`) and `bpnn::Model`, `bpnn_run` and
LAMMPS (C++). The environment variable BPNN_GRAPH_OPTIMIZER=on turns it on for them (long runs
where 1-3 % matter more than 4 s); set (on or off) it also sets the switch of the thread that
loads a file (`bpnn_ts.load`), for code that calls loaded files itself. Torch keeps the switch per
thread. The test suite runs with it off (one test per runtime with it on).
"""

import os
from typing import ContextManager, Optional

import torch

ENVIRONMENT = "BPNN_GRAPH_OPTIMIZER"
VALUES = {"on": True, "1": True, "true": True, "off": False, "0": False, "false": False}
DEFAULT = False  # bpnn_ts's runtimes: off unless BPNN_GRAPH_OPTIMIZER=on


def from_environment() -> Optional[bool]:
    """BPNN_GRAPH_OPTIMIZER as a bool (None when unset); a ValueError for any other word."""
    value = os.environ.get(ENVIRONMENT)
    if value is None or value == "":
        return None
    if value.lower() not in VALUES:
        raise ValueError(f"the environment variable {ENVIRONMENT} must be on or off, got {value!r}")
    return VALUES[value.lower()]


def enabled() -> bool:
    """Whether bpnn_ts's runtimes call files with the optimiser on (BPNN_GRAPH_OPTIMIZER, else off)."""
    setting = from_environment()
    return DEFAULT if setting is None else setting


def scope(setting: Optional[bool] = None) -> ContextManager[None]:
    """A block whose TorchScript calls run with the optimiser `setting` (None: `enabled()`), the
    thread's own switch restored after."""
    return torch.jit.optimized_execution(enabled() if setting is None else setting)


def apply_environment() -> None:
    """Set the calling thread's switch as BPNN_GRAPH_OPTIMIZER says (nothing when it is unset)."""
    setting = from_environment()
    if setting is not None:
        torch._C._set_graph_executor_optimize(setting)
