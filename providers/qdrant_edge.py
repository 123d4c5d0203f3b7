"""QdrantEdgeStore: the Qdrant engine in-process (qdrant-edge-py), persistent in a directory.

One process writes at a time (``writer.lock``, waited for up to ``lock_timeout_s``), into its own live shard;
``optimize()`` and ``close()`` publish what it wrote as a read-only copy, and any number of processes read the
newest published copy without blocking (``ragkit.providers.qdrant_edge_files`` has the layout). A process that
writes reads its own live shard until it publishes.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
import uuid
from pathlib import Path
from typing import IO, Any, Literal, Mapping, Sequence

import numpy as np

from ragkit.component import ComponentConfig, Field
from ragkit.errors import ConfigError, DataError, ProviderError
from ragkit.ingest.lock import DEFAULT_WAIT_S, FileLock
from ragkit.providers.qdrant_edge_files import ShardFiles, dense_dim
from ragkit.retrieve.filters import PayloadType, to_qdrant
from ragkit.types import SparseVector

log = logging.getLogger("ragkit.stores")

DENSE = "dense"
SPARSE = "bm25"
# Point ids are UUID5 of the chunk id in this namespace, so the same chunk always lands on the same point.
ID_NAMESPACE = uuid.UUID("6f1c2a52-8d0e-5b7a-9a51-1d2f3c4b5a69")
_NS_BYTES = ID_NAMESPACE.bytes
# Always indexed: doc_id for incremental re-indexing and delete_doc, chunk_id for lookups.
BUILTIN_INDEXES: dict[str, PayloadType] = {"doc_id": "keyword", "chunk_id": "keyword"}

Result = tuple[str, float, Mapping[str, Any]]


def point_id(chunk_id: str) -> str:
    """The deterministic UUID5 point id of a chunk id (same value as ``uuid.uuid5``, a third of the cost)."""
    b = bytearray(hashlib.sha1(_NS_BYTES + chunk_id.encode("utf-8")).digest()[:16])
    b[6] = (b[6] & 0x0F) | 0x50
    b[8] = (b[8] & 0x3F) | 0x80
    x = b.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def payload_indexes(schema: Mapping[str, PayloadType]) -> dict[str, PayloadType]:
    """The declared payload schema plus the built-in keyword indexes."""
    return {**schema, **BUILTIN_INDEXES}


def check_batch(
    ids: Sequence[str],
    vectors: Sequence[Sequence[float]],
    payloads: Sequence[Mapping[str, Any]],
    sparse: Sequence[SparseVector] | None,
    dim: int | None,
) -> None:
    """Reject ragged batches and wrong dimensions before anything is written."""
    if len(vectors) != len(ids) or len(payloads) != len(ids) or (sparse is not None and len(sparse) != len(ids)):
        raise DataError(
            f"upsert: {len(ids)} ids but {len(vectors)} vectors, {len(payloads)} payloads"
            + (f", {len(sparse)} sparse vectors" if sparse is not None else "")
        )
    for cid, v in zip(ids, vectors):
        if dim is not None and len(v) != dim:
            raise ConfigError(f"dimension mismatch: collection has {dim}, embedder gives {len(v)} (chunk {cid!r})")


def with_chunk_id(chunk_id: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    return {**payload, "chunk_id": chunk_id}


def dense_rows(vectors: Sequence[Sequence[float]]) -> Sequence[Any]:
    """Each dense vector in the form the binding reads fastest.

    The binding walks a vector as a Python sequence: a numpy row hands out a numpy scalar per element (~18 us for
    384 dims), ``tolist()`` allocates every float up front (~21 us), while a 1-D float32 memoryview slice makes each
    float on demand (~6 us). The engine stores float32, so casting numpy input to float32 loses nothing it keeps.
    """
    if isinstance(vectors, np.ndarray) or (len(vectors) and isinstance(vectors[0], np.ndarray)):
        matrix = np.ascontiguousarray(vectors, dtype=np.float32)
        dim = matrix.shape[1]
        flat = memoryview(matrix.reshape(-1))
        return [flat[s : s + dim] for s in range(0, len(matrix) * dim, dim)]
    # Lists go as they are; a per-element float() pass would cost more than the write.
    return [v if isinstance(v, list) else list(v) for v in vectors]


class QdrantEdgeStore:
    """Dense ("dense") + BM25 sparse ("bm25", IDF modifier) vectors in an on-disk Qdrant Edge shard."""

    class Config(ComponentConfig):
        path: str | None = Field(
            None,
            min_length=1,
            max_length=4096,
            description="directory of the shard; reopened if it exists (default: <index_dir>/store)",
        )
        distance: Literal["cosine", "dot", "euclid"] = Field("cosine", description="dense vector distance")
        hnsw_m: int = Field(16, ge=4, le=128, description="HNSW edges per node")
        hnsw_ef_construct: int = Field(128, ge=8, le=1024, description="HNSW candidates while building")
        hnsw_ef: int = Field(128, ge=8, le=4096, description="HNSW candidates while searching")
        full_scan_threshold_kb: int = Field(
            1000, ge=1, le=10_000_000, description="segments below this many KB of vectors are searched exactly"
        )
        indexing_threshold_kb: int = Field(
            1000, ge=1, le=10_000_000, description="segments above this many KB of vectors get an HNSW index"
        )
        max_segment_size_kb: int | None = Field(
            16_000,
            ge=1000,
            le=100_000_000,
            description="largest segment, in KB of dense vectors (16,000: about 10,000 384-d points); bounds what one "
            "optimiser run merges, so indexing memory stays flat as the index grows; None = engine default (unbounded)",
        )
        default_segment_number: int = Field(2, ge=0, le=64, description="target segment count (0 = engine picks)")
        max_indexing_threads: int = Field(0, ge=0, le=256, description="HNSW build threads (0 = all cores)")
        vectors_on_disk: bool = Field(False, description="keep dense vectors memory-mapped instead of cached in RAM")
        wal: bool = Field(
            True,
            description="write-ahead log; off makes bulk upserts ~25% cheaper but durable only after close/optimize",
        )
        optimize_on_upsert: bool = Field(
            False, description="run the optimiser (HNSW build) after every upsert batch instead of on optimize()"
        )
        optimize_every_points: int | None = Field(
            8192,
            ge=256,
            le=100_000_000,
            description="run the optimiser after this many points written since it last ran, so a large ingest "
            "merges and indexes bounded pieces as it goes instead of everything at the end (None: only on optimize())",
        )
        payload_schema: dict[str, PayloadType] = Field(
            default_factory=dict, max_length=256, description="payload field -> index type, for filtered search"
        )
        lock_timeout_s: float = Field(
            DEFAULT_WAIT_S, ge=0, le=86_400, description="seconds a writer waits for another process's write to end"
        )

    def __init__(self, config: QdrantEdgeStore.Config) -> None:
        try:
            import qdrant_edge
        except ImportError as e:  # pragma: no cover - qdrant-edge-py is a core dependency
            raise ConfigError("qdrant_edge store needs qdrant-edge-py: pip install qdrant-edge-py") from e
        self._qe = qdrant_edge
        self.config = config
        if config.path is None:
            raise ConfigError("qdrant_edge store needs a path (field path)")
        self.path = Path(config.path)
        self.files = ShardFiles(self.path)
        self._writer = FileLock(self.path / "writer.lock")
        self._shard: Any = None  # the live shard while writing, else the published copy being read
        self._mode: Literal["write", "read"] | None = None
        self._pin: IO[str] | None = None  # the reader registration of the copy being read
        self._stamp: tuple[int, int, int] | None = None
        self._retired: list[tuple[Any, IO[str] | None, float]] = []  # copies replaced by a newer one
        self._dirty = False  # written since the last publish
        self._since_optimize = 0  # points written since the optimiser last ran
        self._dim: int | None = None
        self._lock = threading.RLock()

    @classmethod
    def from_config(cls, config: QdrantEdgeStore.Config, *, path: str | None = None, **_: Any) -> QdrantEdgeStore:
        if config.path is None:
            if path is None:
                raise ConfigError("qdrant_edge store needs a path (field path)")
            config = config.model_copy(update={"path": path})
        return cls(config)

    # -- lifecycle ---------------------------------------------------------------------------------------
    def _edge_config(self, dim: int) -> Any:
        qe, c = self._qe, self.config
        distance = {"cosine": qe.Distance.Cosine, "dot": qe.Distance.Dot, "euclid": qe.Distance.Euclid}[c.distance]
        memory = qe.Memory.Cold if c.vectors_on_disk else None
        return qe.EdgeConfig(
            vectors={DENSE: qe.EdgeVectorParams(size=dim, distance=distance, memory=memory)},
            sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
            hnsw_config=qe.HnswIndexConfig(
                m=c.hnsw_m,
                ef_construct=c.hnsw_ef_construct,
                full_scan_threshold=c.full_scan_threshold_kb,
                max_indexing_threads=c.max_indexing_threads,
            ),
            wal_enabled=c.wal,
            optimizers=qe.EdgeOptimizersConfig(
                indexing_threshold=c.indexing_threshold_kb,
                max_segment_size=c.max_segment_size_kb,
                default_segment_number=c.default_segment_number,
            ),
        )

    def _load(self, where: Path, what: str) -> Any:
        try:
            return self._qe.EdgeShard.load(str(where))
        except Exception as e:
            raise ProviderError(f"cannot open {what} at {where}: {e}", provider="qdrant_edge") from e

    def _enter_write(self) -> None:
        """Become the writer: take the store's write lock, then open the live shard if there is one."""
        if self._mode == "write":
            return
        self._leave_read()
        self._writer.acquire(self.config.lock_timeout_s, label=f"the store {self.path}")
        try:
            self.files.adopt_legacy()
            if self.files.has_live():
                self._shard = self._load(self.files.live, "shard")
                self._dim = dense_dim(self.files.live, DENSE)
            self._mode = "write"
        except BaseException:
            self._shard = None
            self._writer.release()
            raise

    def _publish(self, optimize: bool = False) -> bool:
        """Flush (and optimize) the live shard, close it, publish a copy for readers, release the write lock."""
        changed = False
        writing = self._mode == "write"
        try:
            shard = self._shard if writing else None
            if writing:
                self._shard = None
            if shard is None and self.files.has_live():  # publishing another process's unpublished writes
                shard = self._load(self.files.live, "shard")
                self._dirty = True
            if shard is not None:
                try:
                    if optimize:
                        changed = bool(shard.optimize())
                        self._since_optimize = 0
                    shard.flush()
                finally:
                    shard.close()
                if self._dirty or changed or self.files.current() is None:
                    self.files.publish()
                    log.info("published %s", self.files.current())
            self._dirty = False
        finally:
            if writing:
                self._mode = None
            self._writer.release()
        return changed

    def _leave_read(self) -> None:
        for shard, pin, _ in [*self._retired, (self._shard, self._pin, 0.0)] if self._mode == "read" else self._retired:
            self._close_quietly(shard, pin)
        self._retired = []
        if self._mode == "read":
            self._shard, self._pin, self._stamp, self._mode = None, None, None, None

    @staticmethod
    def _close_quietly(shard: Any, pin: IO[str] | None) -> None:
        try:
            if shard is not None:
                shard.close()
        except Exception as e:  # a read-only copy has nothing to lose; a failed close must not fail a search
            log.debug("closing a published copy: %s", e)
        finally:
            if pin is not None:
                pin.close()

    def _open_reader(self) -> None:
        """Open the newest published copy (publishing a first-layout store or an unpublished live shard first)."""
        for _ in range(20):
            stamp = self.files.stamp()
            gen = self.files.current()
            if gen is None:
                if not (self.files.has_legacy() or self.files.has_live()):
                    raise ConfigError(f"no index at {self.path}: nothing has been written there yet")
                if not self._writer.try_acquire():
                    raise ConfigError(
                        f"the index at {self.path} is being written for the first time by {self._writer.holder()}; "
                        "it can be read once that run finishes"
                    )
                self.files.adopt_legacy()
                self._publish()
                continue
            pin = self.files.pin(gen)
            if pin is None:  # collected between reading CURRENT and registering; read CURRENT again
                continue
            try:
                shard = self._load(gen, "published copy")
            except ProviderError:
                pin.close()
                time.sleep(0.05)  # another reader may be rewriting the copy's config as it loads it
                continue
            if self._mode == "read":
                self._retired.append((self._shard, self._pin, time.monotonic()))
            self._shard, self._pin, self._stamp, self._mode = shard, pin, stamp, "read"
            self._dim = dense_dim(gen, DENSE)
            return
        raise ProviderError(f"cannot open the published copy of {self.path}", provider="qdrant_edge")

    async def exists(self) -> bool:
        """Whether anything was ever written here (published, or being written for the first time)."""
        return self._mode == "write" or any(
            (self.files.current() is not None, self.files.has_live(), self.files.has_legacy())
        )

    async def ensure_collection(self, dim: int) -> None:
        """Create the shard, or check an existing one's dimension before any write."""
        with self._lock:
            self._enter_write()
            if self._shard is not None:
                if self._dim != dim:
                    raise ConfigError(f"dimension mismatch: collection has {self._dim}, embedder gives {dim}")
            else:
                self.files.live.mkdir(parents=True, exist_ok=True)
                try:
                    self._shard = self._qe.EdgeShard.create(str(self.files.live), self._edge_config(dim))
                except Exception as e:
                    raise ProviderError(f"cannot create shard at {self.path}: {e}", provider="qdrant_edge") from e
                self._dim = dim
                self._dirty = True
                log.info("created qdrant edge shard at %s (dim %d)", self.path, dim)
            self._create_indexes()

    def _create_indexes(self) -> None:
        qe = self._qe
        kinds = {
            "keyword": qe.PayloadSchemaType.Keyword,
            "integer": qe.PayloadSchemaType.Integer,
            "float": qe.PayloadSchemaType.Float,
            "bool": qe.PayloadSchemaType.Bool,
            "text": qe.PayloadSchemaType.Text,
        }
        existing = set(self._shard.info().payload_schema)
        for name, kind in payload_indexes(self.config.payload_schema).items():
            if name not in existing:
                self._update(qe.UpdateOperation.create_field_index(name, kinds[kind]))

    def _ready(self) -> Any:
        """The shard to read: the live one while this process writes, else the newest published copy."""
        with self._lock:
            if self._mode == "write":
                if self._shard is None:
                    raise ConfigError(f"no index at {self.path}: call ensure_collection(dim) first")
                return self._shard
            if self._mode is None or self.files.stamp() != self._stamp:
                self._open_reader()
            now = time.monotonic()
            # A replaced copy stays open a while for searches already running on it in other threads.
            while self._retired and now - self._retired[0][2] > 30.0:
                shard, pin, _ = self._retired.pop(0)
                self._close_quietly(shard, pin)
            return self._shard

    def _update(self, op: Any) -> None:
        with self._lock:
            self._enter_write()
            if self._shard is None:
                raise ConfigError(f"no shard at {self.path}: call ensure_collection(dim) first")
            try:
                self._shard.update(op)
            except Exception as e:
                raise ProviderError(f"update failed: {e}", provider="qdrant_edge") from e
            self._dirty = True

    # -- writes ------------------------------------------------------------------------------------------
    def _sparse(self, v: SparseVector) -> Any:
        return self._qe.SparseVector(list(v.indices), list(v.values))

    async def upsert(
        self,
        ids: Sequence[str],
        vectors: Sequence[Sequence[float]],
        payloads: Sequence[Mapping[str, Any]],
        sparse: Sequence[SparseVector] | None = None,
    ) -> None:
        with self._lock:
            self._enter_write()
            if self._shard is None:
                raise ConfigError(f"no shard at {self.path}: call ensure_collection(dim) first")
        check_batch(ids, vectors, payloads, sparse, self._dim)
        if ids:
            await asyncio.to_thread(self._write, ids, vectors, payloads, sparse)

    def _write(
        self,
        ids: Sequence[str],
        vectors: Sequence[Sequence[float]],
        payloads: Sequence[Mapping[str, Any]],
        sparse: Sequence[SparseVector] | None,
    ) -> None:
        qe = self._qe
        rows = dense_rows(vectors)
        points = []
        for i, cid in enumerate(ids):
            vec: dict[str, Any] = {DENSE: rows[i]}
            if sparse is not None and sparse[i].indices:
                vec[SPARSE] = self._sparse(sparse[i])
            points.append(qe.Point(point_id(cid), vec, with_chunk_id(cid, payloads[i])))
        self._update(qe.UpdateOperation.upsert_points(points))
        self._since_optimize += len(points)
        every = self.config.optimize_every_points
        if self.config.optimize_on_upsert or (every is not None and self._since_optimize >= every):
            self._optimize()

    async def delete(self, ids: Sequence[str]) -> None:
        if ids:
            await asyncio.to_thread(self._update, self._qe.UpdateOperation.delete_points([point_id(i) for i in ids]))

    async def delete_doc(self, doc_id: str) -> None:
        """Delete every chunk of a document."""
        op = self._qe.UpdateOperation.delete_points_by_filter(self._filter({"doc_id": doc_id}))
        await asyncio.to_thread(self._update, op)

    def _optimize(self) -> bool:
        with self._lock:
            self._enter_write()
            self._since_optimize = 0
            changed = self._shard.optimize() if self._shard is not None else False
            if self._shard is not None:
                self._shard.flush()
        return bool(changed)

    async def set_payload(self, ids: Sequence[str], payloads: Sequence[Mapping[str, Any]]) -> list[str]:
        """Replace the payloads of stored chunks; returns the ids that are not stored (nothing is written for them)."""
        if len(ids) != len(payloads):
            raise DataError(f"set_payload: {len(ids)} ids but {len(payloads)} payloads")
        if not ids:
            return []
        return await asyncio.to_thread(self._set_payload, ids, payloads)

    def _set_payload(self, ids: Sequence[str], payloads: Sequence[Mapping[str, Any]]) -> list[str]:
        qe = self._qe
        with self._lock:
            self._enter_write()
            if self._shard is None:
                return list(ids)
            points = [point_id(i) for i in ids]
            stored = {str(r.id) for r in self._shard.retrieve(points, with_payload=False, with_vector=False)}
            for cid, pid, payload in zip(ids, points, payloads):
                if pid in stored:
                    self._update(qe.UpdateOperation.overwrite_payload([pid], with_chunk_id(cid, payload)))
        return [cid for cid, pid in zip(ids, points) if pid not in stored]

    async def optimize(self) -> bool:
        """Build HNSW indexes and merge segments, then publish what was written to readers and release the write
        lock (the next write takes it again); True if the optimiser changed anything."""

        def run() -> bool:
            with self._lock:
                self._enter_write()
                return self._publish(optimize=True)

        return await asyncio.to_thread(run)

    # -- reads -------------------------------------------------------------------------------------------
    def _engine(self, what: str, method: str, *args: Any, **kwargs: Any) -> Any:
        shard = self._ready()
        try:
            return getattr(shard, method)(*args, **kwargs)
        except Exception as e:  # the binding raises bare Exception subclasses
            raise ProviderError(f"{what} failed: {e}", provider="qdrant_edge") from e

    def _query(self, request: Any) -> list[Any]:
        return self._engine("query", "query", request)

    def _filter(self, spec: Mapping[str, Any] | None) -> Any:
        # qdrant_edge's MatchValue reads a Python bool as the integer 1 (bool subclasses int); numpy.bool_ stays a bool.
        return to_qdrant(spec, self._qe, self._qe.RangeFloat, bool_value=np.bool_)

    def _params(self) -> Any:
        return self._qe.SearchParams(hnsw_ef=self.config.hnsw_ef)

    @staticmethod
    def _results(points: Sequence[Any]) -> list[Result]:
        return [(p.payload["chunk_id"], float(p.score), p.payload) for p in points]

    # Searches are in-process and take well under a millisecond at RAG sizes; a thread hop would cost more.
    async def search_dense(
        self, vector: Sequence[float], top_k: int, filter: Mapping[str, Any] | None = None
    ) -> list[Result]:
        qe = self._qe
        req = qe.QueryRequest(
            limit=top_k,
            query=qe.Query.Nearest(list(map(float, vector)), using=DENSE),
            filter=self._filter(filter),
            params=self._params(),
            with_payload=True,
        )
        return self._results(self._query(req))

    async def search_sparse(
        self, vector: SparseVector, top_k: int, filter: Mapping[str, Any] | None = None
    ) -> list[Result]:
        if not vector.indices:
            return []
        qe = self._qe
        req = qe.QueryRequest(
            limit=top_k,
            query=qe.Query.Nearest(self._sparse(vector), using=SPARSE),
            filter=self._filter(filter),
            with_payload=True,
        )
        return self._results(self._query(req))

    async def search_hybrid(
        self,
        vector: Sequence[float],
        sparse: SparseVector,
        top_k: int,
        filter: Mapping[str, Any] | None = None,
        *,
        candidates: int = 50,
        rrf_k: int = 60,
    ) -> list[tuple[str, float, Mapping[str, Any], dict[str, float]]]:
        """Dense + sparse prefetch fused by the engine's RRF, with each retriever's own score, in one batch."""
        qe = self._qe
        flt = self._filter(filter)
        dense_q = qe.Query.Nearest(list(map(float, vector)), using=DENSE)
        sparse_q = qe.Query.Nearest(self._sparse(sparse), using=SPARSE) if sparse.indices else None
        prefetch = [qe.Prefetch(candidates, query=dense_q, params=self._params(), filter=flt)]
        singles = [
            qe.QueryRequest(limit=candidates, query=dense_q, filter=flt, params=self._params(), with_payload=False)
        ]
        if sparse_q is not None:
            prefetch.append(qe.Prefetch(candidates, query=sparse_q, filter=flt))
            singles.append(qe.QueryRequest(limit=candidates, query=sparse_q, filter=flt, with_payload=False))
        # The engine scores rank r (0-based) as 1/(k + r); +1 gives the textbook 1/(k + rank) with rank from 1.
        fused = qe.QueryRequest(
            limit=top_k, query=qe.Fusion.Rrf(k=rrf_k + 1), prefetches=prefetch, filter=flt, with_payload=True
        )
        results = self._engine("hybrid query", "query_batch", qe.QueryBatchRequest([fused, *singles]))
        per = [{str(p.id): float(p.score) for p in r} for r in results[1:]]
        names = ["dense", "sparse"]
        out = []
        for p in results[0]:
            scores = {names[i]: s[str(p.id)] for i, s in enumerate(per) if str(p.id) in s}
            out.append((p.payload["chunk_id"], float(p.score), p.payload, scores))
        return out

    async def count(self) -> int:
        return int(self._engine("count", "count", self._qe.CountRequest(exact=True)))

    async def ids_for_doc(self, doc_id: str) -> set[str]:
        """Chunk ids stored for a document."""
        qe = self._qe
        flt = self._filter({"doc_id": doc_id})
        out: set[str] = set()
        offset = None
        while True:
            records, offset = self._engine(
                "scroll",
                "scroll",
                qe.ScrollRequest(
                    offset=offset, limit=1000, filter=flt, with_payload=qe.PayloadSelector.Include(["chunk_id"])
                ),
            )
            out.update(r.payload["chunk_id"] for r in records)
            if offset is None:
                return out

    async def get_payloads(self, ids: Sequence[str]) -> dict[str, Mapping[str, Any]]:
        """Payloads of the given chunk ids that exist, keyed by chunk id."""
        if not ids:
            return {}
        records = self._engine("retrieve", "retrieve", [point_id(i) for i in ids], with_payload=True, with_vector=False)
        return {r.payload["chunk_id"]: r.payload for r in records}

    async def close(self) -> None:
        """Publish what was written (if anything), release the write lock and close every shard this store has open;
        a later call opens them again."""
        with self._lock:
            if self._mode == "write":
                self._publish()
            self._leave_read()

    def info(self) -> dict[str, int]:
        """Segment, point and HNSW-indexed vector counts."""
        i = self._ready().info()
        return {"segments": i.segments_count, "points": i.points_count, "indexed_vectors": i.indexed_vectors_count}


__all__ = ["QdrantEdgeStore", "point_id", "DENSE", "SPARSE"]
