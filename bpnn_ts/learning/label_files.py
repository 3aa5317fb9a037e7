"""Every label of an active-learning run so far, kept as the rounds' labelled.extxyz files and
never all in memory: counted by scanning the files, joined into a training file byte for byte,
and read only where a structure is needed (the starts of exploration)."""

import shutil
from pathlib import Path
from typing import Iterator, List, Sequence

import ase.io
from ase import Atoms

from ..atomic_write import write_atomically


def frames_in(path: Path) -> int:
    """The number of structures in an extxyz file (each: a line with the atom count, a comment
    line, then that many atom lines), by reading its lines only."""
    count = 0
    with open(path) as handle:
        for line in handle:
            if not line.strip():
                continue
            atoms = int(line)
            for _ in range(atoms + 1):
                next(handle)
            count += 1
    return count


class Labels:
    """The labels in `files` (extxyz, in order), as one sequence that is counted and read
    lazily."""

    def __init__(self, files: Sequence[Path]):
        self.files = [Path(path) for path in files]
        self.counts = [frames_in(path) for path in self.files]

    def __len__(self) -> int:
        return sum(self.counts)

    def write(self, path: Path) -> None:
        """All labels as one extxyz file at `path` (the files joined; written atomically)."""
        def join(temporary: str) -> None:
            with open(temporary, "wb") as out:
                for source in self.files:
                    with open(source, "rb") as handle:
                        shutil.copyfileobj(handle, out)
        write_atomically(path, join)

    def pick(self, indices: Sequence[int]) -> List[Atoms]:
        """The labels at `indices` (positions in the whole sequence), in that order."""
        wanted = {int(i) for i in indices}
        found = {}
        for index, atoms in self._indexed():
            if index in wanted:
                found[index] = atoms
                if len(found) == len(wanted):
                    break
        return [found[int(i)] for i in indices]

    def _indexed(self) -> Iterator:
        index = 0
        for path, count in zip(self.files, self.counts):
            if count:
                for atoms in ase.io.iread(path, index=":", format="extxyz"):
                    yield index, atoms
                    index += 1
