"""Active learning (`bpnn-ts learn`): explore with MD, select what the committee does not know,
label it with any ASE calculator, retrain; docs/active-learning.md."""

from .config import LearnConfig, load_learn_config, parse_learn_config
from .loop import ActiveLearning

__all__ = ["ActiveLearning", "LearnConfig", "load_learn_config", "parse_learn_config"]
