"""Sample files: the one HDF5 format shared by Monte Carlo and generators, atomic writes, chunked reads.

Layout (docs/formats.md, "Sample files (HDF5)"): root attributes physgan_format = 1, system, source ("mc" | "gan"),
provenance (JSON text); one dataset per per-sample field, all with the same first dimension N, chunked and
compressed; optional small tables (HDF5 groups of equal-length 1D datasets) such as per-temperature Monte
Carlo statistics. Foreign formats (npz, npy, pickles, LAGAN ...) are read by the systems' own readers and
come back as the same `Samples` object.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from physgan import __version__
from physgan.errors import UserError

FORMAT_VERSION = 1
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
DEFAULT_CHUNK = 4096  # samples per read chunk: a few MB for L = 32 lattices


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block completes.

    An existing output is kept unless `force`; on any exception (or Ctrl-C) the temporary file is
    removed, so a failed command never leaves a half-written output behind.
    """
    target = Path(path)
    if target.is_dir():
        raise UserError(f"{target} is a directory; give a file name for the output")
    if target.exists() and not force:
        raise UserError(f"{target} exists; pass --force to overwrite it")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise UserError(f"cannot write {target}: {exc.strerror or exc}") from None
    os.close(fd)
    tmp = Path(tmp_name)
    umask = os.umask(0)  # mkstemp creates 0600; give the output the permissions of an ordinary new file
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def provenance(config: dict | None = None, **extra) -> dict:
    """What made a file: physgan version, command line, configuration, library versions, time."""
    import h5py
    import torch

    return {
        "physgan_version": __version__,
        "command": " ".join(sys.argv),
        "config": config or {},
        "versions": {"python": sys.version.split()[0], "numpy": np.__version__,
                     "torch": torch.__version__, "h5py": h5py.__version__},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **extra,
    }


class SampleWriter:
    """Append per-sample arrays to a new physgan HDF5 file, written atomically.

    Use as a context manager; `append(spins=..., T=...)` may be called many times (datasets grow in
    chunks, so the whole sample never has to be in memory); `add_table(name, columns)` stores a small
    table. The file appears at `path` only when the block exits without an exception. `provenance` (the
    dict given, not a copy) is stored again when the block completes, so what is added to it inside the
    block is kept (the Monte Carlo's `wall_s`).
    """

    def __init__(self, path, *, system: str, source: str, provenance: dict, force: bool = False):
        self._atomic = atomic_output(path, force)
        self.provenance = provenance
        self._attrs = {"physgan_format": FORMAT_VERSION, "system": system, "source": source,
                       "provenance": json.dumps(provenance, default=_json_default)}
        self._file = None

    def __enter__(self) -> "SampleWriter":
        import h5py

        tmp = self._atomic.__enter__()
        self._file = h5py.File(tmp, "w", track_order=True)
        self._file.attrs.update(self._attrs)
        return self

    def __exit__(self, exc_type, exc, traceback):
        if exc_type is None:
            try:
                self._file.attrs["provenance"] = json.dumps(self.provenance, default=_json_default)
            except BaseException as error:  # the temporary file goes, as for a failure inside the block
                self._file.close()
                self._atomic.__exit__(type(error), error, error.__traceback__)
                raise
        self._file.close()
        return self._atomic.__exit__(exc_type, exc, traceback)

    def append(self, **arrays: np.ndarray) -> None:
        lengths = {len(a) for a in arrays.values()}
        if len(lengths) != 1:
            raise ValueError(f"per-sample arrays of different lengths: { {k: len(v) for k, v in arrays.items()} }")
        for name, array in arrays.items():
            array = np.asarray(array)
            if name not in self._file:
                # ~1 MB chunks: big enough to compress well, small enough for streaming reads
                rows = max(1, (1 << 20) // max(1, array[0].nbytes))
                chunk = (rows,) + array.shape[1:]
                self._file.create_dataset(name, shape=(0,) + array.shape[1:], maxshape=(None,) + array.shape[1:],
                                          dtype=array.dtype, chunks=chunk, compression="gzip",
                                          compression_opts=4, shuffle=True)
            dataset = self._file[name]
            start = dataset.shape[0]
            dataset.resize(start + len(array), axis=0)
            dataset[start:] = array

    def add_table(self, name: str, columns: dict[str, np.ndarray]) -> None:
        group = self._file.create_group(name)
        for key, values in columns.items():
            values = np.asarray(values)
            if values.dtype.kind == "U":
                values = values.astype("S")
            group.create_dataset(key, data=values)


@dataclass
class Samples:
    """A sample file opened for reading, whatever its format.

    `fields` maps each per-sample dataset to (shape of one sample, dtype); `iter_chunks` streams them.
    `conditions` names the per-sample condition fields (e.g. ("T",) for Ising).
    """

    path: str
    system: str
    source: str
    format: str
    n: int
    fields: dict[str, tuple[tuple[int, ...], np.dtype]]
    conditions: tuple[str, ...]
    provenance: dict = field(default_factory=dict)
    tables: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    _chunk_reader: Callable[[int, int, tuple[str, ...]], dict[str, np.ndarray]] | None = None

    def read_chunk(self, start: int, stop: int, names: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
        return self._chunk_reader(start, min(stop, self.n), tuple(names or self.fields))

    def iter_chunks(self, size: int = DEFAULT_CHUNK, names: tuple[str, ...] | None = None) -> Iterator[dict[str, np.ndarray]]:
        for start in range(0, self.n, size):
            yield self.read_chunk(start, start + size, names)

    def read(self, name: str) -> np.ndarray:
        """A whole per-sample field (meant for small ones: conditions, scalar observables)."""
        return self.read_chunk(0, self.n, (name,))[name]


def detect_format(path: str | os.PathLike) -> str:
    """Recognise a file by its first bytes, not its name: hdf5, npz, npy, pickle, root."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path} is a directory, not a sample file") from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    if head.startswith(HDF5_MAGIC):
        return "hdf5"
    if head.startswith(b"PK\x03\x04"):
        return "npz"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:  # pickle protocol 2-5 header
        return "pickle"
    if head.startswith(b"root"):
        return "root"
    raise UserError(f"{path}: not a recognised sample file (expected HDF5, ROOT, .npz, .npy or an Ising pickle)")


def open_samples(path: str | os.PathLike | Samples, *, allow_pickle: bool = False) -> Samples:
    """Open any supported sample file: physgan HDF5, or a foreign layout a system knows how to read. Samples
    already open (samples_in_memory: physgan.api's in-memory samples) are returned as they are, so that every
    reader of sample files (train, validate) takes them too."""
    from physgan.systems import foreign_readers

    if isinstance(path, Samples):
        return path
    kind = detect_format(path)
    if kind == "hdf5":
        import h5py

        try:
            with h5py.File(path, "r") as f:
                if "physgan_format" in f.attrs:
                    return _open_physgan_hdf5(str(path), f)
        except OSError as exc:
            raise UserError(f"{path}: unreadable HDF5 file ({exc})") from None
    for reader in foreign_readers():
        samples = reader(str(path), kind, allow_pickle)
        if samples is not None:
            return samples
    raise UserError(f"{path}: a {kind} file, but not in any layout physgan knows (see docs/formats.md)")


def samples_in_memory(arrays: dict[str, np.ndarray], *, system: str, source: str, provenance: dict,
                      tables: dict | None = None, label: str = "<in memory>") -> Samples:
    """Samples over per-sample arrays held in memory (physgan.api.Sample), format "in-memory": the engine
    reads them chunk by chunk as it reads a file (each chunk a copy, so that no reader changes the arrays).
    label stands for the path in messages and in metrics.json."""
    from physgan.systems import get_system

    lengths = {len(array) for array in arrays.values()}
    if len(lengths) != 1:
        raise UserError(f"{label}: per-sample arrays of different lengths "
                        f"({', '.join(f'{name} {len(array)}' for name, array in arrays.items())})")

    def reader(start, stop, names):
        return {name: np.array(arrays[name][start:stop]) for name in names}

    return Samples(path=label, system=system, source=source, format="in-memory", n=lengths.pop(),
                   fields={name: (tuple(array.shape[1:]), array.dtype) for name, array in arrays.items()},
                   conditions=get_system(system).CONDITIONS, provenance=provenance, tables=dict(tables or {}),
                   _chunk_reader=reader)


def _open_physgan_hdf5(path: str, f) -> Samples:
    from physgan.systems import get_system

    attrs = f.attrs
    if int(attrs["physgan_format"]) != FORMAT_VERSION:
        raise UserError(f"{path}: physgan_format {attrs['physgan_format']} is not supported (this physgan reads {FORMAT_VERSION})")
    system = get_system(_text(attrs.get("system", "")), where=path)
    fields, tables, lengths = {}, {}, set()
    for name, item in f.items():
        if hasattr(item, "shape"):
            fields[name] = (tuple(item.shape[1:]), item.dtype)
            lengths.add(item.shape[0])
        else:
            tables[name] = {k: _decode(v[()]) for k, v in item.items()}
    if len(lengths) > 1:
        raise UserError(f"{path}: corrupt sample file (datasets of different lengths {sorted(lengths)})")
    missing = [c for c in system.CONDITIONS + system.DATA_FIELDS if c not in fields]
    if missing:
        raise UserError(f"{path}: corrupt {system.NAME} sample file (missing datasets: {', '.join(missing)})")
    try:
        prov = json.loads(_text(attrs.get("provenance", "{}")))
    except json.JSONDecodeError:
        prov = {"unparsable": _text(attrs["provenance"])}

    def reader(start, stop, names):
        import h5py

        with h5py.File(path, "r") as h:
            return {name: h[name][start:stop] for name in names}

    return Samples(path=path, system=system.NAME, source=_text(attrs.get("source", "unknown")), format="physgan-hdf5",
                   n=lengths.pop() if lengths else 0, fields=fields, conditions=system.CONDITIONS,
                   provenance=prov, tables=tables, _chunk_reader=reader)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _decode(values):
    values = np.asarray(values)
    return values.astype(str) if values.dtype.kind == "S" else values


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def merge_sample_files(paths: list[str], out, *, force: bool = False) -> Samples:
    """Join the shards of one sharded simulation (`--shard i/N`, i = 0 ... N-1) into one file.

    Refuses files that do not belong together: other systems, sources, array shapes, configurations or
    seeds, repeated shards, or an incomplete set. Streams the data; tables gain a `shard` column.
    """
    files = [open_samples(p) for p in paths]
    foreign = [s.path for s in files if s.format != "physgan-hdf5"]
    if foreign:
        raise UserError(f"{foreign[0]}: only physgan sample files written with --shard can be merged")
    first = files[0]
    for other in files[1:]:
        for what, a, b in (("system", first.system, other.system), ("source", first.source, other.source),
                           ("datasets", first.fields, other.fields),
                           ("configuration", first.provenance.get("config"), other.provenance.get("config"))):
            if a != b:
                raise UserError(f"{other.path} does not belong with {first.path}: different {what}")
    shards = [_shard_of(s) for s in files]
    n_shards = {n for _, n in shards}
    if len(n_shards) != 1:
        raise UserError(f"shards of different splits ({', '.join(f'{i}/{n}' for i, n in shards)}) cannot be merged")
    expected, present = set(range(n_shards.pop())), [i for i, _ in shards]
    if len(set(present)) != len(present):
        raise UserError(f"shard {max(present, key=present.count)} is given twice")
    if set(present) != expected:
        raise UserError(f"missing shards {sorted(expected - set(present))} of {len(expected)}: pass every shard file")
    order = sorted(range(len(files)), key=lambda k: present[k])
    seconds = [monte_carlo_seconds(s) for s in files]  # the shards' Monte Carlo time, summed where all have one
    timed = {"wall_s": sum(seconds)} if None not in seconds else {}
    prov = provenance(first.provenance.get("config"), shard="merged",
                      merged_from=[{"path": files[k].path, "shard": files[k].provenance.get("shard"),
                                    "created": files[k].provenance.get("created"),
                                    "command": files[k].provenance.get("command")} for k in order], **timed)
    with SampleWriter(out, system=first.system, source=first.source, provenance=prov, force=force) as writer:
        for k in order:
            for chunk in files[k].iter_chunks():
                writer.append(**chunk)
        for name in first.tables:
            columns = {key: np.concatenate([files[k].tables[name][key] for k in order]) for key in first.tables[name]}
            columns["shard"] = np.concatenate([np.full(len(next(iter(files[k].tables[name].values()))), present[k])
                                               for k in order])
            writer.add_table(name, columns)
    return open_samples(out)


def _shard_of(samples: Samples) -> tuple[int, int]:
    text = str(samples.provenance.get("shard", ""))
    try:
        i, n = (int(x) for x in text.split("/"))
        return i, n
    except ValueError:
        raise UserError(f"{samples.path}: not a shard (no 'shard' entry i/N in its provenance)") from None


# ---------------------------------------------------------------------------------------------
# Files given to `physgan run` (--train-data, --test-data)


def file_record(path: str | os.PathLike) -> dict:
    """What identifies a file's content: absolute path, size in bytes and SHA-256 (hex), read in 1 MiB blocks."""
    import hashlib

    path = Path(path).resolve()
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    return {"path": str(path), "bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def monte_carlo_seconds(samples: Samples) -> float | None:
    """The wall time, in seconds, that the Monte Carlo took to make `samples`, where physgan recorded it (the
    provenance's `wall_s` of a source "mc" file, written by simulate; summed over the shards by merge); None
    when unknown (a foreign file, a generated one, or one written before physgan recorded it)."""
    seconds = samples.provenance.get("wall_s") if isinstance(samples.provenance, dict) else None
    if samples.source != "mc" or isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        return None
    return float(seconds) if math.isfinite(seconds) and seconds > 0 else None


def save_as_physgan(samples: Samples, path, record: dict, *, force: bool = False) -> None:
    """Store any sample file as a physgan HDF5 file at `path` (atomically). A physgan HDF5 file is copied byte
    for byte (its provenance and tables with it). Any other format is converted once, chunk by chunk: the
    fields every physgan file of its system holds (CONDITIONS and DATA_FIELDS; not a reader's extras such as
    the jets' constituents), the source its reader reports, and the provenance {..., "converted_from":
    record plus the "format" and the reader's "provenance"}. record: io.file_record of the original."""
    import shutil

    from physgan.systems import get_system

    if samples.format == "physgan-hdf5":
        with atomic_output(path, force) as tmp:
            shutil.copyfile(samples.path, tmp)
        return
    system = get_system(samples.system)
    origin = {**record, "format": samples.format, "provenance": samples.provenance}
    with SampleWriter(path, system=samples.system, source=samples.source, provenance=provenance(converted_from=origin),
                      force=force) as writer:
        for chunk in samples.iter_chunks(names=tuple(dict.fromkeys(system.CONDITIONS + system.DATA_FIELDS))):
            writer.append(**chunk)
