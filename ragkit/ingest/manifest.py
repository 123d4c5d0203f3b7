"""The index manifest: what each document became (content hash, chunk ids with their payload hashes), in SQLite.

Layout (``PRAGMA user_version`` 2): ``docs(doc_id, hash, chunks, legacy)`` where ``chunks`` is a JSON object of
chunk id -> payload hash, and ``pending(doc_id, chunk_id)``: chunks written to the store for a document whose row
is not yet updated. A run killed mid-document leaves its writes listed in ``pending``, so the next run deletes the
ones it no longer makes, even if the document changed in between.

A manifest of the first layout (version 0: ``docs(doc_id, hash, chunk_ids)``) is converted when opened: each row
keeps its chunk ids, gets an empty hash (so the document is re-checked and its payloads rewritten when next seen)
and is marked ``legacy``. Opening a manifest takes the index's write lock (``ragkit.ingest.lock``) until ``close``.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path
from typing import Iterable

from ragkit.errors import ConfigError
from ragkit.ingest.lock import DEFAULT_WAIT_S, index_lock

log = logging.getLogger("ragkit.ingest.indexing")

VERSION = 2
Chunks = dict[str, str]  # chunk id -> payload hash ("" when unknown)


class Manifest:
    """doc id -> (content hash, chunks), plus the chunk ids written for documents not yet recorded."""

    def __init__(self, path: str | Path, *, wait: float = DEFAULT_WAIT_S) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lock = index_lock(self.path.parent)
        self.lock.acquire(wait, label=f"the index in {self.path.parent}")
        try:
            self._db = sqlite3.connect(str(self.path))
            # WAL with synchronous=NORMAL: a commit survives the process being killed (what resuming needs) without
            # an fsync per batch; only an OS crash can lose the last commits, and those documents are re-indexed.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._upgrade()
        except sqlite3.Error as e:
            self.lock.release()
            raise ConfigError(f"cannot open the index manifest {self.path}: {e}") from e
        except BaseException:
            self.lock.release()
            raise

    def _upgrade(self) -> None:
        db = self._db
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > VERSION:
            raise ConfigError(f"{self.path} was written by a newer ragkit (manifest layout {version}); upgrade ragkit")
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        with db:
            if version < VERSION and "docs" in tables:
                db.execute("ALTER TABLE docs RENAME TO docs_v1")
                tables = tables - {"docs"} | {"docs_v1"}
            db.execute(
                "CREATE TABLE IF NOT EXISTS docs (doc_id TEXT PRIMARY KEY, hash TEXT NOT NULL, chunks TEXT NOT NULL,"
                " legacy INTEGER NOT NULL DEFAULT 0)"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS pending (doc_id TEXT NOT NULL, chunk_id TEXT NOT NULL,"
                " PRIMARY KEY (doc_id, chunk_id)) WITHOUT ROWID"
            )
            if "docs_v1" in tables:
                rows = db.execute("SELECT doc_id, chunk_ids FROM docs_v1").fetchall()
                db.executemany(
                    "INSERT OR REPLACE INTO docs (doc_id, hash, chunks, legacy) VALUES (?, '', ?, 1)",
                    [(d, json.dumps(dict.fromkeys(json.loads(ids), ""))) for d, ids in rows],
                )
                db.execute("DROP TABLE docs_v1")
                log.info("%s: converted %d documents from the first manifest layout", self.path, len(rows))
            db.execute(f"PRAGMA user_version = {VERSION}")

    def get(self, doc_id: str) -> tuple[str, Chunks] | None:
        row = self._db.execute("SELECT hash, chunks FROM docs WHERE doc_id = ?", (doc_id,)).fetchone()
        return (row[0], json.loads(row[1])) if row else None

    def pending(self, doc_id: str) -> list[str]:
        """Chunk ids written for ``doc_id`` by a run that did not finish the document."""
        return [r[0] for r in self._db.execute("SELECT chunk_id FROM pending WHERE doc_id = ?", (doc_id,))]

    def add_pending(self, rows: Iterable[tuple[str, str]]) -> None:
        """Record (doc id, chunk id) pairs about to be written to the store."""
        self._db.executemany("INSERT OR IGNORE INTO pending (doc_id, chunk_id) VALUES (?, ?)", rows)
        self._db.commit()

    def complete(self, rows: Iterable[tuple[str, str, Chunks]]) -> None:
        """Record documents whose chunks are all in the store, and forget their pending writes, in one commit."""
        rows = list(rows)
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO docs (doc_id, hash, chunks, legacy) VALUES (?, ?, ?, 0)",
                [(d, h, json.dumps(chunks)) for d, h, chunks in rows],
            )
            self._db.executemany("DELETE FROM pending WHERE doc_id = ?", [(d,) for d, _, _ in rows])

    def delete(self, doc_id: str) -> None:
        with self._db:
            self._db.execute("DELETE FROM docs WHERE doc_id = ?", (doc_id,))
            self._db.execute("DELETE FROM pending WHERE doc_id = ?", (doc_id,))

    def doc_ids(self) -> set[str]:
        """Every document recorded, or with writes pending."""
        return {r[0] for r in self._db.execute("SELECT doc_id FROM docs UNION SELECT doc_id FROM pending")}

    def legacy_ids(self) -> list[str]:
        """Documents recorded by the first manifest layout and not indexed since."""
        return [r[0] for r in self._db.execute("SELECT doc_id FROM docs WHERE legacy = 1 ORDER BY doc_id")]

    def close(self) -> None:
        try:
            self._db.close()
        finally:
            self.lock.release()


__all__ = ["Manifest", "Chunks", "VERSION"]
