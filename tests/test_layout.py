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


# ---- the house's floors: imports run down, never in circles ----
# Each module of bpnn_ts lives on a floor; a module may import from its own floor and those below.
# Subpackages take their package's floor. docs/architecture.md draws the same map.
FLOORS = {
    0: ("version", "keys", "units", "elements", "errors", "threads", "precision", "atomic_write", "extrapolation",
        "graph_optimizer", "config_checks"),
    1: ("native",),
    2: ("model",),
    3: ("formats", "io", "input_scaling", "committee_merge", "many_structures", "function_pool",
        "selection_config", "config", "potential_sources", "function_selection", "demo_data"),
    4: ("export", "calculator", "training", "openmm_ml"),
    5: ("cli", "demo", "learning", ""),  # "": the package's __init__ (public re-exports)
}
UPWARD_ALLOWED = 2  # imports from a lower floor to a higher one the house tolerates (none today)


def module_imports():
    """{module: [bpnn_ts modules it imports]}, function-level imports included (a lazy import is an
    import); `from pkg import name` counts as importing pkg.name where that is a module."""
    def name_of(path):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    modules = {name_of(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                origin = ".".join(base + ([node.module] if node.module else []))
                for alias in node.names:
                    candidate = origin + "." + alias.name
                    targets.add(candidate if candidate in modules else origin)
        graph[module] = sorted(t for t in targets if t in modules and t != module)
    return graph


def floor_of(module: str) -> int:
    top = module.split(".")[1] if "." in module else ""
    for floor, names in FLOORS.items():
        if top in names:
            return floor
    raise AssertionError(f"{module} is on no floor: add it to FLOORS in tests/test_layout.py and docs/architecture.md")


def test_every_module_is_on_a_floor_and_imports_run_down():
    graph = module_imports()
    upward = [f"{m} (floor {floor_of(m)}) -> {t} (floor {floor_of(t)})"
              for m, targets in graph.items() for t in targets if floor_of(t) > floor_of(m)]
    assert len(upward) <= UPWARD_ALLOWED, "imports from a lower floor up:\n" + "\n".join(upward)


def test_no_import_circles():
    """Tarjan's strongly connected components of the import graph: every one a single module."""
    graph = module_imports()
    index, low, on_stack, stack, circles = {}, {}, set(), [], []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    assert not circles, f"import circles: {circles}"


def test_formats_never_import_the_door():
    """bpnn_ts/export.py is the door (export, load, inspect) over formats/: nothing there calls back."""
    graph = module_imports()
    back = [m for m, targets in graph.items() if m.startswith("bpnn_ts.formats") and "bpnn_ts.export" in targets]
    assert not back, f"formats modules import bpnn_ts.export: {back}"


@pytest.mark.parametrize("folder", ["bpnn_ts", "cpp_loader"])
def test_no_source_file_over_450_lines(folder):
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / folder).rglob("*")
            if p.suffix in (".py", ".h", ".hpp", ".cpp", ".cu") and (n := len(p.read_text().splitlines())) > 450}
    assert not long, f"files over the house's 450 lines: {long}"
