"""Exploration: MD (ASE; Langevin NVT, or Berendsen NPT at the given pressures) with a round's
committee from labelled structures, each optionally strained, keeping a frame every
`explore.every` steps with its committee force spread (the largest per-atom spread, eV/Å:
sqrt(mean_k |F_ik - mean F_i|^2)). A trajectory stops early where the committee has left
all knowledge behind (spread above twice `select.upper`, or the model refuses the structure:
overlapping atoms, NaN); what it kept until then counts. Trajectories run in worker processes;
each is seeded (round, protocol, trajectory), so a resumed round explores the same frames."""

from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any, Callable, List, NamedTuple, Sequence, Tuple

import numpy as np
from ase import Atoms, units
from ase.calculators.singlepoint import SinglePointCalculator

from .config import Explore

SPREAD = "force_spread"  # frame info: the committee's largest per-atom force spread, eV/Å


def force_spread(calculator) -> float:
    """The largest per-atom committee force spread (eV/Å) of the calculator's last call."""
    spreads = np.asarray(calculator.results["forces_uncertainty"])
    return float(spreads.max()) if spreads.size else 0.0


class Protocol(NamedTuple):
    """One trajectory's conditions."""

    temperature: float  # K
    pressure: float  # GPa (npt)
    strain: float  # relative isotropic strain of the starting cell (periodic structures)


def protocols(settings: Explore) -> List[Protocol]:
    """Every combination of the settings' temperatures, pressures (npt only) and strains."""
    pressures = settings.pressures if settings.ensemble == "npt" else (0.0,)
    return [Protocol(t, p, e) for t in settings.temperatures for p in pressures for e in settings.strains]


def dynamics_for(atoms: Atoms, protocol: Protocol, settings: Explore, rng: np.random.RandomState) -> Any:
    """The ASE integrator of `settings.ensemble` for `protocol`."""
    if settings.ensemble == "npt" and atoms.pbc.all():
        from ase.md.nptberendsen import NPTBerendsen
        return NPTBerendsen(atoms, timestep=settings.timestep * units.fs, temperature_K=protocol.temperature,
                            pressure_au=protocol.pressure * units.GPa, taut=100 * units.fs, taup=1000 * units.fs,
                            compressibility_au=settings.compressibility / units.GPa, fixcm=False)
    from ase.md.langevin import Langevin
    return Langevin(atoms, timestep=settings.timestep * units.fs, temperature_K=protocol.temperature,
                    friction=settings.friction / units.fs, rng=rng, fixcm=False)


def run_trajectory(model: str, start: Atoms, protocol: Protocol, settings: Explore, upper: float,
                   seed: int) -> List[Atoms]:
    """One trajectory under `protocol` with the committee file `model`; the frames kept (every
    `settings.every` steps), each with info force_spread, temperature, pressure, strain and step."""
    from ase.md import velocitydistribution

    from ..calculator import BPNNCalculator
    atoms = Atoms(start.numbers, positions=start.positions, cell=start.cell, pbc=start.pbc)
    if protocol.strain != 0.0 and atoms.pbc.any():
        atoms.set_cell(atoms.cell.array * (1.0 + protocol.strain), scale_atoms=True)
    calculator = BPNNCalculator(model, uncertainty=True, extrapolation="ignore")
    atoms.calc = calculator
    rng = np.random.RandomState(seed)
    if hasattr(velocitydistribution, "thermalize_momenta"):  # ASE >= 3.29 (MaxwellBoltzmannDistribution is deprecated)
        velocitydistribution.thermalize_momenta(atoms, protocol.temperature, rng=rng)
    else:
        velocitydistribution.MaxwellBoltzmannDistribution(atoms, temperature_K=protocol.temperature, rng=rng)
    dynamics = dynamics_for(atoms, protocol, settings, rng)
    frames: List[Atoms] = []
    for step in range(settings.every, settings.steps + 1, settings.every):
        try:
            dynamics.run(settings.every)
            atoms.get_forces()
        except ValueError:  # the model refuses the structure (overlapping atoms, NaN): the trajectory ends
            break
        spread = force_spread(calculator)
        if not np.isfinite(atoms.positions).all() or not np.isfinite(spread):
            break
        frame = Atoms(atoms.numbers, positions=atoms.positions.copy(), cell=atoms.cell.copy(), pbc=atoms.pbc.copy())
        frame.info.update({SPREAD: spread, "temperature": protocol.temperature, "pressure": protocol.pressure,
                           "strain": protocol.strain, "step": step})
        frame.calc = SinglePointCalculator(frame, energy=calculator.results["energy"],
                                           forces=calculator.results["forces"].copy())
        frames.append(frame)
        if spread > 2.0 * upper:
            break
    return frames


def explore(model: str, starts: Sequence[Atoms], settings: Explore, upper: float, seed: int,
            log: Callable[[str], None] = print) -> List[Atoms]:
    """Every trajectory of a round (`settings.trajectories` per protocol, each from one of
    `starts` in turn), in `settings.workers` processes; their frames in a fixed order."""
    jobs: List[Tuple[Atoms, Protocol, int]] = []
    for t, protocol in enumerate(protocols(settings)):
        for k in range(settings.trajectories):
            start = starts[(t * settings.trajectories + k) % len(starts)]
            jobs.append((start, protocol, seed * 100_003 + t * 1_009 + k))
    conditions = f"{list(settings.temperatures)} K"
    if settings.ensemble == "npt":
        conditions += f", {list(settings.pressures)} GPa"
    if settings.strains != (0.0,):
        conditions += f", strains {list(settings.strains)}"
    log(f"exploring: {len(jobs)} trajectories of {settings.steps} steps, {settings.ensemble} at {conditions} "
        f"({settings.workers} worker(s))")
    arguments = ([model] * len(jobs), [j[0] for j in jobs], [j[1] for j in jobs], [settings] * len(jobs),
                 [upper] * len(jobs), [j[2] for j in jobs])
    if settings.workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(settings.workers, mp_context=get_context("spawn")) as pool:
            trajectories = list(pool.map(run_trajectory, *arguments))
    else:
        trajectories = [run_trajectory(*job) for job in zip(*arguments)]
    return [frame for frames in trajectories for frame in frames]
