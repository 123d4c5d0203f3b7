"""`ragkit index`, `ragkit search`, `ragkit eval`.

Exit codes (docs/reliability.md): 0 done; 1 an error stopped the command (configuration, data, a provider, I/O),
printed as one ``error:`` line; 2 the command line is wrong (a bad option value, a missing file named by an
option); 3 ``index`` finished but some input was not indexed, each listed on stderr as ``file:line: reason``;
75 the index is busy: another process was writing it for longer than ``--wait``; 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

EXIT_PARTIAL = 3
EXIT_BUSY = 75


def positive_int(limit: int) -> Callable[[str], int]:
    """An argparse type: an integer from 1 to ``limit``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if not 1 <= value <= limit:
            raise argparse.ArgumentTypeError(f"expected a number from 1 to {limit}, got {value}")
        return value

    return parse


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 0 <= value <= 86_400:
        raise argparse.ArgumentTypeError(f"expected 0 to 86400 seconds, got {text}")
    return value


def json_filter(text: str) -> dict[str, Any]:
    """An argparse type: a payload filter as a JSON object, checked before anything runs."""
    from ragkit.errors import ConfigError
    from ragkit.retrieve.filters import parse_filter

    try:
        spec = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON: {e.msg} at column {e.colno} of {text!r}") from None
    if not isinstance(spec, dict):
        raise argparse.ArgumentTypeError(f'expected a JSON object such as {{"category": "freezer"}}, got {text!r}')
    try:
        parse_filter(spec)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return spec


def add_parsers(sub) -> None:
    p = sub.add_parser("index", help="index files or directories (txt, md, jsonl, csv, pdf, docx, html)")
    p.add_argument("paths", nargs="+", help="files or directories")
    p.add_argument("--config", help="pipeline YAML (default: embedded defaults, index in ./.ragkit)")
    p.add_argument(
        "--prune", action="store_true", help="remove documents of files under PATHS that are no longer there"
    )
    p.add_argument(
        "--rebuild",
        action="store_true",
        help="index PATHS, then remove every other document (also those of an index made by an older ragkit)",
    )
    p.add_argument(
        "--on-error",
        choices=["report", "skip", "raise"],
        default="report",
        help="bad records: index the rest, list each, exit 3 (report, default); index the rest, warn about each "
        "(skip); stop at the first, exit 1 (raise)",
    )
    p.add_argument("--encoding", default="utf-8", help="text encoding of txt, md and csv files (default utf-8)")
    p.add_argument("--wait", type=seconds, default=60.0, help="seconds to wait while another process writes the index")
    p.add_argument(
        "--progress-every",
        type=seconds,
        default=10.0,
        help="seconds between progress lines when stderr is not a terminal (0: none)",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run_index)

    p = sub.add_parser("search", help="search the index")
    p.add_argument("query")
    p.add_argument("--config")
    p.add_argument("--top-k", type=positive_int(10_000), default=5, help="hits to show (1 to 10000, default 5)")
    p.add_argument("--filter", type=json_filter, help='JSON payload filter, e.g. \'{"category": "ultra-low freezer"}\'')
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_search)

    p = sub.add_parser("eval", help="evaluate retrieval on a BEIR dataset, or answers on a QA file")
    p.add_argument("--dataset", help="BEIR directory: corpus.jsonl, queries.jsonl, qrels/test.tsv")
    p.add_argument("--qa", help="JSONL with question and answers[] (answer-level metrics; needs a generator)")
    p.add_argument("--corpus", help="with --qa: index this file or directory first (incremental)")
    p.add_argument("--config")
    p.add_argument("--mode", choices=["hybrid", "dense", "sparse"], help="override the retriever mode")
    p.add_argument("--limit", type=positive_int(10_000_000), help="evaluate at most N questions")
    p.add_argument(
        "--details", metavar="FILE", help="with --qa: one JSON line per question (answer, path, tool calls, claims)"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_eval)


def _progress(label: str):
    from ragkit.commands.progress import CountProgress  # a tqdm bar on a terminal, else a line every 10 s

    return CountProgress(label)


class IndexProgress:
    """Indexing progress on stderr: a tqdm counter on a terminal, else a line every ``every`` seconds."""

    def __init__(self, every: float, stream: Any = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream or sys.stderr
        self.every = every
        self.clock = clock
        self.start = self.last = clock()
        self.bar = None
        if self.stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(desc="indexing", unit=" chunks", file=self.stream, dynamic_ncols=True, leave=False)

    def __call__(self, report: Any) -> None:
        done = report.chunks_written + report.payloads_updated
        if self.bar is not None:
            self.bar.update(done - self.bar.n)
            self.bar.set_postfix_str(f"{report.docs_seen} documents", refresh=False)
            return
        now = self.clock()
        if self.every and now - self.last >= self.every:
            self.last = now
            rate = report.chunks_embedded / max(now - self.start, 1e-9)
            self.stream.write(
                f"indexing: {report.docs_seen} documents read ({report.docs_unchanged} unchanged), "
                f"{report.chunks_embedded} chunks embedded, {report.chunks_written} written, {rate:.1f} chunks/s, "
                f"{now - self.start:.0f} s\n"
            )
            self.stream.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


LEGACY = (
    "the index in {dir} was built by an older ragkit, whose document ids were paths relative to the folder "
    "indexed (two folders' notes.txt shared one id, and one overwrote the other). Run `ragkit index --rebuild "
    "PATH...` once, naming every folder the index should hold: they are indexed under the new ids (absolute "
    "paths), reusing the cached embeddings, and every document not named is removed."
)


def run_index(args) -> int:
    from ragkit.errors import DataError
    from ragkit.ingest.doc_ids import file_of, under
    from ragkit.ingest.loaders import SUFFIXES, LoadReport, check_roots, load_paths
    from ragkit.ingest.lock import IndexBusy, index_lock
    from ragkit.ingest.manifest import Manifest
    from ragkit.pipeline import RAG

    try:
        roots = check_roots(args.paths)
    except DataError as e:
        print(f"ragkit index: error: {e}", file=sys.stderr)
        return 2
    rag = RAG.from_yaml(args.config)
    lock = index_lock(rag.index_dir, what="ragkit index")
    try:
        lock.acquire(args.wait, label=f"the index in {rag.index_dir}")
    except IndexBusy as e:
        print(f"error: {e}; try again when it finishes, or wait longer with --wait SECONDS", file=sys.stderr)
        return EXIT_BUSY
    try:
        manifest = Manifest(rag.index_dir / "manifest.sqlite")
        legacy = manifest.legacy_ids()
        manifest.close()
        if legacy and not args.rebuild:
            print("error: " + LEGACY.format(dir=rag.index_dir), file=sys.stderr)
            return 1
        loaded = LoadReport()
        docs = load_paths(
            roots, on_error="raise" if args.on_error == "raise" else "collect", report=loaded, encoding=args.encoding
        )
        prune: Any = False
        if args.rebuild:
            prune = True
        elif args.prune:
            inside = under(roots)
            bad: set[str] = set()

            def prune(doc_id: str) -> bool:  # never a document of a file that had a bad record this run
                if not bad and loaded.errors:
                    bad.update(Path(e.path).as_posix() for e in loaded.errors)
                return inside(doc_id) and file_of(doc_id) not in bad

        progress = IndexProgress(args.progress_every)
        try:
            report = rag.index(docs, prune=prune, progress=progress)
        finally:
            progress.close()
    except IndexBusy as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BUSY
    finally:
        lock.release()
    if loaded.files == 0:
        print(f"warning: no document files ({', '.join(SUFFIXES)}) in {', '.join(args.paths)}", file=sys.stderr)
    problems = [str(e) for e in loaded.errors] + report.errors
    word = "skipped" if args.on_error == "skip" else "not indexed"
    for problem in problems:
        print(f"{word}: {problem}", file=sys.stderr)
    if args.json:
        print(json.dumps(report.as_dict() | {"load_errors": len(loaded.errors), "not_indexed": problems}))
    else:
        print(
            f"indexed {report.docs_indexed} documents ({report.docs_unchanged} unchanged, {report.docs_removed} "
            f"removed): {report.chunks_written} chunks written, {report.payloads_updated} payloads updated, "
            f"{report.chunks_deleted} deleted, {report.seconds:.2f}s → {rag.index_dir}"
            + (f"; {len(problems)} not indexed (listed above)" if problems and args.on_error != "skip" else "")
        )
    return EXIT_PARTIAL if problems and args.on_error == "report" else 0


def run_search(args) -> int:
    from ragkit.ingest.doc_ids import display_path
    from ragkit.pipeline import RAG

    rag = RAG.from_yaml(args.config)
    hits = rag.search(args.query, top_k=args.top_k, filter=args.filter)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "chunk_id": h.chunk.id,
                        "doc_id": h.chunk.doc_id,
                        "score": h.score,
                        "text": h.chunk.text,
                        "metadata": dict(h.chunk.metadata),
                    }
                    for h in hits
                ],
                ensure_ascii=False,
                default=str,
            )
        )
        return 0
    if not hits:
        why = getattr(rag.retriever, "no_terms_reason", lambda _q: None)(args.query)  # blank or stopwords only
        print(
            f"no results: {why}"
            if why
            else "no results" + (" match the filter" if args.filter else " (the index is empty)")
        )
    for i, h in enumerate(hits, 1):
        text = " ".join(h.chunk.text.split())
        print(f"{i}. [{h.score:.4f}] {display_path(h.chunk.doc_id)}\n   {text[:200]}{'…' if len(text) > 200 else ''}")
    return 0


def _usage_error(message: str) -> int:
    print(f"ragkit eval: error: {message}", file=sys.stderr)
    return 2


def run_eval(args) -> int:
    from ragkit.eval.runner import run_answer_eval, run_retrieval_eval

    if bool(args.dataset) == bool(args.qa):
        return _usage_error("give exactly one of --dataset (retrieval) or --qa (answers)")
    if args.dataset and not Path(args.dataset).is_dir():
        return _usage_error(f"--dataset {args.dataset}: no such directory")
    if args.qa and not Path(args.qa).is_file():
        return _usage_error(f"--qa {args.qa}: no such file")
    if args.corpus and not Path(args.corpus).exists():
        return _usage_error(f"--corpus {args.corpus}: no such file or directory")
    if args.corpus and not args.qa:
        return _usage_error("--corpus goes with --qa")
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
            app.rag.index(load_path(args.corpus))
        result = run_answer_eval(
            args.qa,
            rag=app.answerer,
            checker=app.checker,
            limit=args.limit,
            progress=_progress("questions"),
            details=args.details,
        )
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:>22}: {v:.4f}" if isinstance(v, float) else f"{k:>22}: {v}")
    return 0
