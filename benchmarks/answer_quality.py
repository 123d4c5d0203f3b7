"""Answer quality on the fixed splits (benchmarks/qa_splits): the figures of ``ragkit eval --qa``, per dataset too,
and one JSON line per question with everything the calibration scripts need (answer, gold, retrieval scores,
model confidence, grounding and abstention checks, seconds).

Run from the project root (the machine is shared: use ``nice``)::

    nice -n 10 .venv/bin/python benchmarks/answer_quality.py --split dev [--config F] [--limit N] \\
        [--details /tmp/dev-details.jsonl] [--json]

The shared data is materialised into ``--data`` (default: a folder under the system temp dir), never into the
project; the corpus (SQuAD 2.0 and HotpotQA passages) is indexed there once and reused by later runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "qa_splits"))

import splits  # noqa: E402

from ragkit.config import load_pipeline  # noqa: E402
from ragkit.eval.runner import run_answer_eval, summarise_answers  # noqa: E402
from ragkit.ingest.loaders import load_path  # noqa: E402
from ragkit.pipeline import RAG  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--split", choices=splits.SPLITS, default="dev")
    p.add_argument("--config", help="pipeline YAML (default: the embedded defaults)")
    p.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "ragkit-qa")
    p.add_argument("--limit", type=int, help="first N questions of the split (the stored order is shuffled)")
    p.add_argument("--offset", type=int, default=0, help="skip the first N questions")
    p.add_argument("--details", type=Path, help="write one JSON line per question here")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)

    qa = splits.materialise(args.split, splits.SHARED, args.data)
    rows = qa.read_text(encoding="utf-8").splitlines()[args.offset :][: args.limit]
    subset = args.data / f"{args.split}.run.jsonl"
    subset.write_text("\n".join(rows) + "\n", encoding="utf-8")
    config = replace(load_pipeline(args.config), index_dir=str(args.data / "index"))
    rag = RAG(config)
    t0 = time.perf_counter()
    report = rag.index(list(load_path(args.data / "corpus")))
    print(f"index: {report.docs_indexed} new documents, {time.perf_counter() - t0:.1f}s", file=sys.stderr)

    records: list[dict] = []
    out = args.details.open("w", encoding="utf-8") if args.details else None

    def keep(record: dict) -> None:
        records.append(record)
        if out:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()
        mark = "abstained" if record["abstained"] else f"contains={record['contains']}"
        print(f"{len(records)}/{len(rows)} {record['seconds']:.1f}s {mark} {record['text'][:80]!r}", file=sys.stderr)

    try:
        summary = {"split": args.split, **run_answer_eval(subset, rag=rag, on_answer=keep)}
    finally:
        if out:
            out.close()
    for dataset in sorted({r["dataset"] for r in records}):
        summary[dataset] = summarise_answers([r for r in records if r["dataset"] == dataset])
    summary["note"] = "seconds on a shared 2-core machine (other jobs running)"
    if args.json:
        print(json.dumps(summary))
    else:
        for key, value in summary.items():
            print(f"{key:>22}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
