"""`ragkit index`, `ragkit search`, `ragkit eval`."""

from __future__ import annotations

import json
import sys


def add_parsers(sub) -> None:
    p = sub.add_parser("index", help="index files or directories (txt, md, jsonl, csv)")
    p.add_argument("paths", nargs="+", help="files or directories")
    p.add_argument("--config", help="pipeline YAML (default: embedded defaults, index in ./.ragkit)")
    p.add_argument("--prune", action="store_true", help="remove documents no longer present in PATHS")
    p.add_argument(
        "--on-error",
        choices=["report", "skip", "raise"],
        default="report",
        help="malformed lines: report and skip (default), skip quietly, or stop",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run_index)

    p = sub.add_parser("search", help="search the index")
    p.add_argument("query")
    p.add_argument("--config")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--filter", help='JSON payload filter, e.g. \'{"category": "ultra-low freezer"}\'')
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_search)

    p = sub.add_parser("eval", help="evaluate retrieval on a BEIR dataset, or answers on a QA file")
    p.add_argument("--dataset", help="BEIR directory: corpus.jsonl, queries.jsonl, qrels/test.tsv")
    p.add_argument("--qa", help="JSONL with question and answers[] (answer-level metrics; needs a generator)")
    p.add_argument("--corpus", help="with --qa: index this file or directory first (incremental)")
    p.add_argument("--config")
    p.add_argument("--mode", choices=["hybrid", "dense", "sparse"], help="override the retriever mode")
    p.add_argument("--limit", type=int, help="evaluate at most N questions")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_eval)


def _progress(label: str):
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int | None) -> None:
        if total:
            width = 30
            filled = int(width * done / total)
            sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        else:
            sys.stderr.write(f"\r{label} {done}")
        sys.stderr.flush()

    return show


def run_index(args) -> int:
    from ragkit.ingest.loaders import LoadReport, load_path
    from ragkit.pipeline import RAG

    rag = RAG.from_yaml(args.config)
    load_report = LoadReport()
    docs = [d for path in args.paths for d in load_path(path, on_error=args.on_error, report=load_report)]
    report = rag.index(docs, prune=args.prune, progress=_progress("indexing"), total=len(docs))
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    for err in load_report.errors:
        print(f"skipped {err}", file=sys.stderr)
    out = report.as_dict() | {"load_errors": len(load_report.errors)}
    if args.json:
        print(json.dumps(out))
    else:
        print(
            f"indexed {report.docs_indexed} documents ({report.docs_unchanged} unchanged, {report.docs_removed} removed): "
            f"{report.chunks_written} chunks written, {report.chunks_deleted} deleted, {report.seconds:.2f}s → {rag.index_dir}"
        )
    return 0


def run_search(args) -> int:
    from ragkit.pipeline import RAG

    rag = RAG.from_yaml(args.config)
    flt = json.loads(args.filter) if args.filter else None
    hits = rag.search(args.query, top_k=args.top_k, filter=flt)
    if args.json:
        print(
            json.dumps(
                [
                    {"chunk_id": h.chunk.id, "doc_id": h.chunk.doc_id, "score": h.score, "text": h.chunk.text}
                    for h in hits
                ],
                ensure_ascii=False,
            )
        )
        return 0
    if not hits:
        print("no results (is the index empty? run `ragkit index PATH` first)")
    for i, h in enumerate(hits, 1):
        text = " ".join(h.chunk.text.split())
        print(f"{i}. [{h.score:.4f}] {h.chunk.doc_id}\n   {text[:200]}{'…' if len(text) > 200 else ''}")
    return 0


def run_eval(args) -> int:
    from ragkit.eval.runner import run_answer_eval, run_retrieval_eval

    if bool(args.dataset) == bool(args.qa):
        print("error: give exactly one of --dataset (retrieval) or --qa (answers)", file=sys.stderr)
        return 2
    if args.dataset:
        result = run_retrieval_eval(
            args.dataset, config=args.config, mode=args.mode, limit=args.limit, progress=_progress("queries")
        )
    else:
        from ragkit.config import load_pipeline
        from ragkit.ingest.loaders import load_path
        from ragkit.pipeline import build_app

        app = build_app(load_pipeline(args.config))
        if args.corpus:
            app.rag.index(list(load_path(args.corpus)))
        result = run_answer_eval(
            args.qa, rag=app.answerer, checker=app.checker, limit=args.limit, progress=_progress("questions")
        )
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:>22}: {v:.4f}" if isinstance(v, float) else f"{k:>22}: {v}")
    return 0
