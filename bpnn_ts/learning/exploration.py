"""Exploration: MD (ASE, or LAMMPS through our plugin: lammps_md.py; Langevin NVT, or Berendsen NPT
at the given pressures) with a round's
committee from labelled structures, each optionally strained, keeping a frame every
`explore.every` steps with its committee force spread (the largest per-atom spread, eV/Å:
sqrt(mean_k |F_ik - mean F_i|^2)). A trajectory stops early where the committee has left
all knowledge behind (spread above twice `select.upper`, or the model refuses the structure:
overlapping atoms, NaN); what it kept until then counts. Trajectories run in worker processes;
each is seeded (round, protocol, trajectory), so a resumed round explores the same frames."""

import tempfile
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Iterator, List, NamedTuple, Optional, Sequence, Tuple

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
                   seed: int, folder: str = "") -> List[Atoms]:
    """One trajectory under `protocol` with the committee file `model`; the frames kept (every
    `settings.every` steps), each with info force_spread, temperature, pressure, strain and step.
    `folder`: where a LAMMPS trajectory (`settings.engine` lammps) keeps its files."""
    from ..calculator import BPNNCalculator
    atoms = Atoms(start.numbers, positions=start.positions, cell=start.cell, pbc=start.pbc)
    if protocol.strain != 0.0 and atoms.pbc.any():
        atoms.set_cell(atoms.cell.array * (1.0 + protocol.strain), scale_atoms=True)
    calculator = BPNNCalculator(model, uncertainty=True, extrapolation="ignore")
    if settings.engine == "lammps":
        states = _lammps_states(model, atoms, calculator, protocol, settings, upper, seed, Path(folder))
    else:
        states = _ase_states(atoms, calculator, protocol, settings, seed)
    frames: List[Atoms] = []
    for state, step in states:
        kept = kept_frame(state, calculator, protocol, step)
        if kept is None:
            break
        frames.append(kept)
        if kept.info[SPREAD] > 2.0 * upper:
            break
    return frames


def _ase_states(atoms: Atoms, calculator: Any, protocol: Protocol, settings: Explore,
                seed: int) -> Iterator[Tuple[Atoms, int]]:
    """ASE MD from `atoms`: the state and its step every `settings.every` steps, evaluated by
    `calculator`; it ends where the model refuses the structure (overlapping atoms, NaN)."""
    from ase.md import velocitydistribution
    atoms.calc = calculator
    rng = np.random.RandomState(seed)
    if hasattr(velocitydistribution, "thermalize_momenta"):  # ASE >= 3.29 (MaxwellBoltzmannDistribution is deprecated)
        velocitydistribution.thermalize_momenta(atoms, protocol.temperature, rng=rng)
    else:
        velocitydistribution.MaxwellBoltzmannDistribution(atoms, temperature_K=protocol.temperature, rng=rng)
    dynamics = dynamics_for(atoms, protocol, settings, rng)
    for step in range(settings.every, settings.steps + 1, settings.every):
        try:
            dynamics.run(settings.every)
            atoms.get_forces()
        except ValueError:
            return
        yield atoms, step


def _lammps_states(model: str, atoms: Atoms, calculator: Any, protocol: Protocol, settings: Explore, upper: float,
                   seed: int, folder: Path) -> Iterator[Tuple[Atoms, int]]:
    """The frames LAMMPS dumped (lammps_md.py), each evaluated by `calculator`; they end where
    the model refuses one."""
    from ase.data import chemical_symbols

    from .lammps_md import lammps_trajectory
    elements = [chemical_symbols[z] for z in calculator.supported]  # the model's order: LAMMPS types 1..n
    for frame in lammps_trajectory(model, elements, atoms, protocol.temperature, protocol.pressure, settings, upper,
                                   seed, folder):
        frame.calc = calculator
        try:
            frame.get_forces()
        except ValueError:
            return
        yield frame, int(frame.info["step"])


def kept_frame(atoms: Atoms, calculator: Any, protocol: Protocol, step: int) -> Optional[Atoms]:
    """A copy of `atoms` with the committee's energy and forces of its last call and info
    force_spread, temperature, pressure, strain and step; None where positions or spread are not finite."""
    spread = force_spread(calculator)
    if not np.isfinite(atoms.positions).all() or not np.isfinite(spread):
        return None
    frame = Atoms(atoms.numbers, positions=atoms.positions.copy(), cell=atoms.cell.copy(), pbc=atoms.pbc.copy())
    frame.info.update({SPREAD: spread, "temperature": protocol.temperature, "pressure": protocol.pressure,
                       "strain": protocol.strain, "step": step})
    frame.calc = SinglePointCalculator(frame, energy=calculator.results["energy"],
                                       forces=calculator.results["forces"].copy())
    return frame


def explore(model: str, starts: Sequence[Atoms], settings: Explore, upper: float, seed: int,
            log: Callable[[str], None] = print, folder: Optional[Path] = None) -> List[Atoms]:
    """Every trajectory of a round (`settings.trajectories` per protocol, each from one of
    `starts` in turn), in `settings.workers` processes; their frames in a fixed order. LAMMPS
    trajectories keep their files in `folder`/trajectory-T-K (a temporary folder if None)."""
    jobs: List[Tuple[Atoms, Protocol, int, str]] = []  # (start, protocol, seed, LAMMPS folder name)
    for t, protocol in enumerate(protocols(settings)):
        for k in range(settings.trajectories):
            start = starts[(t * settings.trajectories + k) % len(starts)]
            jobs.append((start, protocol, seed * 100_003 + t * 1_009 + k, f"trajectory-{t}-{k}"))
    conditions = f"{list(settings.temperatures)} K"
    if settings.ensemble == "npt":
        conditions += f", {list(settings.pressures)} GPa"
    if settings.strains != (0.0,):
        conditions += f", strains {list(settings.strains)}"
    log(f"exploring: {len(jobs)} trajectories of {settings.steps} steps, {settings.ensemble} at {conditions} "
        f"({settings.engine}, {settings.workers} worker(s))")
    with tempfile.TemporaryDirectory(prefix="bpnn_explore_") as scratch:
        base = Path(folder) if folder is not None else Path(scratch)
        arguments = ([model] * len(jobs), [j[0] for j in jobs], [j[1] for j in jobs], [settings] * len(jobs),
                     [upper] * len(jobs), [j[2] for j in jobs], [str(base / j[3]) for j in jobs])
        trajectories = _run_all(arguments, settings.workers)
    return [frame for frames in trajectories for frame in frames]


def _run_all(arguments: Tuple[list, ...], workers: int) -> List[List[Atoms]]:
    """run_trajectory over the columns of `arguments`, in `workers` processes."""
    if workers > 1 and len(arguments[0]) > 1:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            return list(pool.map(run_trajectory, *arguments))
    return [run_trajectory(*job) for job in zip(*arguments)]
