"""Loop-based symmetry functions straight from the formulas (independent of the package's
dense layout), for testing. Slow: small systems only."""

import math

import numpy as np
from ase.neighborlist import neighbor_list

from bpnn_ts.model.descriptors.params import RadialSF


def cutoff_reference(r: float, r_c: float, kind: int, alpha: float) -> float:
    if r >= r_c:
        return 0.0
    if kind == 0:
        return 1.0
    if kind == 2:
        return math.tanh(1 - r / r_c) ** 3
    if kind == 3:
        return ((math.e + 1 / math.e) / (math.e - 1 / math.e)) ** 3 * math.tanh(1 - r / r_c) ** 3
    r_ci = alpha * r_c
    if r < r_ci:
        return 1.0
    x = (r - r_ci) / (r_c - r_ci)
    return {1: lambda: 0.5 * (math.cos(math.pi * x) + 1),
            4: lambda: math.exp(1 - 1 / (1 - x * x)),
            5: lambda: (2 * x - 3) * x * x + 1,
            6: lambda: ((15 - 6 * x) * x - 10) * x ** 3 + 1,
            7: lambda: (x * (x * (20 * x - 70) + 84) - 35) * x ** 4 + 1,
            8: lambda: (x * (x * ((315 - 70 * x) * x - 540) + 420) - 126) * x ** 5 + 1}[kind]()


def reference_descriptors(atoms, functions, cutoff_type: int, alpha: float):
    """{atom index: [G for each function of its element, in the given order]}."""
    r_max = max(f.r_c for f in functions)
    i_list, j_list, d_vectors = neighbor_list("ijD", atoms, r_max)
    numbers = atoms.numbers
    result = {}
    for i in range(len(atoms)):
        mine = d_vectors[i_list == i]
        elements = numbers[j_list[i_list == i]]
        values = []
        for f in (f for f in functions if f.center == numbers[i]):
            fc = lambda r, r_c=f.r_c: cutoff_reference(r, r_c, cutoff_type, alpha)  # noqa: E731
            total = 0.0
            if isinstance(f, RadialSF):
                for v, e in zip(mine, elements):
                    r = np.linalg.norm(v)
                    if e == f.neighbor:
                        total += math.exp(-f.eta * (r - f.r_s) ** 2) * fc(r)
            else:
                for a in range(len(mine)):
                    for b in range(a + 1, len(mine)):
                        if sorted((elements[a], elements[b])) != list(f.neighbors):
                            continue
                        r1, r2 = np.linalg.norm(mine[a]), np.linalg.norm(mine[b])
                        r3 = np.linalg.norm(mine[a] - mine[b])
                        base = 1 + f.lambda_ * np.dot(mine[a], mine[b]) / (r1 * r2)
                        if base <= 0:
                            continue
                        radial = (r1 - f.r_s) ** 2 + (r2 - f.r_s) ** 2
                        term = base ** f.zeta * fc(r1) * fc(r2)
                        if f.narrow:
                            radial += (r3 - f.r_s) ** 2
                            term *= fc(r3)
                        total += term * math.exp(-f.eta * radial)
                total *= 2 ** (1 - f.zeta)
            values.append(total)
        result[i] = values
    return result
