"""ASE calculators for the active-learning tests, named as `labellers:<factory>` (tests/ on the path)."""

import time

from ase.calculators.emt import EMT


class SlowEMT(EMT):
    """EMT that takes 0.2 s per structure: a labelling long enough to be killed in the middle."""

    def calculate(self, atoms=None, properties=("energy",), system_changes=()):
        time.sleep(0.2)
        super().calculate(atoms, properties, system_changes)


class PickyEMT(EMT):
    """EMT that fails on structures whose info says `fail`, and counts its calculations."""

    calls = 0

    def calculate(self, atoms=None, properties=("energy",), system_changes=()):
        PickyEMT.calls += 1
        if atoms is not None and atoms.info.get("fail"):
            raise RuntimeError("the labeller failed on this structure")
        super().calculate(atoms, properties, system_changes)


def slow_emt() -> SlowEMT:
    return SlowEMT()


def picky_emt() -> PickyEMT:
    return PickyEMT()
