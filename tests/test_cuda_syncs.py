"""Host synchronisations of one model forward on CUDA (the fused kernels' path), counted with
torch.cuda.set_sync_debug_mode("warn"): each synchronising CUDA call made through c10 (`.item()`,
`.tolist()`, `int(t)`, `nonzero`, boolean-mask indexing, `bincount`, linalg error checks, blocking
copies either way) warns once. The bounds are the audit of docs/architecture.md ("Host
synchronisation on CUDA"); syncs inside cuSOLVER/MAGMA that bypass c10 are not seen. Skipped
without a GPU (benchmarks/gpu/device_checks.sh runs it and prints the counts)."""

import warnings
from typing import List, Tuple

import pytest
import torch

from helpers import mixed_model, triclinic_water, water_dimer

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")]

# Syncs per forward (compute_forces, validate_inputs on, model's own pair search, the two
# elements H and O both present) from the audit; the GPU run checks them.
AUDITED_SYNCS = {"periodic": 17, "molecule": 8}  # 26 and 16 before issue 25 (docs/architecture.md)
WARM_UP = 3  # first calls also read the ACSF parameter tables once (cached) and let TorchScript profile


def sync_warnings(call) -> List[Tuple[str, int]]:
    """Where (file, line) each synchronising CUDA operation of `call()` was made."""
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            call()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return [(w.filename, w.lineno) for w in caught if "synchroniz" in str(w.message)]


@pytest.mark.parametrize("scripted", [False, True], ids=["eager", "scripted"])
@pytest.mark.parametrize("system", sorted(AUDITED_SYNCS))
def test_forward_on_cuda_syncs_no_more_than_the_audit_counts(system, scripted):
    from bpnn_ts.native import load_error, load_ops
    if not (load_ops() and torch.ops.bpnn.cuda_kernels()):
        pytest.skip(f"the ops have no CUDA kernels here: {load_error() or 'CPU build'}")
    model = mixed_model()
    assert model.use_native_kernels(True)
    model = model.to("cuda")
    if scripted:
        model = torch.jit.script(model)
    atoms = triclinic_water(4, n_molecules=8) if system == "periodic" else water_dimer()
    inputs = [torch.tensor(atoms.positions, device="cuda"), torch.tensor(atoms.numbers, device="cuda"),
              torch.tensor(atoms.cell.array, device="cuda"), torch.tensor(atoms.pbc, device="cuda")]
    assert {int(z) for z in atoms.numbers} == {1, 8}  # every element: one slice per element
    for _ in range(WARM_UP):
        model(*inputs)
    places = sync_warnings(lambda: model(*inputs))
    print(f"\n{system} {'scripted' if scripted else 'eager'}: {len(places)} host syncs per forward "
          f"(audit: {AUDITED_SYNCS[system]})")
    for filename, line in places:
        print(f"  {filename}:{line}")
    assert len(places) <= AUDITED_SYNCS[system]
