"""StructureStore (bpnn_ts.io.streaming): structures read from disk on demand equal
read_structures' for every format and unit, with a bounded cache, views, pickling for worker
processes, read_structures' errors, and memory that does not grow with the file."""

import gc
import multiprocessing
import pickle
import time
import tracemalloc

import ase.db
import ase.io
import numpy as np
import pytest
from ase.build import bulk, molecule
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

from bpnn_ts.io import DataError, check_structures, read_many, read_structures, write_input_data
from bpnn_ts.io.streaming import StructureStore


def emt_structures():
    """Periodic Cu and AlNi cells (one triclinic, with stress) and a non-periodic Cu cluster, EMT-labelled."""
    rng = np.random.default_rng(0)
    cells = [bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2), bulk("Cu", "fcc", a=3.7).repeat((2, 3, 1)),
             bulk("NiAl", "cesiumchloride", a=2.9).repeat(2)]
    cells[1].set_cell(cells[1].cell.array + [[0.0, 0.0, 0.0], [0.3, 0.0, 0.0], [0.1, -0.2, 0.0]], scale_atoms=True)
    cluster = molecule("H2O")  # not periodic; EMT knows H and O
    structures = []
    for atoms in cells + [cluster, cells[0].copy()]:
        atoms = atoms.copy()
        atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
        atoms.calc = EMT()
        labels = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces()}
        if atoms.pbc.all():
            labels["stress"] = atoms.get_stress()
        atoms.calc = SinglePointCalculator(atoms, **labels)
        structures.append(atoms)
    return structures


def write(tmp_path, kind):
    """The EMT structures in one file of `kind`; returns (path, read options)."""
    structures = emt_structures()
    if kind == "n2p2":
        write_input_data(tmp_path / "input.data", structures)
        return tmp_path / "input.data", {}
    if kind == "n2p2-bohr-hartree":
        write_input_data(tmp_path / "train.data", structures, "bohr", "hartree")
        return tmp_path / "train.data", {"length_unit": "bohr", "energy_unit": "hartree"}
    if kind == "extxyz-bohr-hartree":  # read as if the file were in Bohr and Hartree
        ase.io.write(tmp_path / "data.xyz", structures, format="extxyz")
        return tmp_path / "data.xyz", {"length_unit": "bohr", "energy_unit": "hartree"}
    path = tmp_path / f"data.{kind}"
    ase.io.write(path, structures, format=kind)
    if kind == "extxyz":
        with open(path, "a") as file:
            file.write("\n\n")  # blank lines end the data, as for ASE
    if kind == "db":
        with ase.db.connect(path) as db:
            del db[2]  # row ids with a gap
    return path, {}


def assert_same_structure(a, b):
    """Identical positions, numbers, cell, pbc, info and labels (the same text, parsed the same way)."""
    assert (a.numbers == b.numbers).all() and (a.pbc == b.pbc).all()
    np.testing.assert_array_equal(a.positions, b.positions)
    np.testing.assert_array_equal(a.cell.array, b.cell.array)
    assert a.info == b.info
    np.testing.assert_array_equal(a.get_initial_charges(), b.get_initial_charges())
    assert set(a.calc.results) == set(b.calc.results)
    for key, value in a.calc.results.items():
        np.testing.assert_array_equal(value, b.calc.results[key], err_msg=key)


FORMATS = ["extxyz", "extxyz-bohr-hartree", "db", "traj", "n2p2", "n2p2-bohr-hartree"]


@pytest.mark.parametrize("kind", FORMATS)
def test_every_structure_equals_read_structures(tmp_path, kind):
    """In order, in reverse through a 2-structure cache, and again from the cache: each
    structure as read_structures gives it, stress included where the file has it."""
    path, options = write(tmp_path, kind)
    expected = read_structures(path, **options)
    store = StructureStore(path, cache_size=2, **options)
    assert len(store) == len(expected) == (4 if kind == "db" else 5)
    for order in (range(len(store)), reversed(range(len(store))), [0, 1, 0, 1]):
        for index in order:
            assert_same_structure(store[index], expected[index])
    assert ("stress" in store[0].calc.results) == (kind not in ("n2p2", "n2p2-bohr-hartree"))
    assert store.cache_info().structures == 2 and store.cache_info().hits >= 3
    check_structures(store, [1, 8, 13, 28, 29], need_forces=True, source=str(path))
    store.close()


def test_several_files_views_and_slices(tmp_path):
    """Files in order (mixed formats); slices and subsets are views into them; `locate` names the
    file; indices out of range are refused."""
    paths = [write(tmp_path, kind)[0] for kind in ("traj", "n2p2", "extxyz")]
    expected = read_many(paths)
    store = StructureStore(paths)
    assert len(store) == len(expected) == 15 and store.paths == paths
    for index in range(-len(store), len(store)):
        assert_same_structure(store[index], expected[index])
    assert store.locate(7) == (paths[1], 2) and store.locate(-1) == (paths[2], 4)

    view = store.subset([14, 0, 7, -2])
    assert len(view) == 4
    for got, index in zip(view, [14, 0, 7, 13]):
        assert_same_structure(got, expected[index])
    assert view.locate(0) == (paths[2], 4)
    sliced = view[1:]
    assert len(sliced) == 3 and sliced.locate(0) == (paths[0], 0)
    assert_same_structure(store[::5][2], expected[10])
    nested = store[3:12].subset([8, 0])
    assert [store.locate(i) for i in (11, 3)] == [nested.locate(0), nested.locate(1)]
    with pytest.raises(IndexError, match="structure index 15 is out of range for 15 structures"):
        store[15]
    with pytest.raises(IndexError, match="structure index 4 is out of range for 4 structures"):
        view.subset([4])
    assert len(store.subset([])) == 0 and store.subset(np.arange(15)[::-1]).locate(0) == (paths[2], 4)
    assert store.subset(i for i in (3, 1)).locate(1) == (paths[0], 1)
    with pytest.raises(TypeError, match="`indices` must be a sequence of integers, got float64 of shape \\(2,\\)"):
        store.subset([0.0, 1.0])


def test_the_cache_is_bounded_and_returns_copies(tmp_path):
    """At most `cache_size` structures (and `cache_bytes`); a changed structure does not change the
    next read; cache_size=0 caches nothing; bad limits are refused."""
    path, _ = write(tmp_path, "extxyz")
    store = StructureStore(path, cache_size=3)
    for index in [0, 1, 2, 3, 4, 4, 3]:
        store[index]
    info = store.cache_info()
    assert (info.hits, info.misses, info.structures) == (2, 5, 3)
    atoms = store[4]
    atoms.positions += 1.0
    atoms.calc.results["forces"][:] = 0.0
    assert_same_structure(store[4], read_structures(path)[4])

    small = StructureStore(path, cache_bytes=5000)  # room for one structure (estimated sizes)
    for index in range(5):
        small[index]
    assert small.cache_info().structures == 1 and 0 < small.cache_info().bytes <= 5000
    uncached = StructureStore(path, cache_size=0)
    uncached[0], uncached[0]
    assert uncached.cache_info() == (0, 2, 0, 0)
    with pytest.raises(ValueError, match="`cache_size` must be an integer >= 0 \\(structures\\), got -1"):
        StructureStore(path, cache_size=-1)
    with pytest.raises(ValueError, match="`cache_bytes` must be None or an integer > 0, got 0"):
        StructureStore(path, cache_bytes=0)


def _energies(store, indices):
    return [store[i].get_potential_energy() for i in indices]


@pytest.mark.parametrize("kind", ["extxyz", "db", "traj", "n2p2"])
def test_pickles_without_files_or_structures_and_works_in_forked_workers(tmp_path, kind):
    """A used store pickles to names and offsets (no open file, empty cache) and reads the same
    after unpickling; forked workers, which inherit the parent's open file, open their own."""
    path, _ = write(tmp_path, kind)
    expected = [atoms.get_potential_energy() for atoms in read_structures(path)]
    store = StructureStore(path)
    _energies(store, range(len(store)))
    data = pickle.dumps(store.subset([2, 0]))
    assert len(data) < 2000
    copy = pickle.loads(data)
    assert copy.cache_info() == (0, 0, 0, 0) and len(copy) == 2
    assert _energies(copy, [0, 1]) == [expected[2], expected[0]]
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform")
    indices = [[i] * 20 for i in range(len(store))]
    with multiprocessing.get_context("fork").Pool(2) as pool:
        got = pool.starmap(_energies, [(store, chunk) for chunk in indices])
    assert got == [[e] * 20 for e in expected]
    assert _energies(store, range(len(store))) == expected


def _error(call):
    with pytest.raises(DataError) as caught:
        call()
    return str(caught.value)


def without_line(text, word, occurrence):
    """`text` without the `occurrence`-th line starting with `word`."""
    lines = text.splitlines(keepends=True)
    del lines[[i for i, line in enumerate(lines) if line.startswith(word)][occurrence]]
    return "".join(lines)


@pytest.mark.parametrize("damage, damaged", [
    (lambda text: without_line(text, "end", 0), None),  # `begin` inside a structure
    (lambda text: text + "energy 1.0\n", None),  # a keyword outside begin/end
    (lambda text: without_line(text, "end", -1), None),  # truncated
    (lambda text: text.replace("atom", "atom x", 1), 0),  # an unreadable number
    (lambda text: without_line(text, "lattice", 3), 1),  # 2 lattice lines
    (lambda text: text.replace("energy", "energie", 1), 0),  # an unknown keyword
])
def test_damaged_input_data_raises_read_structures_message(tmp_path, damage, damaged):
    """The same message as read_structures (file and line): when indexing for a broken begin/end
    structure, else when the `damaged` structure is read (or by check()); the others read."""
    path, _ = write(tmp_path, "n2p2")
    path.write_text(damage(path.read_text()))
    message = _error(lambda: read_structures(path))
    if damaged is None:
        assert _error(lambda: StructureStore(path)) == message
        return
    store = StructureStore(path)
    assert _error(lambda: store[damaged]) == _error(store.check) == message
    store[2], store[-1]


def test_refused_files_name_the_file_and_structure(tmp_path):
    """Missing files, unknown formats, empty files, damaged XYZ frames and structures without energy."""
    assert _error(lambda: StructureStore(tmp_path / "none.xyz")) == f"data file not found: {tmp_path / 'none.xyz'}"
    (tmp_path / "data.csv").write_text("1\n")
    assert "cannot tell the format from the name" in _error(lambda: StructureStore(tmp_path / "data.csv"))
    assert "unknown data format 'csv'" in _error(lambda: StructureStore(tmp_path / "data.csv", format="csv"))
    for empty in (tmp_path / "input.data", tmp_path / "empty.xyz"):
        empty.write_text("\n")
        assert _error(lambda: StructureStore(empty)) == _error(lambda: read_structures(empty))  # noqa: B023
    path, _ = write(tmp_path, "extxyz")
    text = path.read_text()
    path.write_text("thirty-two" + text[text.index("\n"):])
    assert _error(lambda: StructureStore(path)).startswith(f"{path}: cannot read as extxyz (structure 0: expected")
    path.write_text(text[:text.rindex("Cu")])
    assert _error(lambda: StructureStore(path)) == (
        f"{path}: cannot read as extxyz (structure 4 is cut short: 32 atoms announced, 31 in the file)")
    structures = emt_structures()
    structures[1].calc = None
    ase.io.write(path, structures, format="extxyz")
    store = StructureStore(path)
    assert _error(lambda: store[1]) == _error(lambda: read_structures(path)) == (
        f"{path} structure 1: no energy (need `energy` in the file's properties or info)")
    path.write_text(text.replace("Cu", "Qq", 1))
    assert _error(lambda: StructureStore(path)[0]).startswith(f"{path} structure 0: cannot read as extxyz (")
    (tmp_path / "bad.traj").write_text("not a trajectory")
    assert "bad.traj: cannot read as traj" in _error(lambda: StructureStore(tmp_path / "bad.traj"))
    (tmp_path / "bad.db").write_text("not a database" * 100)
    assert "bad.db: cannot read as db" in _error(lambda: StructureStore(tmp_path / "bad.db"))
    with pytest.raises(DataError, match="`paths` must name at least one data file, got none"):
        StructureStore([])


def test_a_file_changed_after_indexing_is_refused(tmp_path):
    """Offsets into a rewritten file would read the wrong bytes: reading it is refused, in this
    process (file open, a structure cached) and in a worker (unpickled)."""
    path, _ = write(tmp_path, "extxyz")
    store = StructureStore(path)
    shipped = pickle.dumps(store)
    store[0]
    ase.io.write(path, emt_structures()[1:], format="extxyz")
    store[0]  # from the cache
    for reader in (store, pickle.loads(shipped)):
        with pytest.raises(DataError, match="data.extxyz: the file changed after it was indexed; make a new Struct"):
            reader[1]


def write_many(path, n_structures, n_atoms=4, seed=0):
    """An extended XYZ file of `n_structures` small labelled Cu cells, written directly (fast)."""
    rng = np.random.default_rng(seed)
    properties = 'Properties=species:S:1:pos:R:3:forces:R:3 pbc="T T T"'
    with open(path, "w") as file:
        for k in range(n_structures):
            rows = np.hstack([rng.uniform(0.0, 3.6, (n_atoms, 3)), rng.normal(size=(n_atoms, 3))])
            energy = -3.5 * n_atoms - k * 1e-3
            file.write(f'{n_atoms}\nLattice="3.6 0.0 0.0 0.0 3.6 0.0 0.0 0.0 3.6" {properties} energy={energy}\n')
            file.writelines("Cu " + " ".join(f"{x:.10f}" for x in row) + "\n" for row in rows)


def test_streaming_memory_stays_bounded(tmp_path):
    """A pass over 1,000 structures through a 16-structure cache: what it holds is the same after
    250 structures and after 1,000, and its peak (mostly ASE's cyclic garbage between collections)
    is under half of what reading them all holds (measured per structure on the first 100:
    reading all grows linearly)."""
    path = tmp_path / "many.xyz"
    write_many(path, 1000)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        structures = ase.io.read(path, index=":100", format="extxyz")
        gc.collect()
        reading_all = (tracemalloc.get_traced_memory()[0] - before) / len(structures) * 1000
        del structures
        gc.collect()
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        store = StructureStore(path, cache_size=16)
        held, peaks = [], []
        for index in range(len(store)):
            store[index].get_potential_energy()
            if index + 1 in (250, len(store)):
                peaks.append(tracemalloc.get_traced_memory()[1] - before)
                tracemalloc.reset_peak()
                gc.collect()
                held.append(tracemalloc.get_traced_memory()[0] - before)
    finally:
        tracemalloc.stop()
    print(f"reading all: {reading_all / 1e6:.1f} MB; streamed: peak {peaks[0] / 1e6:.2f} MB over the first 250, "
          f"{peaks[1] / 1e6:.2f} MB over the next 750; held {held[0] / 1e6:.2f} and {held[1] / 1e6:.2f} MB")
    assert abs(held[1] - held[0]) < 50_000, held  # keeping the 750 more would take ~3 MB
    assert max(peaks) < 0.5 * reading_all, (peaks, reading_all)


def test_indexing_reads_offsets_not_structures(tmp_path):
    """Indexing 5,000 structures takes a fraction of parsing them (timed loosely: shared machines)."""
    path = tmp_path / "many.xyz"
    write_many(path, 5000, n_atoms=16)
    start = time.perf_counter()
    store = StructureStore(path)
    indexing = time.perf_counter() - start
    assert len(store) == 5000 and store.cache_info().misses == 0
    start = time.perf_counter()
    ase.io.read(path, index=":200", format="extxyz")
    parsing_200 = time.perf_counter() - start
    assert indexing < 5 * parsing_200, (indexing, parsing_200)  # vs parsing 5,000: 25x
