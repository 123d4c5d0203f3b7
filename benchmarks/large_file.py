"""Indexing one large text file: peak memory stays flat as the file grows; chunks per second.

    python benchmarks/large_file.py [--mb 50] [--small-mb 5] [--json]

Writes a text file of ``--small-mb`` MB and one of ``--mb`` MB (English sentences from the SQuAD and HotpotQA
passages in ../shared, shuffled into paragraphs, each paragraph numbered so that no two chunks are alike and the
embedding cache cannot help), then indexes each with ``ragkit index`` on the embedded defaults (recursive chunker,
256 MiniLM tokens; MiniLM int8 ONNX; BM25; Qdrant edge) in a process of its own, into a fresh index. For each file:
chunks, seconds, chunks/s and the peak resident memory of that process (``ru_maxrss`` from ``wait4``); then the
ratio of the two peaks, which stays near 1 when memory does not grow with the file. The smaller run goes first, in
the same invocation, so both figures come from the same machine state.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _sentences() -> list[str]:
    out = []
    for name in ("squad2", "hotpotqa"):
        with (SHARED / name / "rag" / "passages.jsonl").open(encoding="utf-8") as f:
            for line in f:
                out.extend(s for s in re.split(r"(?<=[.!?])\s+", json.loads(line)["text"]) if len(s) > 30)
    return out


def write_text(path: Path, mb: float, seed: int = 7) -> int:
    """A UTF-8 text file of about ``mb`` MB (10^6 bytes); returns its size in bytes."""
    rng = random.Random(seed)
    pool = _sentences()
    target = int(mb * 1_000_000)
    size = 0
    n = 0
    with path.open("w", encoding="utf-8") as f:
        while size < target:
            n += 1
            para = f"Entry {n}. " + " ".join(rng.choice(pool) for _ in range(rng.randint(3, 8))) + "\n\n"
            f.write(para)
            size += len(para.encode("utf-8"))
    return size


def index_once(text: Path, work: Path, progress_every: float) -> dict:
    """Index ``text`` with `ragkit index` in a child process; its report, wall time and peak RSS."""
    config = work / "pipeline.yaml"
    config.write_text(f"index_dir: {work / 'index'}\n", encoding="utf-8")
    cmd = [
        sys.executable,
        "-m",
        "ragkit.cli",
        "index",
        str(text),
        "--config",
        str(config),
        "--json",
        "--progress-every",
        str(progress_every),
    ]
    t0 = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=sys.stderr, text=True)
    out = child.stdout.read() if child.stdout else ""
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - t0
    if child.returncode != 0:
        raise SystemExit(f"ragkit index exited {child.returncode}")
    report = json.loads(out.strip().splitlines()[-1])
    return {
        "file_mb": round(text.stat().st_size / 1e6, 2),
        "chunks": report["chunks_written"],
        "seconds": round(seconds, 1),
        "index_seconds": round(report["seconds"], 1),
        "chunks_per_s": round(report["chunks_written"] / report["seconds"], 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux reports KiB
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=50.0, help="size of the large file in MB")
    ap.add_argument("--small-mb", type=float, default=5.0, help="size of the small file in MB, indexed first")
    ap.add_argument("--progress-every", type=float, default=30.0, help="seconds between the child's progress lines")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    runs = {}
    with tempfile.TemporaryDirectory(prefix="ragkit-large-") as tmp:
        for label, mb in (("small", args.small_mb), ("large", args.mb)):
            work = Path(tmp) / label
            work.mkdir()
            text = work / f"{label}.txt"
            write_text(text, mb)
            runs[label] = index_once(text, work, args.progress_every)
            print(f"{label}: {runs[label]}", file=sys.stderr)
    result = {
        **runs,
        "peak_rss_ratio_large_to_small": round(runs["large"]["peak_rss_mb"] / runs["small"]["peak_rss_mb"], 2),
        "large_peak_rss_within_1gb": runs["large"]["peak_rss_mb"] <= 1024,
        "cpus": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"{'file':>6} {'MB':>6} {'chunks':>7} {'s':>7} {'chunks/s':>9} {'peak RSS MB':>12}")
    for label, r in runs.items():
        print(
            f"{label:>6} {r['file_mb']:>6} {r['chunks']:>7} {r['index_seconds']:>7} {r['chunks_per_s']:>9} "
            f"{r['peak_rss_mb']:>12}"
        )
    print(f"peak RSS large/small: {result['peak_rss_ratio_large_to_small']}  (load {result['load_avg_1m']})")


if __name__ == "__main__":
    main()
