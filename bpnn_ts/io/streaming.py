"""Labelled structures read from disk one at a time, for data sets larger than memory.

`StructureStore(paths)` is a read-only sequence over one file or several: `len(store)`,
`store[i]` (an ase.Atoms in eV and Å with a SinglePointCalculator, equal to what
`read_structures` gives for that structure), `store[a:b]` and `store.subset(indices)` (views
sharing the parent's files and cache). Making a store reads each file once to index it,
parsing no structure:

- extended XYZ: the byte offset of every frame (from the atom-count lines; a blank line or
  the end of the file ends the data, as in ASE);
- n2p2 input.data: the byte offset and first line number of every begin ... end block (the
  begin/end structure is checked here with read_input_data's messages);
- ASE .db: the row ids, in the order `ase.io.read` gives the rows;
- ASE .traj: the number of frames (`ase.io.Trajectory` reads any frame).

A structure is parsed when asked for and kept in a least-recently-used cache bounded by
`cache_size` structures and, optionally, `cache_bytes` (an estimate: arrays plus a fixed
overhead per structure). Each access returns a fresh copy, so callers may change it.

Pickling keeps file names and offsets, never open files or cached structures: DataLoader
and DDP workers (spawned or forked) open their own files on first use.

Errors are `DataError`s with read_structures' messages, naming the file and structure (or
the file's line for n2p2). A structure whose text is damaged is found when it is read
(read_structures refuses the whole file up front); `check()` reads every one once.
"""

import io
import locale
import operator
import os
from array import array
from collections import OrderedDict
from itertools import islice
from pathlib import Path
from typing import Any, Iterable, List, NamedTuple, Optional, Sequence, Tuple, Union, overload

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from ..units import energy_factor, length_factor
from .datasets import DataError, _labelled, checked_format
from .n2p2_data import InputDataError, read_input_lines

PathLike = Union[str, Path]
STRUCTURE_OVERHEAD_BYTES = 4096  # per cached structure beyond its arrays (Atoms, dicts, calculator), roughly


class _Source:
    """One file's structures: its index and how to parse structure k (opened lazily, per process)."""

    format = ""

    def __init__(self, path: Path, to_a: float, to_ev: float):
        self.path, self.to_a, self.to_ev = path, to_a, to_ev
        self.stamp = _stamp(path)  # the file as indexed
        self._handle: Any = None
        self._pid = -1  # the process that opened _handle (a forked worker opens its own)

    def __len__(self) -> int:
        raise NotImplementedError

    def read(self, k: int) -> Atoms:
        raise NotImplementedError

    def _open(self) -> Any:
        raise NotImplementedError

    def handle(self) -> Any:
        """The open file (opened by this process), after checking it is the file that was indexed."""
        if _stamp(self.path) != self.stamp:  # a stat, ~1 µs against ~1 ms to parse
            raise DataError(f"{self.path}: the file changed after it was indexed; make a new StructureStore")
        if self._handle is None or self._pid != os.getpid():
            self._handle, self._pid = self._open(), os.getpid()
        return self._handle

    def close(self) -> None:
        if self._handle is not None and self._pid == os.getpid() and hasattr(self._handle, "close"):
            self._handle.close()
        self._handle = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_handle": None, "_pid": -1}

    def _text(self, start: int, stop: int) -> io.StringIO:
        """Bytes [start, stop) of the file as text, decoded as open() decodes it (universal newlines)."""
        handle = self.handle()
        handle.seek(start)
        return io.StringIO(handle.read(stop - start).decode(locale.getpreferredencoding(False)), newline=None)

    def _labelled(self, read: Any, k: int) -> Atoms:
        """ASE's reading of structure k (`read()`), labelled and converted as read_structures does."""
        where = f"{self.path} structure {k}"
        try:
            atoms = read()
        except Exception as error:  # ASE raises many types for damaged files
            raise DataError(f"{where}: cannot read as {self.format} ({type(error).__name__}: {error})") from error
        return _labelled(atoms, self.to_a, self.to_ev, where)


class _ExtxyzSource(_Source):
    format = "extxyz"

    def __init__(self, path: Path, to_a: float, to_ev: float):
        super().__init__(path, to_a, to_ev)
        self.offsets = _index_extxyz(path)  # (n + 1,) frame k is bytes offsets[k]:offsets[k + 1]

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def _open(self) -> Any:
        return open(self.path, "rb")

    def read(self, k: int) -> Atoms:
        import ase.io
        text = self._text(int(self.offsets[k]), int(self.offsets[k + 1]))
        return self._labelled(lambda: ase.io.read(text, index=0, format="extxyz"), k)


class _N2p2Source(_Source):
    format = "n2p2"

    def __init__(self, path: Path, to_a: float, to_ev: float, length_unit: str, energy_unit: str):
        super().__init__(path, to_a, to_ev)
        self.units = (length_unit, energy_unit)
        self.blocks = _index_input_data(path)  # (n, 3): start byte, stop byte, line number of `begin`

    def __len__(self) -> int:
        return len(self.blocks)

    def _open(self) -> Any:
        return open(self.path, "rb")

    def read(self, k: int) -> Atoms:
        start, stop, first_line = (int(x) for x in self.blocks[k])
        try:
            (atoms,) = read_input_lines(self._text(start, stop), self.path, first_line, *self.units)
        except InputDataError as error:
            raise DataError(str(error)) from error
        return atoms


class _DbSource(_Source):
    format = "db"

    def __init__(self, path: Path, to_a: float, to_ev: float):
        super().__init__(path, to_a, to_ev)
        try:
            rows = self.handle().select(columns=["id"], include_data=False)
            self.ids = np.array([row.id for row in rows], dtype=np.int64)  # (n,)
        except Exception as error:
            raise DataError(f"{path}: cannot read as db ({type(error).__name__}: {error})") from error

    def __len__(self) -> int:
        return len(self.ids)

    def _open(self) -> Any:
        import ase.db
        return ase.db.connect(str(self.path), type="db", serial=True)

    def read(self, k: int) -> Atoms:
        return self._labelled(lambda: self.handle().get(id=int(self.ids[k])).toatoms(), k)


class _TrajSource(_Source):
    format = "traj"

    def __init__(self, path: Path, to_a: float, to_ev: float):
        import ase.io
        super().__init__(path, to_a, to_ev)
        try:
            with ase.io.Trajectory(str(path), "r") as frames:
                self.n_frames = len(frames)
        except Exception as error:
            raise DataError(f"{path}: cannot read as traj ({type(error).__name__}: {error})") from error

    def __len__(self) -> int:
        return self.n_frames

    def _open(self) -> Any:
        import ase.io
        return ase.io.Trajectory(str(self.path), "r")

    def read(self, k: int) -> Atoms:
        return self._labelled(lambda: self.handle()[k], k)


def _stamp(path: Path) -> Tuple[int, int]:
    """Size and modification time: a file changed since it was indexed is refused when read."""
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def _index_extxyz(path: Path) -> np.ndarray:
    """Byte offsets of the frames of an extended XYZ file, and the end of the last, (n + 1,).
    Frames are found as ASE finds them: an atom count, a comment, the atoms, any `VEC` lines."""
    offsets = array("q", [0])
    with open(path, "rb") as lines:
        for line in lines:
            if not line.strip():
                break  # the end of the data, as for ASE
            if len(offsets) > 1 and line.lstrip().startswith(b"VEC"):
                offsets[-1] += len(line)  # lattice vectors of the frame before (old XYZ)
                continue
            try:
                n_atoms = int(line)
                if n_atoms < 0:
                    raise ValueError(n_atoms)
            except ValueError:
                raise DataError(f"{path}: cannot read as extxyz (structure {len(offsets) - 1}: expected the number "
                                f"of atoms, got {line.strip()[:80].decode(errors='replace')!r})") from None
            body = list(islice(lines, n_atoms + 1))  # the comment line and the atoms
            if len(body) < n_atoms + 1:
                raise DataError(f"{path}: cannot read as extxyz (structure {len(offsets) - 1} is cut short: "
                                f"{n_atoms} atoms announced, {max(len(body) - 1, 0)} in the file)")
            offsets.append(offsets[-1] + len(line) + sum(map(len, body)))
    return np.frombuffer(offsets, dtype=np.int64).copy()


def _index_input_data(path: Path) -> np.ndarray:
    """(start byte, stop byte, line number of `begin`) of each begin ... end block of an n2p2
    input.data file, (n, 3); a `begin` inside a block, a keyword outside one or a last block
    without `end` is refused as read_input_data refuses it."""
    blocks = array("q")
    offset, start = 0, -1  # start: the byte where the open block began (-1: none open)
    with open(path, "rb") as lines:
        for number, line in enumerate(lines, start=1):
            words = line.split(None, 1)
            if words:
                key = words[0]
                if key == b"begin":
                    if start >= 0:
                        raise DataError(f"{path}:{number}: `begin` inside a structure (missing `end`)")
                    start = offset
                    blocks.extend((start, -1, number))
                elif start < 0:
                    raise DataError(f"{path}:{number}: `{key.decode(errors='replace')}` outside begin/end")
                elif key == b"end":
                    blocks[-2], start = offset + len(line), -1
            offset += len(line)
    if start >= 0:
        raise DataError(f"{path}: the last structure has no `end` (truncated file?)")
    return np.frombuffer(blocks, dtype=np.int64).reshape(-1, 3).copy()


def _source(path: Path, format: Optional[str], length_unit: str, energy_unit: str) -> _Source:
    """An indexed file, checked as read_structures checks it."""
    format = checked_format(path, format)
    to_a, to_ev = length_factor(length_unit), energy_factor(energy_unit)
    source: _Source
    if format == "n2p2":
        source = _N2p2Source(path, to_a, to_ev, length_unit, energy_unit)
    else:
        source = {"extxyz": _ExtxyzSource, "db": _DbSource, "traj": _TrajSource}[format](path, to_a, to_ev)
    if len(source) == 0:
        hint = " (n2p2 input.data: begin ... end blocks)" if format == "n2p2" else ""
        raise DataError(f"{path}: no structures in the file{hint}")
    return source


class CacheInfo(NamedTuple):
    hits: int
    misses: int
    structures: int  # held now
    bytes: int  # estimated, held now


class _Cache:
    """Least-recently-used parsed structures, bounded in number and (optionally) estimated bytes.
    Pickles empty: each process fills its own."""

    def __init__(self, max_structures: int, max_bytes: Optional[int]):
        self.max_structures, self.max_bytes = max_structures, max_bytes
        self.entries: "OrderedDict[int, Tuple[Atoms, int]]" = OrderedDict()
        self.bytes = self.hits = self.misses = 0

    def get(self, key: int) -> Optional[Atoms]:
        entry = self.entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        self.entries.move_to_end(key)
        return entry[0]

    def put(self, key: int, atoms: Atoms) -> None:
        size = _estimated_bytes(atoms)
        if self.max_structures == 0 or (self.max_bytes is not None and size > self.max_bytes):
            return
        self.entries[key] = (atoms, size)
        self.bytes += size
        while len(self.entries) > self.max_structures or (self.max_bytes is not None and self.bytes > self.max_bytes):
            self.bytes -= self.entries.popitem(last=False)[1][1]

    def __getstate__(self) -> dict:
        return {"max_structures": self.max_structures, "max_bytes": self.max_bytes}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["max_structures"], state["max_bytes"])  # type: ignore[misc]


def _estimated_bytes(atoms: Atoms) -> int:
    arrays = list(atoms.arrays.values())
    if atoms.calc is not None:
        arrays += [v for v in atoms.calc.results.values() if isinstance(v, np.ndarray)]
    return STRUCTURE_OVERHEAD_BYTES + sum(a.nbytes for a in arrays)


def _copy(atoms: Atoms) -> Atoms:
    """A copy with its own arrays, info and calculator results."""
    out = atoms.copy()
    if atoms.calc is not None:
        results = {k: np.array(v) if isinstance(v, np.ndarray) else v for k, v in atoms.calc.results.items()}
        out.calc = SinglePointCalculator(out, **results)
    return out


class StructureStore(Sequence[Atoms]):
    """Labelled structures of one file or several (in order), read on demand (see module docstring).

    `paths`, `format`, `length_unit` and `energy_unit` are read_many's; `cache_size` bounds the
    parsed structures kept (0: none), `cache_bytes` (optional) their estimated size."""

    def __init__(self, paths: Union[PathLike, Sequence[PathLike]], format: Optional[str] = None,
                 length_unit: str = "angstrom", energy_unit: str = "eV", cache_size: int = 256,
                 cache_bytes: Optional[int] = None):
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            raise ValueError(f"`cache_size` must be an integer >= 0 (structures), got {cache_size!r}")
        if cache_bytes is not None and (isinstance(cache_bytes, bool) or not isinstance(cache_bytes, int)
                                        or cache_bytes <= 0):
            raise ValueError(f"`cache_bytes` must be None or an integer > 0, got {cache_bytes!r}")
        if isinstance(paths, (str, Path)):
            paths = [paths]
        if len(paths) == 0:
            raise DataError("`paths` must name at least one data file, got none")
        self._sources = tuple(_source(Path(p), format, length_unit, energy_unit) for p in paths)
        self._starts = np.cumsum([0] + [len(s) for s in self._sources])  # (n_files + 1,) first index of each file
        self._indices: Optional[np.ndarray] = None  # a view's structures, as indices into all of them
        self._cache = _Cache(cache_size, cache_bytes)

    @property
    def paths(self) -> List[Path]:
        return [source.path for source in self._sources]

    def __len__(self) -> int:
        return int(self._starts[-1]) if self._indices is None else len(self._indices)

    @overload
    def __getitem__(self, index: int) -> Atoms: ...

    @overload
    def __getitem__(self, index: slice) -> "StructureStore": ...

    def __getitem__(self, index: Union[int, slice]) -> Union[Atoms, "StructureStore"]:
        if isinstance(index, slice):
            return self.subset(range(len(self))[index])
        key = self._global(index)
        atoms = self._cache.get(key)
        if atoms is None:
            atoms = self._parse(key)
            self._cache.put(key, atoms)
        return _copy(atoms)

    def subset(self, indices: Iterable[int]) -> "StructureStore":
        """A view of the structures at `indices` (of this store, negative counting from the end),
        in that order; it shares this store's files and cache."""
        wanted = np.asarray(indices if isinstance(indices, (np.ndarray, range, list, tuple)) else list(indices))
        if wanted.size == 0:
            wanted = wanted.astype(np.int64).reshape(0)
        if wanted.ndim != 1 or wanted.dtype.kind not in "iu":
            raise TypeError(f"`indices` must be a sequence of integers, got {wanted.dtype} of shape {wanted.shape}")
        n = len(self)
        outside = (wanted < -n) | (wanted >= n)
        if outside.any():
            raise IndexError(f"structure index {int(wanted[outside][0])} is out of range for {n} structures")
        wanted = wanted.astype(np.int64) % max(n, 1)  # (n_wanted,) indices of this store
        view = object.__new__(StructureStore)
        view.__dict__.update(self.__dict__)
        view._indices = wanted if self._indices is None else self._indices[wanted]
        return view

    def locate(self, index: int) -> Tuple[Path, int]:
        """The file of structure `index` and its index within that file."""
        key = self._global(index)
        file = int(np.searchsorted(self._starts, key, side="right")) - 1
        return self._sources[file].path, key - int(self._starts[file])

    def check(self) -> None:
        """Read every structure once (without caching): the errors read_structures raises up front."""
        for index in range(len(self)):
            self._parse(self._global(index))

    def cache_info(self) -> CacheInfo:
        cache = self._cache
        return CacheInfo(cache.hits, cache.misses, len(cache.entries), cache.bytes)

    def close(self) -> None:
        """Close the files this process opened (they reopen on the next access)."""
        for source in self._sources:
            source.close()

    def __enter__(self) -> "StructureStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        names = ", ".join(str(p) for p in self.paths)
        return f"StructureStore({len(self)} structures from {names})"

    def _global(self, index: int) -> int:
        """`index` of this store (or view) as an index into all the files' structures."""
        index = operator.index(index)
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"structure index {index} is out of range for {n} structures")
        index %= n
        return index if self._indices is None else int(self._indices[index])

    def _parse(self, key: int) -> Atoms:
        file = int(np.searchsorted(self._starts, key, side="right")) - 1
        return self._sources[file].read(key - int(self._starts[file]))
