"""Jet files users already have, read in chunks into the same jets sample; and ROOT output.

Recognised by content (never by file name), each giving the fields of the jets sample file (docs/formats.md, "Jets")
(`image` (n, 25, 25) float32 GeV, `signal` int8, JET_FIELDS float32):
- LAGAN HDF5 (arXiv:1701.05927): datasets image, signal, jet_pt, ... tau_32, no physgan attributes;
  read as they are (signal may be stored as float 0./1.).
- JetNet HDF5 (arXiv:2106.11535): particle_features (n, M, 4) = (eta_rel, phi_rel, pt_rel, mask) and
  jet_features (n, 4) = (pt, eta, mass, n_particles); the jet type comes from JetNet's file names
  (g, q -> signal 0; t, w, z -> signal 1, e.g. t.hdf5, w150.hdf5).
- EnergyFlow qg_jets .npz: X (n, M, 4) = (pt, y, phi, pid) zero-padded, y (n,) with quark = 1 -> signal.
- ROOT (TTree or RNTuple) with jagged constituents PREFIX_pt, PREFIX_eta, PREFIX_phi and a label
  branch (see RootBranches). physgan's own ROOT files, which also hold every per-jet field, are read
  as stored.
Constituent inputs go through physgan's own chain (trimming, subjets, tau_N, preprocessing, pixelation:
reconstruction.describe_jets) and keep their particles as a field `constituents` (n, M, 4) float32 of
(pt, eta, phi, E), hardest first, zero-padded, for constituent-level observables.
"""
from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from physgan.errors import UserError
from physgan.systems.jets.images import PIXELS
from physgan.systems.jets.particles import Particles
from physgan.systems.jets.reconstruction import JET_FIELDS, describe_jets

CONDITIONS = ("signal", "jet_pt")  # what a generator is conditioned on: the class and the jet pT
FIELD_TYPES = {"image": ((PIXELS, PIXELS), np.dtype(np.float32)), "signal": ((), np.dtype(np.int8)),
               **{name: ((), np.dtype(np.float32)) for name in JET_FIELDS}}
DESCRIBE_CHUNK = 2048  # jets per pass of the reconstruction chain when reading constituents
JETNET_SIGNAL = {"g": 0, "q": 0, "t": 1, "w": 1, "z": 1}
ROOT_TREE = "jets"


def read_foreign(path: str, kind: str, allow_pickle: bool):
    if kind == "hdf5":
        return _read_hdf5(path)
    if kind == "npz":
        return _read_energyflow_npz(path)
    if kind == "root":
        return read_root(path)
    return None


# ---------------------------------------------------------------------------------------- samples


def _samples(path: str, fmt: str, n: int, reader, fields: dict, note: str, provenance: dict | None = None,
             source: str = "external"):
    from physgan.io import Samples

    return Samples(path=path, system="jets", source=source, format=fmt, n=n, fields=fields, conditions=CONDITIONS,
                   provenance=provenance or {"note": note}, _chunk_reader=reader)


def _empty(fields: dict, names) -> dict[str, np.ndarray]:
    return {name: np.zeros((0,) + fields[name][0], fields[name][1]) for name in names}


def _constituent_samples(path: str, fmt: str, n: int, load, width: int, note: str, **kwargs):
    """Samples of jets known by their particles: load(start, stop) -> (Particles, signal int8 (k,)).

    `image` and JET_FIELDS are computed chunk by chunk with physgan's chain; `signal` and `constituents`
    are read without it.
    """
    fields = {**FIELD_TYPES, "constituents": ((width, 4), np.dtype(np.float32))}

    def reader(start, stop, names):
        if stop <= start:
            return _empty(fields, names)
        parts = {name: [] for name in names}
        for begin in range(start, stop, DESCRIBE_CHUNK):
            particles, signal = load(begin, min(stop, begin + DESCRIBE_CHUNK))
            chunk = {"signal": signal}
            if "constituents" in names:
                chunk["constituents"] = particles.padded(width)
            if set(names) - set(chunk):
                chunk.update(describe_jets(particles))
            for name in names:
                parts[name].append(chunk[name])
        return {name: np.concatenate(values) for name, values in parts.items()}

    return _samples(path, fmt, n, reader, fields, note, **kwargs)


def _labels(values: np.ndarray, path: str, what: str) -> np.ndarray:
    """Class labels as int8 0/1; anything else means a mislabelled file."""
    values = np.asarray(values)
    if values.size and not np.all(np.isin(values, (0, 1))):
        raise UserError(f"{path}: {what} must be 0 or 1, found {np.unique(values)[:5].tolist()}")
    return values.astype(np.int8)


# ---------------------------------------------------------------------------------------- HDF5


def _read_hdf5(path: str):
    import h5py

    with h5py.File(path, "r") as f:
        if "image" in f:
            return _read_lagan(path, f)
        if "particle_features" in f and "jet_features" in f:
            return _read_jetnet(path, f)
    return None


def _read_lagan(path: str, f):
    missing = [name for name in FIELD_TYPES if name not in f]
    if missing:
        raise UserError(f"{path}: a LAGAN-style jet-image file needs datasets {', '.join(FIELD_TYPES)}; "
                        f"missing: {', '.join(missing)}")
    lengths = {name: f[name].shape[0] if f[name].shape else -1 for name in FIELD_TYPES}
    if len(set(lengths.values())) != 1:
        raise UserError(f"{path}: corrupt jet-image file (datasets of different lengths: {lengths})")
    image = f["image"]
    if image.ndim != 3 or image.shape[1] != image.shape[2]:
        raise UserError(f"{path}: image must have shape (n, P, P), found {image.shape}")
    _labels(f["signal"][:], path, "signal")
    fields = dict(FIELD_TYPES, image=(image.shape[1:], np.dtype(np.float32)))

    def reader(start, stop, names):
        import h5py

        with h5py.File(path, "r") as h:
            return {name: _labels(h[name][start:stop], path, "signal") if name == "signal"
                    else h[name][start:stop].astype(np.float32) for name in names}

    return _samples(path, "lagan-hdf5", image.shape[0], reader, fields,
                    "LAGAN-style HDF5 without physgan attributes; fields read as stored")


def _read_jetnet(path: str, f):
    features, jets = f["particle_features"], f["jet_features"]
    if features.ndim != 3 or features.shape[2] < 3 or jets.ndim != 2 or jets.shape[1] < 2 \
            or features.shape[0] != jets.shape[0]:
        raise UserError(f"{path}: JetNet layout needs particle_features (n, M, 4) and jet_features (n, 4); "
                        f"found {features.shape} and {jets.shape}")
    kind = re.fullmatch(r"([gqtwz])\d*", Path(path).stem.lower())
    if kind is None:
        raise UserError(f"{path}: cannot tell the JetNet jet type from the file name; name it as JetNet does "
                        "(g.hdf5, q.hdf5, t.hdf5, w.hdf5, z.hdf5, optionally with the particle count: t150.hdf5)")
    signal = JETNET_SIGNAL[kind.group(1)]

    def load(start, stop):
        import h5py

        with h5py.File(path, "r") as h:
            rows, jet = h["particle_features"][start:stop], h["jet_features"][start:stop]
        real = rows[..., 3] > 0 if rows.shape[2] > 3 else np.ones(rows.shape[:2], bool)
        pt = np.where(real, rows[..., 2] * jet[:, :1], 0.0)
        return (Particles.from_padded(pt, rows[..., 0] + jet[:, 1:2], rows[..., 1]),
                np.full(stop - start, signal, np.int8))

    return _constituent_samples(path, "jetnet-hdf5", jets.shape[0], load, features.shape[1],
                                f"JetNet HDF5 ({kind.group(1)} jets, signal = {signal}); images and per-jet "
                                "fields computed by physgan's chain")


# ---------------------------------------------------------------------------------------- npz


def _npz_header(archive, key: str, path: str):
    """(shape, dtype, data offset) of array `key` in an open zip archive, without reading the data."""
    with archive.open(f"{key}.npy") as member:
        version = np.lib.format.read_magic(member)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(member)
        if fortran or dtype.hasobject:
            raise UserError(f"{path}: array {key!r} is {'Fortran-ordered' if fortran else 'an object array'}; "
                            "save it with numpy's defaults (C order, numeric dtype)")
        return shape, dtype, member.tell()


def _npz_rows(path: str, key: str, start: int, stop: int) -> np.ndarray:
    """Rows start ... stop-1 of array `key` of an .npz, reading only what is needed (a compressed
    member is decompressed up to the rows, never held whole)."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        shape, dtype, offset = _npz_header(archive, key, path)
        row = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        with archive.open(f"{key}.npy") as member:
            member.seek(offset + start * row)
            data = member.read((stop - start) * row)
    return np.frombuffer(data, dtype).reshape((stop - start,) + tuple(shape[1:]))


def _read_energyflow_npz(path: str):
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            names = {Path(n).stem for n in archive.namelist()}
            if "X" not in names:
                return None
            shape, dtype, _ = _npz_header(archive, "X", path)
            if len(shape) != 3 or shape[2] not in (3, 4) or dtype.kind != "f" or ("y" not in names and "T" in names):
                return None  # some other array called X (Ising spins with temperatures T, say)
            if "y" not in names:
                raise UserError(f"{path}: EnergyFlow-style X {shape} needs labels y (n,) (quark = 1) in the same file")
            labels = _labels(_npz_rows(path, "y", 0, _npz_header(archive, "y", path)[0][0]), path, "y")
    except (zipfile.BadZipFile, OSError, ValueError, IndexError) as exc:  # IndexError: y is not (n,)
        raise UserError(f"{path}: unreadable .npz ({exc})") from None
    if len(labels) != shape[0]:
        raise UserError(f"{path}: {shape[0]} jets in X but {len(labels)} labels in y")

    def load(start, stop):
        rows = _npz_rows(path, "X", start, stop)
        return Particles.from_padded(rows[..., 0], rows[..., 1], rows[..., 2]), labels[start:stop]

    return _constituent_samples(path, "energyflow-npz", shape[0], load, shape[1],
                                "EnergyFlow qg_jets .npz (signal = y, quark = 1); images and per-jet fields "
                                "computed by physgan's chain")


# ---------------------------------------------------------------------------------------- ROOT


@dataclass
class RootBranches:
    """Where a ROOT file keeps its jets. None means: find it (the candidates below, in order)."""

    tree: str | None = None
    """TTree or RNTuple name; default "jets", else the file's only tree"""
    prefix: str | None = None
    """constituent branches PREFIX_pt, PREFIX_eta, PREFIX_phi (RNTuple fields PREFIX.pt ...); default
    the first of "part", "constituents", "constituent" present"""
    label: str | None = None
    """0/1 class label branch; default the first of "signal", "label", "is_signal" present"""


PREFIXES = ("part", "constituents", "constituent")
LABELS = ("signal", "label", "is_signal")


@contextlib.contextmanager
def _root_errors(path: str):
    """Turn uproot's many ways of failing on a damaged file into one user error."""
    try:
        yield
    except UserError:
        raise
    except Exception as exc:  # uproot reports damage as OSError, ValueError, KeyError, DeserializationError ...
        raise UserError(f"{path}: unreadable ROOT file ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None


def _tree_name(file, path: str, wanted: str | None) -> str:
    trees = {key.split(";")[0] for key, cls in file.classnames().items() if cls in ("TTree", "ROOT::RNTuple")}
    name = wanted or (ROOT_TREE if ROOT_TREE in trees else next(iter(trees)) if len(trees) == 1 else None)
    if name not in trees:
        raise UserError(f"{path}: no jets tree {wanted or ROOT_TREE!r} "
                        f"(trees here: {', '.join(sorted(trees)) or 'none'})")
    return name


def _column(arrays, name: str):
    for piece in name.split("."):
        arrays = arrays[piece]
    return arrays


def _find(keys, candidates, what: str, path: str) -> str:
    found = next((c for c in candidates if c in keys), None)
    if found is None:
        raise UserError(f"{path}: no {what} branch (looked for {', '.join(candidates)}); "
                        "name it with physgan.systems.jets.formats.RootBranches")
    return found


def read_root(path: str, branches: RootBranches = RootBranches()):
    """A ROOT file of jets as Samples (TTree or RNTuple, read entry range by entry range)."""
    import awkward as ak
    import uproot

    with _root_errors(path), uproot.open(path) as file:
        tree_name = _tree_name(file, path, branches.tree)
        tree = file[tree_name]
        keys = set(tree.keys())
        prefixes = [branches.prefix] if branches.prefix else PREFIXES
        prefix = next((p for p in prefixes if {f"{p}_pt", f"{p}.pt"} & keys), prefixes[0])
        columns = {q: _find(keys, [f"{prefix}_{q}", f"{prefix}.{q}"], f"constituent {q}", path)
                   for q in ("pt", "eta", "phi")}
        label = _find(keys, [branches.label] if branches.label else LABELS, "class label", path)
        n = tree.num_entries
        provenance = _root_provenance(file)
        width = max((int(ak.max(ak.num(_column(tree.arrays([columns["pt"]], entry_start=a, entry_stop=a + 65536),
                                                             columns["pt"])), initial=0))
                     for a in range(0, n, 65536)), default=0)

    def read(start, stop, names):
        with _root_errors(path), uproot.open(path) as f:
            arrays = f[tree_name].arrays(list(names), entry_start=start, entry_stop=stop)
        return {name: _column(arrays, name) for name in names}

    def load(start, stop):
        chunk = read(start, stop, tuple(columns.values()) + (label,))
        pt, eta, phi = (chunk[columns[q]] for q in ("pt", "eta", "phi"))
        return (Particles.from_counts(*(ak.to_numpy(ak.flatten(a)) for a in (pt, eta, phi)), ak.to_numpy(ak.num(pt))),
                _labels(ak.to_numpy(chunk[label]), path, label))

    if set(FIELD_TYPES) <= keys and label == "signal":
        return _stored_root_samples(path, n, read, load, width, provenance)
    return _constituent_samples(path, "root", n, load, width,
                                f"ROOT {tree_name!r}: constituents {columns['pt']}, ..., label {label!r}; images and "
                                "per-jet fields computed by physgan's chain")


def _stored_root_samples(path, n, read, load, width, provenance):
    """physgan's own ROOT files: per-jet fields as stored, constituents from the jagged branches."""
    import awkward as ak

    fields = {**FIELD_TYPES, "constituents": ((width, 4), np.dtype(np.float32))}

    def reader(start, stop, names):
        stored = [name for name in names if name != "constituents"]
        out = {name: ak.to_numpy(values).astype(fields[name][1]) for name, values in read(start, stop, stored).items()}
        if "constituents" in names:
            out["constituents"] = load(start, stop)[0].padded(width)
        return out

    meta = provenance or {}
    return _samples(path, "physgan-root", n, reader, fields, "ROOT file", provenance=meta.get("provenance"),
                    source=meta.get("source", "external"))


def _root_provenance(file) -> dict | None:
    try:
        return json.loads(str(file["physgan"]))
    except Exception:  # absent, or not physgan's: a foreign file has no provenance to show
        return None


class RootWriter:
    """Write jets to a ROOT TTree `jets` in chunks (uproot mktree + extend), atomically.

    Per-jet branches as in the sample file (image as a fixed (25, 25) array), the trimmed jet's particles
    as one jagged record `part` (counter npart; part_pt, part_eta, part_phi, part_e), and a string
    `physgan` holding the system, source and provenance as JSON, written when the block completes (so,
    as with SampleWriter, what is added to the provenance dict inside the block is kept).
    """

    def __init__(self, path, *, provenance: dict | None = None, source: str = "mc", force: bool = False):
        from physgan.io import atomic_output

        self._atomic = atomic_output(path, force)
        self._meta = {"system": "jets", "source": source, "provenance": provenance or {}}
        self._file = self._tree = None

    def __enter__(self) -> "RootWriter":
        import uproot

        from physgan.io import _json_default

        self._file = uproot.recreate(self._atomic.__enter__())
        json.dumps(self._meta, default=_json_default)  # fails now, not after the jets, if it cannot be stored
        return self

    def __exit__(self, exc_type, exc, traceback):
        from physgan.io import _json_default

        if exc_type is None:
            try:
                self._file["physgan"] = json.dumps(self._meta, default=_json_default)
            except BaseException as error:  # the temporary file goes, as for a failure inside the block
                self._file.close()
                self._atomic.__exit__(type(error), error, error.__traceback__)
                raise
        self._file.close()
        return self._atomic.__exit__(exc_type, exc, traceback)

    def extend(self, fields: dict[str, np.ndarray], particles: Particles) -> None:
        import awkward as ak

        columns = {"pt": particles.pt, "eta": particles.eta, "phi": particles.phi,
                   "e": particles.pt * np.cosh(particles.eta)}
        part = ak.zip({q: ak.unflatten(values.astype(np.float32), particles.counts) for q, values in columns.items()})
        data = {name: np.asarray(fields[name], FIELD_TYPES[name][1]) for name in FIELD_TYPES} | {"part": part}
        if self._tree is None:
            types = {name: (dtype, shape) if shape else dtype for name, (shape, dtype) in FIELD_TYPES.items()}
            self._tree = self._file.mktree(ROOT_TREE, {**types, "part": part.type}, title="physgan jets")
        self._tree.extend(data)


def write_root(samples, path, *, force: bool = False, chunk: int = 4096) -> None:
    """Write any jets sample to a physgan ROOT file (constituents where the sample has them)."""
    has_particles = "constituents" in samples.fields
    names = tuple(FIELD_TYPES) + (("constituents",) if has_particles else ())
    with RootWriter(path, provenance=samples.provenance, source=samples.source, force=force) as writer:
        for data in samples.iter_chunks(chunk, names=names):
            padded = data.get("constituents", np.zeros((len(data["signal"]), 0, 4), np.float32))
            writer.extend(data, Particles.from_padded(padded[..., 0], padded[..., 1], padded[..., 2]))
