"""TorchScript's graph optimiser (the profiling executor) for loaded model files.

With it on (torch's default) the first two calls of a freshly loaded file spend seconds profiling
and optimising its graph (4-5 s on a 1,080-atom box), then each call runs a few per cent faster;
with it off the first call costs what every later one does. The environment variable
BPNN_GRAPH_OPTIMIZER=off (or on) sets it for the whole process wherever bpnn_ts loads a model
file: Python (`bpnn_ts.load`, the calculator) and C++ (`bpnn::Model`, `bpnn_run`, LAMMPS).
Unset: torch's own setting. The test suite runs with it off (one test per runtime with it on).
"""

import os

import torch

ENVIRONMENT = "BPNN_GRAPH_OPTIMIZER"
VALUES = {"on": True, "1": True, "true": True, "off": False, "0": False, "false": False}


def apply_environment() -> None:
    """Set torch's graph optimiser as BPNN_GRAPH_OPTIMIZER says (nothing when it is unset)."""
    value = os.environ.get(ENVIRONMENT)
    if value is None or value == "":
        return
    if value.lower() not in VALUES:
        raise ValueError(f"the environment variable {ENVIRONMENT} must be on or off, got {value!r}")
    torch._C._set_graph_executor_optimize(VALUES[value.lower()])
