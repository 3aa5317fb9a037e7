"""The code's own contracts: what the C++ side mirrors from Python says the same, and the model
package compiles without host-only modules."""

import ast
import re

import pytest

from bpnn_ts import keys
from bpnn_ts.model.kernels import ANGULAR_COLUMNS, RADIAL_COLUMNS

from helpers import ROOT

PACKAGE = ROOT / "bpnn_ts"


def cpp_name(python_name: str) -> str:
    """ENERGY_UNCERTAINTY -> kEnergyUncertainty (the mirror's naming)."""
    return "k" + "".join(word.capitalize() for word in python_name.lower().split("_"))


def test_keys_hpp_mirrors_keys_py():
    python = {name: value for name, value in vars(keys).items() if name.isupper()}
    header = (ROOT / "cpp_loader" / "include" / "bpnn" / "keys.hpp").read_text()
    mirrored = dict(re.findall(r"constexpr const char\* (k\w+) = \"([^\"]*)\";", header))
    mirrored.update({name: int(value) for name, value in re.findall(r"constexpr int64_t (k\w+) = (\d+);", header)})
    assert mirrored == {cpp_name(name): value for name, value in python.items()}


def test_kernel_parameter_columns_are_named_once():
    """The fused kernels read the tables NativeKernel writes: the C++ enums name the same columns."""
    header = (PACKAGE / "native" / "common" / "acsf_plan.h").read_text()
    for enum, columns in (("RadialColumn", RADIAL_COLUMNS), ("AngularColumn", ANGULAR_COLUMNS)):
        body = re.search(r"enum " + enum + r"\b[^{]*\{([^}]*)\}", header)
        assert body, f"enum {enum} not found in acsf_plan.h"
        names = [n.strip().split("=")[0].strip() for n in re.sub(r"//[^\n]*", "", body.group(1)).split(",")]
        names = [n for n in names if n]
        assert len(names) == len(columns) + 1 and names[-1].endswith("Width"), names
        assert [n.lower() for n in names[:-1]] == [
            ("k" + enum.replace("Column", "") + c.replace("_", "")).lower() for c in columns], names


@pytest.mark.parametrize("path", sorted((PACKAGE / "model").rglob("*.py")), ids=lambda p: p.name)
def test_model_package_imports_no_host_modules(path):
    """bpnn_ts/model/ is what TorchScript compiles: no numpy, yaml, warnings or ASE there, and
    within bpnn_ts only the model package itself, keys, elements and (for the host-side
    `use_native_kernels`, which builds them) the fused-kernel loader."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            depth = node.level
            inside_model = path.parent.relative_to(PACKAGE / "model").parts
            absolute = ["bpnn_ts", "model", *inside_model][: len(inside_model) + 2 - depth + 1] if depth else []
            modules = [".".join(absolute + ([node.module] if node.module else []))]
        else:
            continue
        for module in modules:
            if path.name == "jit.py" and module == "warnings":  # silences torch.jit's deprecation at decoration
                continue
            assert module.split(".")[0] not in ("numpy", "yaml", "warnings", "ase"), f"{path.name} imports {module}"
            if module.startswith("bpnn_ts") and not module.startswith("bpnn_ts.model"):
                assert module in ("bpnn_ts", "bpnn_ts.keys", "bpnn_ts.elements", "bpnn_ts.native"), \
                    f"{path.name} imports {module}"


def test_tests_that_need_reference_data_say_where_it_comes_from():
    from helpers import needs_shared
    reason = needs_shared.kwargs["reason"]
    assert "n2p2 reference data" in reason and "../shared/reference/n2p2" in reason and "GPL" in reason
