"""Where the in-process Qdrant engine's upsert time goes, and what other write layouts would buy.

    python3 benchmarks/edge_write_cost.py                 # per-value cost of building points, then layouts
    python3 benchmarks/edge_write_cost.py --n 100000 --rounds 3 --json

Part 1 times ``qdrant_edge.Point`` construction alone for payload shapes (no engine write): the binding converts
every payload value separately, so the cost follows the number of values, not their size.

Part 2 writes ``--n`` points (clustered 384-d vectors, indexer-shaped payloads as in ``vector_store.py``) in
batches of 2,000 straight into an edge shard, one process per run, rounds alternating, and prints points/s per
layout. ``indexer`` is what ``QdrantEdgeStore`` writes today; the others are layouts it does not use:

- ``packed``: doc_id and chunk_id as fields, everything else in one JSON string field (filters on other fields
  would stop working);
- ``u64_ids``: 64-bit integer point ids from the chunk id hash instead of UUID5 strings;
- ``packed_u64_nowal``: both, in a shard without a write-ahead log (durable only after ``flush()``);
- ``doc_id_only``: a bare ``{doc_id}`` payload (the chunk text would have to live elsewhere).

The JSON encoding of ``packed`` happens inside the clock, since a store would have to do it.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vector_store import chunk_payloads, clustered  # noqa: E402

from ragkit.providers.qdrant_edge import DENSE, QdrantEdgeStore, dense_rows, point_id, with_chunk_id  # noqa: E402

LAYOUTS = ("indexer", "packed", "u64_ids", "packed_u64_nowal", "doc_id_only")


def point_costs(number: int = 20_000) -> dict[str, float]:
    """Microseconds per ``Point(...)`` for payload shapes, same vector and id."""
    import qdrant_edge as qe

    vector = memoryview(np.random.default_rng(0).random(384, dtype=np.float32))
    pid = str(uuid.uuid4())
    indexer = chunk_payloads(1, 1000, np.random.default_rng(0))[0]
    shapes = {
        "empty payload": {},
        "1 short string": {"a": "docs/doc0.md"},
        "1 int": {"a": 5},
        "1 string of 4000 chars": {"a": "x" * 4000},
        f"indexer payload ({len(indexer)} values)": indexer,
        "3 strings (doc_id, chunk_id, JSON of the rest)": {"doc_id": "d", "chunk_id": "c", "_p": json.dumps(indexer)},
    }
    out = {}
    for label, payload in shapes.items():
        best = min(timeit.repeat(lambda p=payload: qe.Point(pid, {DENSE: vector}, p), number=number, repeat=3))
        out[label] = round(best / number * 1e6, 2)
    return out


def u64_id(chunk_id: str) -> int:
    return int.from_bytes(hashlib.sha1(chunk_id.encode("utf-8")).digest()[:8], "big") >> 1


def write_rate(layout: str, n: int, batch: int = 2000) -> float:
    """Points/s of building and writing ``n`` points in ``layout`` into a fresh shard."""
    import qdrant_edge as qe

    rng = np.random.default_rng(0)
    data = clustered(n, 384, 100, rng, 0.7)
    payloads = chunk_payloads(n, 1000, rng)
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    with tempfile.TemporaryDirectory() as tmp:
        # The store's own shard (its vector, sparse, HNSW and index settings); the points are then written directly.
        store = QdrantEdgeStore(QdrantEdgeStore.Config(path=tmp, wal=not layout.endswith("nowal")))
        asyncio.run(store.ensure_collection(384))
        shard = store._ready()
        t0 = time.perf_counter()
        rows = dense_rows(data)
        for s in range(0, n, batch):
            points = []
            for i in range(s, min(n, s + batch)):
                cid, p = str(i), payloads[i]
                pid = u64_id(cid) if "u64" in layout else point_id(cid)
                if layout.startswith("packed"):
                    rest = {k: v for k, v in p.items() if k not in ("doc_id", "chunk_id")}
                    payload = {"doc_id": p["doc_id"], "chunk_id": cid, "_p": dumps(rest)}
                elif layout == "doc_id_only":
                    payload = {"doc_id": p["doc_id"]}
                else:
                    payload = with_chunk_id(cid, p)
                points.append(qe.Point(pid, {DENSE: rows[i]}, payload))
            shard.update(qe.UpdateOperation.upsert_points(points))
        seconds = time.perf_counter() - t0
        asyncio.run(store.close())
    return n / seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=30_000, help="points per layout run")
    ap.add_argument("--rounds", type=int, default=3, help="runs per layout, alternating")
    ap.add_argument("--layout", choices=LAYOUTS, help=argparse.SUPPRESS)  # one run, in a child process
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.layout:
        print(json.dumps({"points_per_s": write_rate(args.layout, args.n)}))
        return 0
    costs = point_costs()
    runs: dict[str, list[float]] = {name: [] for name in LAYOUTS}
    for _ in range(args.rounds):
        for name in LAYOUTS:  # one process each: a second shard in one process runs slower
            cmd = [sys.executable, __file__, "--layout", name, "--n", str(args.n)]
            out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
            runs[name].append(json.loads(out.strip().splitlines()[-1])["points_per_s"])
    rows = [
        {
            "layout": k,
            "median_points_per_s": round(statistics.median(v)),
            "runs": [round(x) for x in v],
            "vs_indexer": round(statistics.median(v) / statistics.median(runs["indexer"]), 2),
        }
        for k, v in runs.items()
    ]
    if args.json:
        print(json.dumps({"point_us": costs, "layouts": rows, "n": args.n}))
        return 0
    print("Point construction, us (no engine write):")
    for label, us in costs.items():
        print(f"  {label:<48} {us:6.2f}")
    print(f"Build + write {args.n} points, points/s (median of {args.rounds}):")
    for r in rows:
        print(f"  {r['layout']:<18} {r['median_points_per_s']:>7}  x{r['vs_indexer']:.2f}  runs {r['runs']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
