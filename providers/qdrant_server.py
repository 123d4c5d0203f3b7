"""QdrantServerStore: a Qdrant server or cluster through qdrant-client, or its local mode (":memory:" or a path)."""

from __future__ import annotations

import logging
from typing import Any, Literal, Mapping, Sequence

from pydantic import model_validator

from ragkit.component import ComponentConfig, EnvVarName, Field, secret_from_env
from ragkit.errors import (
    AuthError,
    BadRequest,
    ConfigError,
    DataError,
    ProviderError,
    RateLimited,
    Timeout,
    Unavailable,
)
from ragkit.providers.qdrant_edge import DENSE, SPARSE, Result, check_batch, payload_indexes, point_id, with_chunk_id
from ragkit.retrieve.filters import PayloadType
from ragkit.retrieve.filters import to_qdrant as _to_qdrant
from ragkit.types import SparseVector

log = logging.getLogger("ragkit.stores")


def _translate(e: Exception, what: str) -> ProviderError:
    """Map a qdrant-client/httpx/grpc exception onto the ragkit error tree."""
    name = type(e).__name__
    status = getattr(e, "status_code", None)
    msg = f"{what}: {e}"
    if status in (401, 403):
        return AuthError(msg, provider="qdrant", status=status)
    if status == 429:
        return RateLimited(msg, provider="qdrant", status=status)
    if status in (400, 404, 409, 422):
        return BadRequest(msg, provider="qdrant", status=status)
    if isinstance(status, int) and status >= 500:
        return Unavailable(msg, provider="qdrant", status=status)
    if "Timeout" in name:
        return Timeout(msg, provider="qdrant")
    if name in ("ConnectError", "ResponseHandlingException", "RemoteProtocolError", "ConnectionError") or isinstance(
        e, OSError
    ):
        return Unavailable(msg, provider="qdrant")
    if isinstance(e, (ValueError, KeyError)):
        return BadRequest(msg, provider="qdrant")
    return ProviderError(msg, provider="qdrant", status=status)


class QdrantServerStore:
    """Dense ("dense") + BM25 sparse ("bm25", IDF modifier) vectors in a Qdrant collection."""

    class Config(ComponentConfig):
        url: str | None = Field(None, max_length=2048, description="server URL, e.g. http://localhost:6333")
        location: str | None = Field(None, max_length=4096, description='":memory:" for the in-process local mode')
        path: str | None = Field(None, max_length=4096, description="directory for the on-disk local mode")
        api_key_env: EnvVarName | None = Field(
            None, max_length=256, description="environment variable holding the API key"
        )
        collection: str = Field("ragkit", min_length=1, max_length=255, description="collection name")
        distance: Literal["cosine", "dot", "euclid"] = Field("cosine", description="dense vector distance")
        shard_number: int = Field(1, ge=1, le=1024, description="shards the collection is split into (cluster)")
        replication_factor: int = Field(1, ge=1, le=32, description="copies of each shard (cluster)")
        write_consistency_factor: int = Field(1, ge=1, le=32, description="replicas that must confirm a write")
        on_disk: bool = Field(False, description="keep dense vectors on disk (memmap) instead of RAM")
        on_disk_payload: bool = Field(True, description="keep payloads on disk")
        hnsw_m: int = Field(16, ge=4, le=128, description="HNSW edges per node")
        hnsw_ef_construct: int = Field(128, ge=8, le=1024, description="HNSW candidates while building")
        hnsw_ef: int = Field(128, ge=8, le=4096, description="HNSW candidates while searching")
        timeout_s: float = Field(30.0, gt=0, le=600, description="request timeout in seconds")
        prefer_grpc: bool = Field(False, description="talk gRPC instead of REST to a server")
        check_compatibility: bool = Field(True, description="compare client and server versions when connecting")
        payload_schema: dict[str, PayloadType] = Field(
            default_factory=dict, max_length=256, description="payload field -> index type, for filtered search"
        )

        @model_validator(mode="after")
        def _one_target(self) -> QdrantServerStore.Config:
            given = [n for n in ("url", "location", "path") if getattr(self, n)]
            if len(given) != 1:
                raise ValueError(f"give exactly one of url, location, path (got {', '.join(given) or 'none'})")
            if self.write_consistency_factor > self.replication_factor:
                raise ValueError("write_consistency_factor cannot exceed replication_factor")
            return self

    def __init__(self, config: QdrantServerStore.Config, *, client: Any = None) -> None:
        try:
            from qdrant_client import AsyncQdrantClient, models
        except ImportError as e:
            raise ConfigError("the qdrant store needs qdrant-client: pip install 'ragkit[qdrant-server]'") from e
        self._m = models
        self.config = config
        self.collection = config.collection
        self._dim: int | None = None
        self._exists = False
        if client is None:
            api_key = secret_from_env(config.api_key_env, required=False, what="Qdrant API key")
            kwargs: dict[str, Any] = {"timeout": int(config.timeout_s)}
            if config.url:
                kwargs.update(
                    url=config.url,
                    prefer_grpc=config.prefer_grpc,
                    check_compatibility=config.check_compatibility,
                    api_key=api_key.get_secret_value() if api_key else None,
                )
            elif config.location:
                kwargs = {"location": config.location}
            else:
                kwargs = {"path": config.path}
            try:
                client = AsyncQdrantClient(**kwargs)
            except RuntimeError as e:  # the local mode locks its folder: one process at a time
                raise ConfigError(
                    f"the qdrant store at {config.path} is open in another process; qdrant-client's local mode "
                    "allows one process at a time (use a Qdrant server, field url, for concurrent access)"
                ) from e
        self._client = client
        self._local = not config.url

    def _search_params(self) -> Any:
        # Local mode searches exactly and warns about any search params.
        return None if self._local else self._m.SearchParams(hnsw_ef=self.config.hnsw_ef)

    @classmethod
    def from_config(cls, config: QdrantServerStore.Config, **collaborators: Any) -> QdrantServerStore:
        return cls(config, client=collaborators.get("client"))

    def __repr__(self) -> str:
        target = self.config.url or self.config.location or self.config.path
        return f"QdrantServerStore({target!r}, collection={self.collection!r})"

    def _filter(self, spec: Mapping[str, Any] | None) -> Any:
        return _to_qdrant(spec, self._m, self._m.Range)

    async def _call(self, what: str, coro: Any) -> Any:
        try:
            return await coro
        except ProviderError:
            raise
        except Exception as e:
            raise _translate(e, what) from e

    # -- lifecycle ---------------------------------------------------------------------------------------
    async def ensure_collection(self, dim: int) -> None:
        """Create the collection, or check an existing one's dimension before any write."""
        m, c = self._m, self.config
        if await self._call("collection_exists", self._client.collection_exists(self.collection)):
            info = await self._call("get_collection", self._client.get_collection(self.collection))
            vectors = info.config.params.vectors
            params = vectors.get(DENSE) if isinstance(vectors, dict) else None
            if params is None:
                raise ConfigError(f"collection {self.collection!r} has no dense vector named {DENSE!r}")
            if params.size != dim:
                raise ConfigError(f"dimension mismatch: collection has {params.size}, embedder gives {dim}")
        else:
            distance = {"cosine": m.Distance.COSINE, "dot": m.Distance.DOT, "euclid": m.Distance.EUCLID}[c.distance]
            await self._call(
                "create_collection",
                self._client.create_collection(
                    self.collection,
                    vectors_config={DENSE: m.VectorParams(size=dim, distance=distance, on_disk=c.on_disk)},
                    sparse_vectors_config={SPARSE: m.SparseVectorParams(modifier=m.Modifier.IDF)},
                    shard_number=c.shard_number,
                    replication_factor=c.replication_factor,
                    write_consistency_factor=c.write_consistency_factor,
                    on_disk_payload=c.on_disk_payload,
                    hnsw_config=m.HnswConfigDiff(m=c.hnsw_m, ef_construct=c.hnsw_ef_construct),
                ),
            )
            log.info("created qdrant collection %s (dim %d)", self.collection, dim)
        self._dim = dim
        if not self._local:  # local mode has no payload indexes; filters scan payloads there
            kinds = {
                "keyword": m.PayloadSchemaType.KEYWORD,
                "integer": m.PayloadSchemaType.INTEGER,
                "float": m.PayloadSchemaType.FLOAT,
                "bool": m.PayloadSchemaType.BOOL,
                "text": m.PayloadSchemaType.TEXT,
            }
            for name, kind in payload_indexes(c.payload_schema).items():
                await self._call(
                    "create_payload_index",
                    self._client.create_payload_index(
                        self.collection, field_name=name, field_schema=kinds[kind], wait=True
                    ),
                )

    async def close(self) -> None:
        await self._call("close", self._client.close())

    # -- writes ------------------------------------------------------------------------------------------
    def _sparse(self, v: SparseVector) -> Any:
        return self._m.SparseVector(indices=list(v.indices), values=list(v.values))

    async def upsert(
        self,
        ids: Sequence[str],
        vectors: Sequence[Sequence[float]],
        payloads: Sequence[Mapping[str, Any]],
        sparse: Sequence[SparseVector] | None = None,
    ) -> None:
        check_batch(ids, vectors, payloads, sparse, self._dim)
        points = []
        for i, cid in enumerate(ids):
            vec: dict[str, Any] = {DENSE: list(map(float, vectors[i]))}
            if sparse is not None and sparse[i].indices:
                vec[SPARSE] = self._sparse(sparse[i])
            points.append(self._m.PointStruct(id=point_id(cid), vector=vec, payload=with_chunk_id(cid, payloads[i])))
        if points:
            await self._call("upsert", self._client.upsert(self.collection, points=points, wait=True))

    async def delete(self, ids: Sequence[str]) -> None:
        if ids:
            selector = self._m.PointIdsList(points=[point_id(i) for i in ids])
            await self._call("delete", self._client.delete(self.collection, points_selector=selector, wait=True))

    async def delete_doc(self, doc_id: str) -> None:
        """Delete every chunk of a document."""
        selector = self._m.FilterSelector(filter=self._filter({"doc_id": doc_id}))
        await self._call("delete", self._client.delete(self.collection, points_selector=selector, wait=True))

    async def set_payload(self, ids: Sequence[str], payloads: Sequence[Mapping[str, Any]]) -> list[str]:
        """Replace the payloads of stored chunks; returns the ids that are not stored (nothing is written for them)."""
        if len(ids) != len(payloads):
            raise DataError(f"set_payload: {len(ids)} ids but {len(payloads)} payloads")
        if not ids:
            return []
        m = self._m
        points = [point_id(i) for i in ids]
        found = await self._call(
            "retrieve", self._client.retrieve(self.collection, ids=points, with_payload=False, with_vectors=False)
        )
        stored = {str(r.id) for r in found}
        ops = [
            m.OverwritePayloadOperation(overwrite_payload=m.SetPayload(payload=with_chunk_id(cid, p), points=[pid]))
            for cid, pid, p in zip(ids, points, payloads)
            if pid in stored
        ]
        if ops:
            await self._call(
                "set_payload", self._client.batch_update_points(self.collection, update_operations=ops, wait=True)
            )
        return [cid for cid, pid in zip(ids, points) if pid not in stored]

    async def exists(self) -> bool:
        """Whether the collection exists (asked once it does: a search that follows needs no round trip)."""
        if not self._exists:
            self._exists = bool(await self._call("collection_exists", self._client.collection_exists(self.collection)))
        return self._exists

    async def optimize(self) -> bool:
        """The server optimises in the background; nothing to do here."""
        return False

    # -- reads -------------------------------------------------------------------------------------------
    @staticmethod
    def _results(points: Sequence[Any]) -> list[Result]:
        return [(p.payload["chunk_id"], float(p.score), p.payload) for p in points]

    async def _query(self, what: str, **kwargs: Any) -> list[Any]:
        resp = await self._call(what, self._client.query_points(self.collection, with_payload=True, **kwargs))
        return resp.points

    async def search_dense(
        self, vector: Sequence[float], top_k: int, filter: Mapping[str, Any] | None = None
    ) -> list[Result]:
        points = await self._query(
            "search_dense",
            query=list(map(float, vector)),
            using=DENSE,
            limit=top_k,
            query_filter=self._filter(filter),
            search_params=self._search_params(),
        )
        return self._results(points)

    async def search_sparse(
        self, vector: SparseVector, top_k: int, filter: Mapping[str, Any] | None = None
    ) -> list[Result]:
        if not vector.indices:
            return []
        points = await self._query(
            "search_sparse", query=self._sparse(vector), using=SPARSE, limit=top_k, query_filter=self._filter(filter)
        )
        return self._results(points)

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
        m = self._m
        flt = self._filter(filter)
        params = self._search_params()
        dense = list(map(float, vector))
        prefetch = [m.Prefetch(query=dense, using=DENSE, limit=candidates, filter=flt, params=params)]
        singles = [
            m.QueryRequest(query=dense, using=DENSE, limit=candidates, filter=flt, params=params, with_payload=False)
        ]
        if sparse.indices:
            sv = self._sparse(sparse)
            prefetch.append(m.Prefetch(query=sv, using=SPARSE, limit=candidates, filter=flt))
            singles.append(m.QueryRequest(query=sv, using=SPARSE, limit=candidates, filter=flt, with_payload=False))
        # The engine scores rank r (0-based) as 1/(k + r); +1 gives the textbook 1/(k + rank) with rank from 1.
        fused = m.QueryRequest(
            query=m.RrfQuery(rrf=m.Rrf(k=rrf_k + 1)), prefetch=prefetch, filter=flt, limit=top_k, with_payload=True
        )
        responses = await self._call(
            "search_hybrid", self._client.query_batch_points(self.collection, [fused, *singles])
        )
        per = [{str(p.id): float(p.score) for p in r.points} for r in responses[1:]]
        names = ["dense", "sparse"]
        out = []
        for p in responses[0].points:
            scores = {names[i]: s[str(p.id)] for i, s in enumerate(per) if str(p.id) in s}
            out.append((p.payload["chunk_id"], float(p.score), p.payload, scores))
        return out

    async def count(self) -> int:
        resp = await self._call("count", self._client.count(self.collection, exact=True))
        return int(resp.count)

    async def ids_for_doc(self, doc_id: str) -> set[str]:
        """Chunk ids stored for a document."""
        out: set[str] = set()
        offset = None
        while True:
            records, offset = await self._call(
                "scroll",
                self._client.scroll(
                    self.collection,
                    scroll_filter=self._filter({"doc_id": doc_id}),
                    limit=1000,
                    offset=offset,
                    with_payload=["chunk_id"],
                    with_vectors=False,
                ),
            )
            out.update(r.payload["chunk_id"] for r in records)
            if offset is None:
                return out

    async def get_payloads(self, ids: Sequence[str]) -> dict[str, Mapping[str, Any]]:
        """Payloads of the given chunk ids that exist, keyed by chunk id."""
        if not ids:
            return {}
        records = await self._call(
            "retrieve",
            self._client.retrieve(
                self.collection, ids=[point_id(i) for i in ids], with_payload=True, with_vectors=False
            ),
        )
        return {r.payload["chunk_id"]: r.payload for r in records}


__all__ = ["QdrantServerStore"]
