"""Model config validation."""

import pytest

from bpnn_ts import parse_model_config
from bpnn_ts.config import load_model_config
from bpnn_ts.errors import ConfigError


@pytest.mark.parametrize("change,message", [
    ({"cutoff": -1}, "`cutoff` must be a positive number"),
    ({"activation": "swish2"}, "`activation`: activation must be one of"),
    ({"hidden_layers": [10, 0]}, "`hidden_layers` must be a list of positive integers"),
    ({"scaling": "minmax"}, "`scaling` must be one of"),
    ({"dtype": "float16"}, "`dtype` must be one of"),
    ({"cutoff_function": {"type": "poly2", "alpha": 1.5}}, "alpha` must be in \\[0, 1\\)"),
    ({"cutoff_function": "bessel"}, "cutoff function type must be one of"),
    ({"atomic_energies": {"Cu": 1.0}}, "`atomic_energies` names elements not in `elements`"),
    ({"symmetry_functions": [{"type": "radial", "center": "H", "neighbor": "C", "eta": 0.1}]}, "not in `elements`"),
    ({"symmetry_functions": [{"type": "radial", "center": "H", "neighbor": "O", "eta": 0.1}]}, "have no symmetry functions"),
    ({"symmetry_functions": {"auto": {"n_radal": 3}}}, "unknown keys \\['n_radal'\\]"),
    ({"learning_rate": 0.1}, "unknown config keys \\['learning_rate'\\]"),
])
def test_errors_name_the_key(change, message):
    data = {"elements": ["H", "O"], "cutoff": 5.0}
    data.update(change)
    with pytest.raises(ConfigError, match=message):
        parse_model_config(data)


def test_explicit_list_and_defaults(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("""
model:
  elements: [O, H]
  cutoff: 5.0
  cutoff_function: {type: poly2, alpha: 0.1}
  symmetry_functions:
    - {type: radial, center: H, neighbor: O, eta: 0.5, r_s: 1.0}
    - {type: narrow, center: H, neighbors: [O, H], eta: 0.01, zeta: 4, lambda: -1}
    - {type: radial, center: O, neighbor: H, eta: 0.5}
    - {type: wide, center: O, neighbors: [H, H], eta: 0.01, zeta: 1, lambda: 1, r_c: 4.0}
  hidden_layers: [5]
""")
    config = load_model_config(path)
    assert config.elements == (1, 8) and config.cutoff_type == 6 and config.cutoff_alpha == 0.1
    model = config.build()
    assert model.potential.n_functions == [2, 2] and model.cutoff() == 5.0


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_model_config(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("elements: [H\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_model_config(bad)
