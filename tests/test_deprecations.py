"""No TorchScript deprecation warning reaches a user of the package, the calculator or the CLI
(torch >= 2.14 warns on torch.jit.interface, script, save and load; bpnn_ts calls them knowingly
and silences them there, never globally). Meaningful on such a torch; on older ones nothing
warns. Run in a fresh interpreter: the decorators warn at import time."""

import subprocess
import sys

SCRIPT = r"""
import warnings
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import sys, tempfile, os
    sys.path.insert(0, {tests!r})
    from helpers import ranged_model, triclinic_water
    import bpnn_ts
    from bpnn_ts.cli import main
    folder = tempfile.mkdtemp()
    path = str(bpnn_ts.export(ranged_model(), os.path.join(folder, "model.pt")))
    atoms = triclinic_water()
    atoms.calc = bpnn_ts.BPNNCalculator(path, extrapolation="ignore")
    atoms.get_forces()
    assert main(["inspect", path]) == 0
    assert main(["export", path, "-o", os.path.join(folder, "again.pt")]) == 0
jit = [str(w.message) for w in caught if "jit" in str(w.message).lower() or "torchscript" in str(w.message).lower()]
print("JIT WARNINGS:", jit)
"""


def test_no_torchscript_deprecation_warning_reaches_users(tmp_path):
    tests = str(__import__("pathlib").Path(__file__).parent)
    done = subprocess.run([sys.executable, "-c", SCRIPT.format(tests=tests)], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "JIT WARNINGS: []" in done.stdout, done.stdout[-3000:]
