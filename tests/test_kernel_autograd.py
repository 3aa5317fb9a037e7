"""Autograd of the fused C++ kernels (bpnn_ts/native/acsf_autograd.h): torch.ops.bpnn.acsf,
acsf_backward and their directional derivatives acsf_jvp / acsf_backward_jvp against finite
differences (gradcheck, gradgradcheck) and against autograd through the pure-torch descriptors;
and training through the kernels: parameter gradients of a force/energy/virial loss equal those
of the torch path."""

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bpnn_ts import BPNNModel, keys
from bpnn_ts.model.descriptors.element_descriptor import ElementDescriptor
from bpnn_ts.model.descriptors.params import auto_symmetry_functions
from bpnn_ts.model.kernels import NativeKernel
from bpnn_ts.native import load_error, load_ops

from helpers import LIBRARY, TOL, evaluate, h2o_spec, mixed_functions, randomized, triclinic_water, water_box

pytestmark = pytest.mark.skipif(not load_ops(), reason=f"C++ kernels cannot be built here: {load_error()}")

CUTOFFS = [(0, 0.0), (1, 0.0), (2, 0.0), (4, 0.2), (6, 0.1), (8, 0.4)]
SPECIES = (1, 8)  # H, O: species indices 0, 1


class System:
    """A few O centres with random H and O neighbours (full dense blocks, no padding), as the
    kernels take them (pairs grouped by centre) and as the torch descriptor takes them."""

    def __init__(self, seed: int, cutoff_type: int = 1, alpha: float = 0.0, n_centres: int = 3,
                 widths=(3, 3), functions=None):
        generator = torch.Generator().manual_seed(seed)
        self.widths = widths
        blocks = []
        for width in widths:
            direction = torch.randn((n_centres, width, 3), generator=generator, dtype=torch.float64)
            distance = 0.9 + 2.8 * torch.rand((n_centres, width, 1), generator=generator, dtype=torch.float64)
            blocks.append(direction / direction.norm(dim=-1, keepdim=True) * distance)  # (B, M_e, 3), r < r_c = 4
        self.vectors = torch.cat(blocks, dim=1).reshape(-1, 3)  # (P, 3) grouped by centre
        self.species = torch.tensor([e for e, width in enumerate(widths) for _ in range(width)] * n_centres)
        self.offsets = torch.arange(n_centres + 1) * sum(widths)
        functions = [f for f in (functions or mixed_functions()) if f.center == 8]
        self.kernel = NativeKernel(functions, SPECIES, cutoff_type, alpha)
        self.descriptor = ElementDescriptor(functions, SPECIES, cutoff_type, alpha)
        self.n_centres = n_centres
        self.generator = generator

    def random(self, *shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=self.generator, dtype=torch.float64)

    def args(self):
        k = self.kernel
        return (self.offsets, self.species, k.radial, k.angular, k.n_functions, k.n_species, k.cutoff_type,
                k.cutoff_alpha)

    def acsf(self, vectors):
        return torch.ops.bpnn.acsf(vectors, *self.args())

    def backward(self, vectors, d_g):
        return torch.ops.bpnn.acsf_backward(vectors, *self.args(), d_g)

    def jvp(self, vectors, u):
        return torch.ops.bpnn.acsf_jvp(vectors, *self.args(), u)

    def backward_jvp(self, vectors, d_g, u):
        return torch.ops.bpnn.acsf_backward_jvp(vectors, *self.args(), d_g, u)

    def torch_g(self, vectors):
        """G (B, F) from the pure-torch descriptor, differentiable by autograd."""
        blocks = list(torch.split(vectors.reshape(self.n_centres, -1, 3), list(self.widths), dim=1))
        return self.descriptor(blocks, [torch.linalg.norm(b, dim=-1) for b in blocks])


def leaf(x: torch.Tensor) -> torch.Tensor:
    return x.detach().clone().requires_grad_(True)


@pytest.mark.parametrize("cutoff_type,alpha", CUTOFFS)
def test_acsf_gradcheck_and_gradgradcheck(cutoff_type, alpha):
    system = System(1, cutoff_type, alpha)
    assert torch.allclose(system.acsf(system.vectors), system.torch_g(system.vectors), rtol=TOL["exact"],
                          atol=TOL["ulp"])
    vectors = leaf(system.vectors)
    assert torch.autograd.gradcheck(system.acsf, (vectors,))
    assert torch.autograd.gradgradcheck(system.acsf, (vectors,))


@pytest.mark.parametrize("cutoff_type,alpha", CUTOFFS)
def test_acsf_backward_gradcheck_and_gradgradcheck(cutoff_type, alpha):
    system = System(2, cutoff_type, alpha)
    vectors, d_g = leaf(system.vectors), leaf(system.random(system.n_centres, system.kernel.n_functions))
    assert torch.autograd.gradcheck(system.backward, (vectors, d_g))
    assert torch.autograd.gradgradcheck(system.backward, (vectors, d_g))


@pytest.mark.parametrize("cutoff_type,alpha", [(1, 0.0), (6, 0.1)])
def test_directional_ops_gradcheck(cutoff_type, alpha):
    """acsf_jvp and acsf_backward_jvp with one and with two directions (u (2, P, 3))."""
    system = System(3, cutoff_type, alpha, n_centres=2)
    n_pairs = system.vectors.shape[0]
    vectors, d_g = leaf(system.vectors), leaf(system.random(system.n_centres, system.kernel.n_functions))
    for u in (leaf(system.random(n_pairs, 3)), leaf(system.random(2, n_pairs, 3))):
        assert torch.autograd.gradcheck(system.jvp, (vectors, u))
    assert torch.autograd.gradcheck(system.backward_jvp, (vectors, d_g, leaf(system.random(n_pairs, 3))))
    assert torch.autograd.gradgradcheck(system.jvp, (vectors, leaf(system.random(n_pairs, 3))))


def other_zetas():
    """Angular functions with a non-integer zeta (pow) and an integer one without its own loop."""
    wide = auto_symmetry_functions([1, 8], 4.0, n_radial=1, angular_eta=[0.03], zetas=[1.5, 3.0])
    narrow = auto_symmetry_functions([1, 8], 4.0, n_radial=1, angular_eta=[0.05], zetas=[2.5], narrow=True)
    return wide + narrow


@pytest.mark.parametrize("cutoff_type,alpha,functions", [(*c, None) for c in CUTOFFS] + [(1, 0.0, other_zetas())])
def test_jvp_equals_torch_autograd_and_finite_differences(cutoff_type, alpha, functions):
    system = System(4, cutoff_type, alpha, n_centres=4, widths=(4, 3), functions=functions)
    vectors = system.vectors
    u = system.random(*vectors.shape)
    jacobian = torch.autograd.functional.jacobian(system.torch_g, vectors)  # (B, F, P, 3)
    expected = torch.einsum("bfpc,pc->bf", jacobian, u)
    jvp = system.jvp(vectors, u)
    scale = float(expected.abs().max())
    assert float((jvp - expected).abs().max()) <= TOL["exact"] * scale
    h = 1e-5
    central = (system.acsf(vectors + h * u) - system.acsf(vectors - h * u)) / (2 * h)
    assert float((jvp - central).abs().max()) <= TOL["fd_force"] * scale
    # (2, P, 3): the second derivative d^2G[u, w], against the central difference of dG[u] along w
    w = system.random(*vectors.shape)
    second = system.jvp(vectors, torch.stack([u, w]))
    central = (system.jvp(vectors + h * w, u) - system.jvp(vectors - h * w, u)) / (2 * h)
    assert float((second - central).abs().max()) <= TOL["fd_force"] * float(second.abs().max())


@pytest.mark.parametrize("cutoff_type,alpha,functions", [(1, 0.0, None), (3, 0.0, None), (7, 0.0, None),
                                                         (2, 0.0, other_zetas())])
def test_hessian_vector_product_equals_torch_autograd(cutoff_type, alpha, functions):
    """acsf_backward_jvp(d_g, u) = d/dr (d_g . G) differentiated along u, by double backward
    through the torch descriptor."""
    system = System(5, cutoff_type, alpha, n_centres=4, widths=(4, 3), functions=functions)
    d_g = system.random(system.n_centres, system.kernel.n_functions)
    u = system.random(*system.vectors.shape)
    vectors = leaf(system.vectors)
    (grad,) = torch.autograd.grad((system.torch_g(vectors) * d_g).sum(), vectors, create_graph=True)
    (expected,) = torch.autograd.grad((grad * u).sum(), vectors)
    scale = float(grad.detach().abs().max())
    assert float((system.backward(system.vectors, d_g) - grad.detach()).abs().max()) <= TOL["exact"] * scale
    hvp = system.backward_jvp(system.vectors, d_g, u)
    assert float((hvp - expected).abs().max()) <= TOL["exact"] * float(expected.abs().max())


def test_directional_ops_check_inputs_and_follow_the_dtype():
    system = System(6)
    n_pairs = system.vectors.shape[0]
    with pytest.raises(RuntimeError, match=r"bpnn: u must be \(P, 3\) or \(K, P, 3\) with K = 1 or 2"):
        system.jvp(system.vectors, torch.zeros(3, n_pairs, 3, dtype=torch.float64))
    with pytest.raises(RuntimeError, match=r"bpnn: d_g must be \(B, n_functions\)"):
        system.backward(system.vectors, torch.zeros(1, 2, dtype=torch.float64))
    u = system.random(n_pairs, 3)
    single = system.jvp(system.vectors.float(), u.float())
    assert single.dtype == torch.float32
    assert torch.allclose(single.double(), system.jvp(system.vectors, u), rtol=TOL["float32_rel"], atol=TOL["float32"])


def test_fourth_derivatives_say_they_are_not_implemented():
    system = System(7)
    vectors = leaf(system.vectors)
    u = system.random(2, vectors.shape[0], 3)
    d_g = system.random(system.n_centres, system.kernel.n_functions)
    third = system.backward_jvp(vectors, d_g, u)
    with pytest.raises(RuntimeError, match="bpnn: the fused ACSF kernels have derivatives up to the third order"):
        third.sum().backward()


def test_jvp_does_not_depend_on_the_thread_count():
    system = System(8, n_centres=40)
    u = system.random(*system.vectors.shape)
    d_g = system.random(system.n_centres, system.kernel.n_functions)
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 3):
            torch.set_num_threads(n)
            results.append((system.jvp(system.vectors, u), system.backward_jvp(system.vectors, d_g, u)))
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(a, b) for a, b in zip(*results))


# ---- training through the kernels ----

def loss_gradients(model, atoms, native: bool, compute_uncertainty: bool = False):
    """Parameter gradients of sum (F - F_ref)^2 + (E - E_ref)^2 + sum (W - W_ref)^2 in train mode."""
    model = copy.deepcopy(model)
    model.use_native_kernels(native)
    model.train()
    out = evaluate(model, atoms, compute_virial=True, compute_uncertainty=compute_uncertainty)
    forces_ref = 0.1 * torch.ones_like(out[keys.FORCES])
    loss = ((out[keys.FORCES] - forces_ref) ** 2).sum() + (out[keys.ENERGY] + 100.0) ** 2 \
        + ((out[keys.VIRIAL] - 0.5) ** 2).sum()
    if compute_uncertainty:
        loss = loss + out[keys.ENERGY_UNCERTAINTY] ** 2
    parameters = [p for p in model.parameters() if p.requires_grad]
    return out, torch.autograd.grad(loss, parameters)


def committee_model():
    return randomized(BPNNModel.from_spec(h2o_spec(committee_size=2)), seed=2)


@pytest.mark.parametrize("case", ["water_box", "triclinic", "committee", "committee_uncertainty"])
def test_training_gradients_through_the_kernels_equal_the_torch_path(case):
    model = committee_model() if case.startswith("committee") else randomized(BPNNModel.from_spec(h2o_spec()), seed=1)
    atoms = triclinic_water(3, n_molecules=6) if case == "triclinic" else water_box(8, seed=5)
    uncertainty = case == "committee_uncertainty"
    out_native, native = loss_gradients(model, atoms, True, uncertainty)
    out_torch, reference = loss_gradients(model, atoms, False, uncertainty)
    assert out_native[keys.FORCES].requires_grad and out_native[keys.VIRIAL].requires_grad
    assert torch.allclose(out_native[keys.FORCES], out_torch[keys.FORCES], rtol=0,
                          atol=TOL["exact"] * float(out_torch[keys.FORCES].detach().abs().max()))
    assert len(native) == len(reference)
    for a, b in zip(native, reference):
        assert float((a - b).abs().max()) <= TOL["runtime"] * max(float(b.abs().max()), 1e-300)


def test_training_through_the_scripted_model():
    model = randomized(BPNNModel.from_spec(h2o_spec()), seed=1)
    atoms = water_box(6, seed=3)
    _, reference = loss_gradients(model, atoms, False)
    native = copy.deepcopy(model)
    native.use_native_kernels(True)
    scripted = torch.jit.script(native).train()
    out = evaluate(scripted, atoms, compute_virial=True)
    loss = ((out[keys.FORCES] - 0.1) ** 2).sum() + (out[keys.ENERGY] + 100.0) ** 2 + ((out[keys.VIRIAL] - 0.5) ** 2).sum()
    gradients = torch.autograd.grad(loss, [p for p in scripted.parameters() if p.requires_grad])
    for a, b in zip(gradients, reference):
        assert float((a - b).abs().max()) <= TOL["runtime"] * max(float(b.abs().max()), 1e-300)


@pytest.mark.cpp
def test_the_cmake_library_has_the_same_autograd(cpp_build):
    """libbpnn.so (what bpnn_run and the LAMMPS plugin load) registers the autograd with the ops:
    gradgradcheck of acsf_backward in a process whose ops come from that library only."""
    script = (f"import sys, os; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
              "import torch\n"
              "from bpnn_ts.native import load_ops\n"
              "assert load_ops()\n"
              "from test_kernel_autograd import System, leaf\n"
              "system = System(9, n_centres=2)\n"
              "vectors = leaf(system.vectors)\n"
              "d_g = leaf(system.random(system.n_centres, system.kernel.n_functions))\n"
              "assert torch.autograd.gradgradcheck(system.backward, (vectors, d_g))\n"
              "print('ok')\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=dict(os.environ, BPNN_OPS_LIBRARY=str(LIBRARY)))
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]
