"""bpnn_ts: Behler-Parrinello neural-network potentials exported as one TorchScript file."""

__version__ = "0.3.0"

from .calculator import BPNNCalculator  # noqa: E402
from .committee import build_committee, committee_member  # noqa: E402
from .config import ModelConfig, load_model_config, parse_model_config  # noqa: E402
from .export import export, inspect, load  # noqa: E402
from .model import BPNNModel, BPNNPotential, ModelSpec  # noqa: E402
from .model.neighbors import neighbor_list  # noqa: E402
from .scaling import descriptor_statistics, fit_scaling  # noqa: E402

__all__ = ["BPNNCalculator", "BPNNModel", "BPNNPotential", "ModelConfig", "ModelSpec", "build_committee",
           "committee_member", "descriptor_statistics", "export", "fit_scaling", "inspect", "load",
           "load_model_config", "neighbor_list", "parse_model_config", "__version__"]
