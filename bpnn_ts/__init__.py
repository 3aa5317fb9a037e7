"""bpnn_ts: Behler-Parrinello neural-network potentials exported as one TorchScript file."""

from .calculator import BPNNCalculator
from .committee_merge import build_committee, committee_member
from .config import ModelConfig, load_model_config, parse_model_config
from .export import export, inspect, load
from .input_scaling import descriptor_statistics, fit_scaling
from .model import BPNNModel, BPNNPotential, ModelSpec
from .model.neighbors import neighbor_list
from .version import __version__

__all__ = ["BPNNCalculator", "BPNNModel", "BPNNPotential", "ModelConfig", "ModelSpec", "build_committee",
           "committee_member", "descriptor_statistics", "export", "fit_scaling", "inspect", "load",
           "load_model_config", "neighbor_list", "parse_model_config", "__version__"]
