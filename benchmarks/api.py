"""The API server's own cost: /v1/search over HTTP against the same search called in-process, same run.

    python benchmarks/api.py [--chunks 5000] [--requests 400] [--clients 1 8 32] [--embedder lookup|minilm] [--json]

The server (``ragkit.apps.api`` on uvicorn, as ``ragkit serve --api`` runs it) lives in its own process on
127.0.0.1; the client is ``httpx`` with one keep-alive connection per concurrent client. In-process, the same
``RAG.asearch`` runs with the same number of concurrent tasks in one event loop. Both search the same index of
sentence-sized chunks from ../shared (SQuAD and HotpotQA passages) with SQuAD questions, top_k 10, hybrid
retrieval. With ``--embedder lookup`` (default) query vectors cost nothing, so what differs is the server: HTTP,
JSON, auth, the queue. With ``minilm`` the real embedder runs in both. Printed: p50/p95 latency and requests/s
per level, and the ratios api/in-process, each the median of alternating rounds; also the API app called
in-process through httpx's ASGI transport (the app's own work without sockets), and GET /healthz over HTTP
(the transport alone).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _corpus import SHARED, LookupEmbedder, sentences  # noqa: E402

from ragkit.answer.ledger import percentile  # noqa: E402
from ragkit.config import parse_pipeline  # noqa: E402
from ragkit.pipeline import RAG  # noqa: E402

TOKEN = "bench-token"


def questions(n: int) -> list[str]:
    out = []
    with (SHARED / "squad2" / "rag" / "qa.jsonl").open(encoding="utf-8") as f:
        for line in f:
            out.append(json.loads(line)["question"])
            if len(out) >= n:
                break
    return out


def make_rag(index_dir: str, embedder: str) -> RAG:
    config = parse_pipeline({"index_dir": index_dir, "retriever": {"type": "hybrid"}, "reranker": {"type": "none"}})
    return RAG(config, embedder=LookupEmbedder() if embedder == "lookup" else None)


def serve(index_dir: str, embedder: str, port: int) -> None:
    """The server process: the API over the index built by the parent."""
    import uvicorn

    from ragkit.apps.api import ApiSettings, ServedModel, create_api

    rag = make_rag(index_dir, embedder)
    settings = ApiSettings(token=TOKEN, search_active=32, search_waiting=256)
    app = create_api([ServedModel("bench", rag, rag)], settings)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def summary(latencies: list[float], seconds: float) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(latencies, 50) * 1000, 3),
        "p95_ms": round(percentile(latencies, 95) * 1000, 3),
        "requests_per_s": round(len(latencies) / seconds, 1),
    }


async def drive(call, queries: list[str], clients: int, tolerate: tuple = ()) -> dict[str, float]:
    """``clients`` workers share the queries; each times its own calls; ``tolerate``d errors are counted."""
    work = iter(queries)
    latencies: list[float] = []
    errors = 0

    async def worker() -> None:
        nonlocal errors
        for q in work:
            start = time.perf_counter()
            try:
                await call(q)
            except tolerate:  # a connection reset on a loaded machine: counted, and the run goes on
                errors += 1
                continue
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return {**summary(latencies, time.perf_counter() - start), "errors": errors}


async def in_process(rag: RAG, queries: list[str], levels: list[int]) -> dict[str, dict[int, dict[str, float]]]:
    """``search``: ``RAG.asearch`` called directly; ``asgi``: the API app called in-process (no sockets), which adds
    the app's own work (routing, auth, validation, JSON) and httpx's client side, but no transport."""
    import httpx

    from ragkit.apps.api import ApiSettings, ServedModel, create_api

    for q in queries:
        await rag.asearch(q, top_k=10)
    direct = {c: await drive(lambda q: rag.asearch(q, top_k=10), queries, c) for c in levels}
    app = create_api([ServedModel("bench", rag, rag)], ApiSettings(token=TOKEN, search_active=32, search_waiting=256))
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://asgi", headers=headers) as http:

        async def call(q: str) -> None:
            (await http.post("/v1/search", json={"query": q, "top_k": 10})).raise_for_status()

        asgi = {c: await drive(call, queries, c) for c in levels}
    return {"search": direct, "asgi": asgi}


async def over_http(url: str, queries: list[str], levels: list[int]) -> dict[int | str, dict[str, float]]:
    """/v1/search per concurrency level, and ``"floor"``: GET /healthz from one client, the cost of HTTP alone."""
    import httpx

    out: dict[int | str, dict[str, float]] = {}
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:

        async def ping(_: str) -> None:
            (await http.get("/healthz")).raise_for_status()

        for q in queries[:50]:
            await ping(q)
        out["floor"] = await drive(ping, queries, 1, (httpx.TransportError,))
    for n, clients in enumerate(levels):
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(base_url=url, limits=limits, headers=headers, timeout=60) as http:

            async def call(q: str) -> None:
                r = await http.post("/v1/search", json={"query": q, "top_k": 10})
                if r.status_code != 200:
                    raise SystemExit(f"/v1/search answered {r.status_code}: {r.text}")

            for q in queries if n == 0 else queries[:20]:  # the server's caches once, then the connections
                await call(q)
            out[clients] = await drive(call, queries, clients, (httpx.TransportError,))
    return out


def server_stack() -> str:
    """What uvicorn runs on: httptools and uvloop when installed, else h11 and asyncio."""
    import importlib.util

    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    return f"uvicorn {http} {loop}"


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    """Each figure's median over the rounds."""
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def wait_until_up(url: str, proc) -> None:
    import httpx

    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if not proc.is_alive() or time.monotonic() > deadline:
            raise SystemExit("the API server did not start")
        time.sleep(0.2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chunks", type=int, default=5000)
    ap.add_argument("--requests", type=int, default=400, help="requests per concurrency level")
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--embedder", choices=["lookup", "minilm"], default="lookup")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds; each figure is the median")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    queries = list(itertools.islice(itertools.cycle(questions(args.requests)), args.requests))
    with tempfile.TemporaryDirectory() as tmp:
        local_dir, server_dir = str(Path(tmp) / "local"), str(Path(tmp) / "server")
        rag = make_rag(local_dir, args.embedder)
        rag.index(sentences(args.chunks))
        asyncio.run(rag.aclose())
        shutil.copytree(local_dir, server_dir)  # each side opens its own copy: one store, one process
        rag = make_rag(local_dir, args.embedder)
        port = free_port()
        proc = multiprocessing.get_context("spawn").Process(
            target=serve, args=(server_dir, args.embedder, port), daemon=True
        )
        proc.start()
        url = f"http://127.0.0.1:{port}"
        rounds: list[tuple[dict, dict]] = []
        try:
            wait_until_up(url, proc)
            for _ in range(args.rounds):  # alternate, so a busy moment on a shared machine hits both sides alike
                rounds.append(
                    (
                        asyncio.run(in_process(rag, queries, args.clients)),
                        asyncio.run(over_http(url, queries, args.clients)),
                    )
                )
        finally:
            proc.terminate()
            proc.join(10)
            asyncio.run(rag.aclose())
    local = {c: median_of([r[0]["search"][c] for r in rounds]) for c in args.clients}
    asgi = {c: median_of([r[0]["asgi"][c] for r in rounds]) for c in args.clients}
    remote = {c: median_of([r[1][c] for r in rounds]) for c in [*args.clients, "floor"]}
    levels = []
    for c in args.clients:
        a, b = remote[c], local[c]
        levels.append(
            {
                "clients": c,
                "api": a,
                "in_process": b,
                "asgi_in_process": asgi[c],
                "p50_ratio_api_over_in_process": round(a["p50_ms"] / b["p50_ms"], 2),
                "throughput_ratio_in_process_over_api": round(b["requests_per_s"] / a["requests_per_s"], 2),
            }
        )
    result = {
        "endpoint": "/v1/search",
        "chunks": args.chunks,
        "requests_per_level": args.requests,
        "top_k": 10,
        "embedder": args.embedder,
        "rounds": args.rounds,
        "server": server_stack(),
        "http_floor_healthz_1_client": remote["floor"],
        "levels": levels,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"/v1/search vs in-process search, {args.chunks} chunks, {args.embedder} embedder, top_k 10")
        print(
            f"{'clients':>7} | {'api p50':>8} {'p95':>8} {'req/s':>8} | {'asgi p50':>8} {'req/s':>8} | "
            f"{'local p50':>9} {'p95':>8} {'req/s':>8} | ratio"
        )
        for lv in levels:
            a, g, b = lv["api"], lv["asgi_in_process"], lv["in_process"]
            print(
                f"{lv['clients']:>7} | {a['p50_ms']:>8.2f} {a['p95_ms']:>8.2f} {a['requests_per_s']:>8.1f} | "
                f"{g['p50_ms']:>8.2f} {g['requests_per_s']:>8.1f} | "
                f"{b['p50_ms']:>9.2f} {b['p95_ms']:>8.2f} {b['requests_per_s']:>8.1f} | "
                f"{lv['p50_ratio_api_over_in_process']:.2f}x p50" + (f", {a['errors']} errors" if a["errors"] else "")
            )
        floor = result["http_floor_healthz_1_client"]
        print(f"HTTP alone (GET /healthz, 1 client, {result['server']}): p50 {floor['p50_ms']:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
