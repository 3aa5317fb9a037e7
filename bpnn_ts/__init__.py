"""bpnn_ts: Behler-Parrinello neural-network potentials exported as one TorchScript file."""

__version__ = "0.1.0"

from .calculator import BPNNCalculator  # noqa: E402
from .committee import build_committee, committee_member  # noqa: E402
from .config import ModelConfig, load_model_config, parse_model_config  # noqa: E402
from .export import export, inspect, load  # noqa: E402
from .neighbors import neighbor_list  # noqa: E402
from .potential import BPNNPotential  # noqa: E402
from .scaling import descriptor_statistics, fit_scaling  # noqa: E402

__all__ = ["BPNNCalculator", "BPNNPotential", "ModelConfig", "build_committee", "committee_member",
           "descriptor_statistics", "export",
           "fit_scaling", "inspect", "load", "load_model_config", "neighbor_list",
           "parse_model_config", "__version__"]
