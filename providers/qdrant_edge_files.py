"""The files of an edge store: one live shard for the writer, read-only copies published for any number of readers.

The Qdrant edge engine lets one process open a shard directory at a time (it locks the write-ahead log), and a
second process that tries, even only to read, can damage the first one's files. So a store directory holds:

    live/            the writer's shard (WAL on); only the holder of ``writer.lock`` ever opens it
    gen-000007/      a copy of live/ made when a writer finished (``publish``), WAL off, never written again
    gen-000007.readers   readers hold a shared flock on it while they have that copy open
    CURRENT          the name of the newest published copy, replaced atomically
    writer.lock      the store's write lock (``ragkit.ingest.lock``)

Readers open the copy CURRENT names and switch to a newer one when CURRENT changes; a writer never touches a
published copy, so readers neither block nor see half a write. A copy no reader holds is deleted when the next
one is published. A store of the first layout (the shard's files directly in the directory) is moved into live/
by the first process that opens it.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # pragma: no cover - no flock on Windows: copies are then never collected while in use
    fcntl = None  # type: ignore[assignment]

CONFIG = "edge_config.json"
OWN = ("live", "CURRENT", "CURRENT.tmp", "writer.lock")


def dense_dim(shard_dir: Path, vector: str) -> int | None:
    """The dimension of dense vector ``vector`` in a shard's config, or None."""
    cfg = json.loads((shard_dir / CONFIG).read_text(encoding="utf-8"))
    params = (cfg.get("vectors") or {}).get(vector)
    return int(params["size"]) if params and "size" in params else None


def _gen_number(name: str) -> int | None:
    head, _, num = name.partition("-")
    return int(num) if head == "gen" and num.isdigit() else None


class ShardFiles:
    """The layout described in the module doc, for the store directory ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.live = root / "live"

    def has_live(self) -> bool:
        return (self.live / CONFIG).exists()

    def has_legacy(self) -> bool:
        return (self.root / CONFIG).exists()

    def adopt_legacy(self) -> None:
        """Move a first-layout shard (files directly in ``root``) into ``live/``; call with the write lock held."""
        if not self.has_legacy():
            return
        self.live.mkdir(exist_ok=True)
        entries = [
            p
            for p in self.root.iterdir()
            if p.name not in OWN and not p.name.startswith("trash-") and _gen_number(p.name.split(".")[0]) is None
        ]
        # The config goes last: until it moves, the directory still reads as the first layout, so a move cut short
        # by a crash is finished by the next process.
        for p in sorted(entries, key=lambda p: p.name == CONFIG):
            if not (self.live / p.name).exists():
                os.replace(p, self.live / p.name)

    def current(self) -> Path | None:
        """The newest published copy, or None when nothing was published."""
        try:
            name = (self.root / "CURRENT").read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        gen = self.root / name
        return gen if _gen_number(name) is not None and (gen / CONFIG).exists() else None

    def stamp(self) -> tuple[int, int, int] | None:
        """Changes whenever a new copy is published (``CURRENT`` is replaced, so its inode changes)."""
        try:
            st = os.stat(self.root / "CURRENT")
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _gens(self) -> list[tuple[int, Path]]:
        out = []
        for p in self.root.iterdir() if self.root.exists() else ():
            n = _gen_number(p.name)
            if n is not None and p.is_dir():
                out.append((n, p))
        return sorted(out)

    def publish(self) -> Path:
        """Copy the closed ``live/`` shard (without its WAL, which a flush has applied) into a new read-only copy and
        make it CURRENT; call with the write lock held and the live shard closed."""
        gens = self._gens()
        current = self.current()
        numbers = [n for n, _ in gens] + ([_gen_number(current.name) or 0] if current else [])
        name = f"gen-{max(numbers, default=0) + 1:06d}"
        tmp = self.root / f"{name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(self.live, tmp, ignore=shutil.ignore_patterns("wal"), copy_function=sparse_copy)
        cfg_path = tmp / CONFIG
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
        cfg["wal_enabled"] = False  # readers of a copy nobody writes need no log, and so take no lock on it
        cfg_path.write_text(json.dumps(cfg), encoding="utf-8")
        os.replace(tmp, self.root / name)
        (self.root / f"{name}.readers").touch()
        pointer = self.root / "CURRENT.tmp"
        with open(pointer, "w", encoding="utf-8") as f:
            f.write(name)
            f.flush()
            os.fsync(f.fileno())
        os.replace(pointer, self.root / "CURRENT")
        self.collect()
        return self.root / name

    def pin(self, gen: Path) -> IO[str] | None:
        """Register as a reader of ``gen`` (a shared flock) so it is not deleted; None if it is already gone."""
        readers = gen.with_name(gen.name + ".readers")
        f = open(readers, "a", encoding="utf-8")  # noqa: SIM115 - held open while the copy is in use
        if fcntl is not None:
            fcntl.flock(f.fileno(), fcntl.LOCK_SH)
        if not (gen / CONFIG).exists():
            f.close()
            readers.unlink(missing_ok=True)
            return None
        return f

    def collect(self) -> None:
        """Delete published copies that are neither CURRENT nor held by a reader, and leftovers of crashed runs."""
        current = self.current()
        for p in self.root.iterdir():
            if p.name.endswith(".tmp") and p.is_dir() or p.name.startswith("trash-"):
                shutil.rmtree(p, ignore_errors=True)
        for _, gen in self._gens():
            if gen == current:
                continue
            readers = gen.with_name(gen.name + ".readers")
            with open(readers, "a", encoding="utf-8") as f:
                if fcntl is not None:
                    try:
                        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        continue  # a reader still has it open
                trash = self.root / f"trash-{gen.name}"
                os.replace(gen, trash)
                readers.unlink(missing_ok=True)
            shutil.rmtree(trash, ignore_errors=True)


__all__ = ["ShardFiles", "dense_dim", "CONFIG"]


_BLOCK = 1 << 20


def sparse_copy(src: str, dst: str) -> str:
    """Copy a file keeping its holes: the engine sizes its storage files in 32 MB steps and leaves them mostly
    unwritten, and a plain copy would write every zero (a five-document index took ~115 MB per published copy).

    Data regions are found with SEEK_DATA/SEEK_HOLE where the file system supports them, else all-zero blocks are
    skipped; either way the copy reads back byte for byte the same."""
    size = os.path.getsize(src)
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        for start, end in _data_regions(fin.fileno(), size):
            fin.seek(start)
            pos = start
            while pos < end:
                block = fin.read(min(_BLOCK, end - pos))
                if not block:
                    break
                if block.count(0) != len(block):  # all-zero blocks stay holes
                    fout.seek(pos)
                    fout.write(block)
                pos += len(block)
        fout.truncate(size)
    shutil.copystat(src, dst)
    return dst


def _data_regions(fd: int, size: int) -> list[tuple[int, int]]:
    """(start, end) of the parts of a file that may hold data; the whole file where holes cannot be asked for."""
    seek_data, seek_hole = getattr(os, "SEEK_DATA", None), getattr(os, "SEEK_HOLE", None)
    if seek_data is None or seek_hole is None:
        return [(0, size)]
    regions, pos = [], 0
    try:
        while pos < size:
            start = os.lseek(fd, pos, seek_data)
            pos = min(os.lseek(fd, start, seek_hole), size)
            regions.append((start, pos))
    except OSError as e:
        if e.errno != errno.ENXIO:  # ENXIO: no data after pos; anything else: copy the whole file
            return [(0, size)]
    return regions
