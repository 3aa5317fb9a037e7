"""Exploration trajectories run by LAMMPS (`explore.engine: lammps`) through our plugin
(`pair_style bpnn`, docs/lammps.md), for cells too large for ASE's Python MD loop.

One trajectory is one LAMMPS run in its own folder (data.lmp, in.lmp, log.lammps, dump.lammpstrj,
kept for the person following the loop): the committee's mean drives the MD, LAMMPS dumps a frame
every `explore.every` steps, and `fix halt` ends the run once the committee's largest per-atom
force spread passes twice `select.upper` (`uncertainty_every`). Each dumped frame is then
evaluated with the committee in Python, exactly as the ASE engine does (energy, forces, spread),
so both engines give frames with the same meaning. Ensembles: `nvt` is Langevin (`fix langevin`
+ `fix nve`, damping 1/friction), `npt` Berendsen (`fix press/berendsen` with the bulk modulus
1/compressibility, `fix temp/berendsen` 100 fs, `fix nve`), as the ASE engine's."""

import shlex
import subprocess
from pathlib import Path
from typing import List, Sequence

import numpy as np
from ase import Atoms
from ase.calculators.lammps import Prism

from .config import Explore

GPA_TO_BAR = 1.0e4
SEED_RANGE = 900_000_000  # LAMMPS seeds: positive 32-bit integers


def input_script(model: str, elements: Sequence[str], periodic: bool, temperature: float, pressure: float,
                 settings: Explore, upper: float, seed: int) -> str:
    """The LAMMPS input of one trajectory (metal units: ps, bar)."""
    seed = seed % SEED_RANGE + 1
    timestep_ps = settings.timestep / 1000.0
    lines = ["units metal", "atom_style atomic", "atom_modify map array",
             f"boundary {'p p p' if periodic else 'f f f'}", "read_data data.lmp",
             f"plugin load {settings.lammps_plugin}",
             f"pair_style bpnn {model} extrapolation ignore uncertainty_every {settings.every}",
             "pair_coeff * * " + " ".join(elements),
             f"timestep {timestep_ps!r}",
             f"velocity all create {temperature!r} {seed} dist gaussian mom yes",
             "compute spread all pair bpnn", "variable spread equal c_spread[1]"]
    if settings.ensemble == "npt" and periodic:
        modulus_bar = GPA_TO_BAR / settings.compressibility
        lines += [f"fix barostat all press/berendsen iso {pressure * GPA_TO_BAR!r} {pressure * GPA_TO_BAR!r} 1.0 "
                  f"modulus {modulus_bar!r}",
                  f"fix thermostat all temp/berendsen {temperature!r} {temperature!r} 0.1",
                  "fix integrate all nve"]
    else:
        damping_ps = 1.0 / settings.friction / 1000.0
        lines += [f"fix thermostat all langevin {temperature!r} {temperature!r} {damping_ps!r} {seed + 1}",
                  "fix integrate all nve"]
    lines += [f"fix runaway all halt {settings.every} v_spread > {2.0 * upper!r} error soft",
              f"thermo {settings.every}", "thermo_style custom step temp pe press v_spread",
              f"dump frames all custom {settings.every} dump.lammpstrj id type x y z",
              "dump_modify frames sort id format float %.17g",
              f"run {settings.steps}"]
    return "\n".join(lines) + "\n"


def lammps_trajectory(model: str, elements: Sequence[str], atoms: Atoms, temperature: float, pressure: float,
                      settings: Explore, upper: float, seed: int, folder: Path) -> List[Atoms]:
    """Run one trajectory from `atoms` (already strained) in `folder`; the dumped frames after
    step 0, positions in the starting cell's orientation, with their MD step in info["step"].
    A LAMMPS run that fails midway (atoms lost, a blown-up cell) keeps what it dumped; one that
    dumped nothing raises RuntimeError with LAMMPS's error line."""
    import ase.io
    folder.mkdir(parents=True, exist_ok=True)
    periodic = bool(atoms.pbc.all())
    if atoms.pbc.any() and not periodic:
        raise ValueError("explore.engine lammps: structures must be periodic in all three directions or in none")
    prism = Prism(atoms.cell.array if periodic else _open_box(atoms), reduce_cell=True)
    placed = atoms.copy()
    if periodic:
        placed.wrap()
    else:  # LAMMPS's fixed box around the molecule, 10 Å of room (the model sees no box)
        placed.cell = _open_box(atoms)
        placed.positions = atoms.positions - atoms.positions.min(axis=0) + 10.0
    ase.io.write(folder / "data.lmp", placed, format="lammps-data", specorder=list(elements), masses=True,
                 prismobj=prism, units="metal", atom_style="atomic")
    (folder / "in.lmp").write_text(input_script(model, elements, periodic, temperature, pressure, settings, upper,
                                                seed))
    command = shlex.split(settings.lammps_command) + ["-in", "in.lmp", "-log", "log.lammps", "-screen", "none"]
    result = subprocess.run(command, cwd=folder, capture_output=True, text=True)
    dump = folder / "dump.lammpstrj"
    frames: List[Atoms] = []
    if dump.is_file() and dump.stat().st_size > 0:
        frames = list(ase.io.iread(dump, index=":", format="lammps-dump-text", specorder=list(elements),
                                   prismobj=prism, units="metal"))
    if result.returncode != 0 and len(frames) <= 1:
        raise RuntimeError(f"LAMMPS failed in {folder}: {_lammps_error(result, folder)}")
    kept = []
    for k, frame in enumerate(frames[1:], start=1):
        positions = frame.positions if periodic else frame.positions + atoms.positions.min(axis=0) - 10.0
        kept_atoms = Atoms(frame.numbers, positions=positions, cell=frame.cell if periodic else atoms.cell,
                           pbc=atoms.pbc)
        kept_atoms.info["step"] = k * settings.every
        kept.append(kept_atoms)
    return kept


def _open_box(atoms: Atoms) -> np.ndarray:
    """A box with 10 Å of room around a non-periodic structure."""
    return np.diag(atoms.positions.max(axis=0) - atoms.positions.min(axis=0) + 20.0)


def _lammps_error(result: subprocess.CompletedProcess, folder: Path) -> str:
    """LAMMPS's ERROR line (or the end of its output)."""
    log = (folder / "log.lammps").read_text() if (folder / "log.lammps").is_file() else ""
    text = "\n".join([result.stdout, result.stderr, log])
    errors = [line.strip() for line in text.splitlines() if "ERROR" in line]
    return errors[0] if errors else (text.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
