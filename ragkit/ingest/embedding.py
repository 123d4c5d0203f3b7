"""A content-hash embedding cache in sqlite, and the embedder wrapper that batches, caches and prefixes."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from pathlib import Path
from typing import Mapping, Protocol, Sequence

import numpy as np
from pydantic import Field

from ragkit.component import ComponentConfig
from ragkit.errors import ConfigError, ProviderError
from ragkit.protocols import Embedder


class EmbeddingCache(Protocol):
    """Persistent vectors keyed by (embedder id, sha256 of the text)."""

    def get_many(self, model: str, keys: Sequence[str]) -> dict[str, list[float]]: ...

    def put_many(self, model: str, items: Mapping[str, Sequence[float]]) -> None: ...


class SqliteEmbeddingCache:
    """Embedding cache in one sqlite file; vectors stored as little-endian float32 blobs.

    Rows go into a plain rowid table, so a write appends, with a unique index on (model, key) for lookups. The
    first layout kept the vectors inside that index (``WITHOUT ROWID``), where every 1.5 KB row lands on a
    random B-tree page: writes cost 57 us a vector on an empty cache and 112 us at 50,000 against 14 and 30
    now. A cache in that layout (table ``embeddings``) is moved into this one when it is opened.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(str(self.path), check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")  # as the manifest: no fsync per batch; a lost write re-embeds
            self._db.execute("PRAGMA synchronous=NORMAL")
            with self._db:
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS vectors (model TEXT NOT NULL, key TEXT NOT NULL, vector BLOB NOT NULL,"
                    " UNIQUE (model, key))"
                )
                old = self._db.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'embeddings'"
                ).fetchone()
                if old:  # the first layout: same columns, moved over in one transaction
                    self._db.execute(
                        "INSERT OR IGNORE INTO vectors (model, key, vector) SELECT model, key, vector FROM embeddings"
                    )
                    self._db.execute("DROP TABLE embeddings")
        except sqlite3.Error as e:
            raise ConfigError(f"cannot open the embedding cache {self.path}: {e}") from e

    def get_many(self, model: str, keys: Sequence[str]) -> dict[str, list[float]]:
        found: dict[str, list[float]] = {}
        with self._lock:
            for b in range(0, len(keys), 500):  # stay below sqlite's bound-parameter limit
                part = list(keys[b : b + 500])
                marks = ",".join("?" * len(part))
                rows = self._db.execute(
                    f"SELECT key, vector FROM vectors WHERE model = ? AND key IN ({marks})", [model, *part]
                ).fetchall()
                for key, blob in rows:
                    found[key] = np.frombuffer(blob, dtype="<f4").tolist()
        return found

    def put_many(self, model: str, items: Mapping[str, Sequence[float]]) -> None:
        rows = [(model, k, np.asarray(v, dtype="<f4").tobytes()) for k, v in items.items()]
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO vectors (model, key, vector) VALUES (?, ?, ?)", rows)
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def text_key(text: str) -> str:
    """The cache key of a text: its sha256."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class CachedEmbedderConfig(ComponentConfig):
    """Settings of the embedding cache wrapper."""

    path: str | None = Field(
        None, max_length=4096, description="sqlite file for vectors kept across runs; none keeps them in memory only"
    )
    memory_items: int = Field(
        20_000, ge=0, le=100_000_000, description="vectors kept in memory (oldest dropped first; 1.6 KB each at 384-d)"
    )


class CachedEmbedder:
    """Wraps an embedder: vectors are looked up by (embedder id, sha256(text)) and only misses reach ``inner``.

    ``hits`` counts texts served from memory or the persistent cache, ``misses`` the unique texts embedded,
    ``calls`` the ``inner.embed_batch`` calls.
    """

    Config = CachedEmbedderConfig

    def __init__(
        self,
        inner: Embedder,
        cache: EmbeddingCache | None = None,
        *,
        memory_items: int = 20_000,
        call_size: int = 1024,
    ) -> None:
        self.inner = inner
        self.call_size = call_size
        self.cache = cache
        self.memory_items = memory_items
        self.id = inner.id
        self.dim = inner.dim
        self.max_batch = inner.max_batch
        # The longest text (in the inner embedder's tokens) it reads whole, when it says; chunkers must stay below it.
        self.max_input_tokens: int | None = getattr(inner, "max_input_tokens", None)
        self._memory: dict[str, np.ndarray] = {}
        self.hits = 0
        self.misses = 0
        self.calls = 0

    @classmethod
    def from_config(cls, config: CachedEmbedderConfig, *, inner: Embedder, **_: object) -> CachedEmbedder:
        cache = SqliteEmbeddingCache(config.path) if config.path else None
        return cls(inner, cache, memory_items=config.memory_items)

    def counter(self):
        """The inner embedder's token counter, when it has one."""
        return self.inner.counter()  # type: ignore[attr-defined]

    def _remember(self, key: str, vector: Sequence[float]) -> None:
        # Kept as float32 arrays (1.6 KB for 384 dims with the array header) rather than lists of Python floats
        # (about 12 KB), so a full memory cache of 20,000 vectors takes 33 MB; a large ingest stays flat past it.
        if self.memory_items <= 0:
            return
        if len(self._memory) >= self.memory_items:
            self._memory.pop(next(iter(self._memory)))  # dicts keep insertion order: drop the oldest
        self._memory[key] = np.asarray(vector, dtype=np.float32)

    async def embed_batch(self, texts: Sequence[str]) -> list[list[float]]:
        keys = [text_key(t) for t in texts]
        found: dict[str, Sequence[float]] = {k: self._memory[k] for k in set(keys) if k in self._memory}
        wanted = [k for k in dict.fromkeys(keys) if k not in found]
        if wanted and self.cache is not None:
            for k, v in self.cache.get_many(self.id, wanted).items():
                found[k] = v
                self._remember(k, v)
        first_text = {k: t for k, t in zip(keys, texts)}
        missing = [k for k in dict.fromkeys(keys) if k not in found]
        self.hits += sum(1 for k in keys if k in found)
        self.misses += len(missing)  # unique texts sent to the inner embedder
        # Hand the inner embedder large calls (it splits them into its own batches, and a local model sorts the
        # whole call by length, so fewer pad tokens), and persist each call's vectors as soon as it returns, so a
        # failure later in a long ingest loses nothing already embedded.
        step = max(self.inner.max_batch, self.call_size)
        for b in range(0, len(missing), step):
            part = missing[b : b + step]
            self.calls += 1
            vectors = await self.inner.embed_batch([first_text[k] for k in part])
            if len(vectors) != len(part):
                raise ProviderError(f"{self.id} returned {len(vectors)} vectors for {len(part)} texts")
            fresh = dict(zip(part, vectors))
            if self.cache is not None:
                self.cache.put_many(self.id, fresh)
            for k, v in fresh.items():
                self._remember(k, v)
            found.update(fresh)
        return [found[k].tolist() if isinstance(found[k], np.ndarray) else list(found[k]) for k in keys]

    async def embed_query(self, text: str) -> list[float]:
        """One query's vector: memory-cached, never written to the persistent cache (queries rarely repeat there)."""
        key = text_key(text)
        cached = self._memory.get(key)
        if cached is not None:
            self.hits += 1
            return cached.tolist()
        inner_query = getattr(self.inner, "embed_query", None)
        vector = list(await inner_query(text)) if inner_query else list((await self.inner.embed_batch([text]))[0])
        self.misses += 1
        self.calls += 1
        self._remember(key, vector)
        return vector


__all__ = ["EmbeddingCache", "SqliteEmbeddingCache", "text_key", "CachedEmbedderConfig", "CachedEmbedder"]
